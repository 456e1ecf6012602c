"""A datathon's folder: what participants get, and what only the organiser keeps.

    DIR/participants/   train.csv, test.csv, media/, datacard.md, datacard.json, manifest.json
    DIR/organiser/      test_labels.csv, rows.csv, datathon.json, manifest.json,
                        leaderboard.csv, leaderboard.json, submissions/

Hand out ``participants/`` only (zip it, or publish it); ``organiser/`` holds the test labels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

PARTICIPANTS, ORGANISER = "participants", "organiser"
TRAIN_CSV, TEST_CSV, MEDIA = "train.csv", "test.csv", "media"
CARD_MD, CARD_JSON, MANIFEST = "datacard.md", "datacard.json", "manifest.json"
LABELS_CSV, ROWS_CSV, SETTINGS = "test_labels.csv", "rows.csv", "datathon.json"
BOARD_CSV, BOARD_JSON, SUBMISSIONS = "leaderboard.csv", "leaderboard.json", "submissions"


class DatathonError(ValueError):
    """A datathon cannot be made or read; the message says why."""


def participants(root: Path) -> Path:
    return Path(root) / PARTICIPANTS


def organiser(root: Path) -> Path:
    return Path(root) / ORGANISER


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> dict[str, Any]:
    """``manifest.json`` of every file under ``folder`` (path, bytes, sha256), and return it."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"files": [{"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size,
                           "sha256": sha256_of(p)} for p in files]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_settings(root: Path) -> dict[str, Any]:
    """The organiser's ``datathon.json``; DatathonError when ``root`` is not a datathon's folder."""
    path = organiser(root) / SETTINGS
    if not path.is_file():
        raise DatathonError(f"{root}: not a datathon folder (no {ORGANISER}/{SETTINGS}); "
                            "make one with 'observatory datathon create'")
    return json.loads(path.read_text(encoding="utf-8"))
