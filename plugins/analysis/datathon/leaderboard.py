"""Score a submission against the organiser's test labels and keep the leaderboard
(``organiser/leaderboard.json`` and ``.csv``: each submission with its team, model description,
time, file checksum and scores; best first by top-1, then macro F1, then the earlier)."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from plugins.analysis.datathon import layout
from plugins.analysis.datathon.predictions import read_predictions
from plugins.analysis.datathon.score import score

BOARD_COLUMNS = ("rank", "team", "model", "submitted_at", "top1", "top5", "macro_f1", "ece", "rows", "file_sha256")


def test_labels(root: Path) -> pd.Series:
    """The organiser's labels of the test part: test id -> label."""
    layout.read_settings(root)  # DatathonError when ``root`` is no datathon's folder
    path = layout.organiser(root) / layout.LABELS_CSV
    if not path.is_file():
        raise layout.DatathonError(f"{root}: no {layout.ORGANISER}/{layout.LABELS_CSV}; "
                                   "scoring needs the organiser's folder")
    frame = pd.read_csv(path, dtype="string", keep_default_na=False)
    return frame.set_index("id")["label"]


def score_file(root: Path, predictions: Path) -> dict[str, Any]:
    """The scores of ``predictions`` (SubmissionError lists what is wrong with it)."""
    settings = layout.read_settings(root)
    truth = test_labels(root)
    frame = read_predictions(predictions, list(truth.index), list(settings["classes"]))
    return score(frame, truth)


def read_board(root: Path) -> list[dict[str, Any]]:
    """The leaderboard's entries, best first."""
    path = layout.organiser(root) / layout.BOARD_JSON
    return json.loads(path.read_text(encoding="utf-8"))["entries"] if path.is_file() else []


def add_entry(root: Path, team: str, model: str, scores: dict[str, Any], *, source: Path | None = None) -> dict[str, Any]:
    """Add a scored submission to the leaderboard (a copy of ``source`` kept under
    ``organiser/submissions/``); return its entry, ranked."""
    if not team.strip():
        raise layout.DatathonError("give the team's name (--name)")
    org = layout.organiser(root)
    now = datetime.now(timezone.utc)
    entry: dict[str, Any] = {"team": team.strip(), "model": model.strip(), "submitted_at": now.isoformat(timespec="seconds"),
                             **{k: scores.get(k) for k in ("top1", "top5", "macro_f1", "ece", "rows")},
                             "per_class_recall": scores["per_class_recall"], "file_sha256": None}
    if source is not None:
        entry["file_sha256"] = layout.sha256_of(source)
        kept = org / layout.SUBMISSIONS / f"{now.strftime('%Y%m%dT%H%M%S%f')}-{entry['file_sha256'][:12]}.csv"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, kept)
    entries = read_board(root) + [entry]
    entries.sort(key=lambda e: (-e["top1"], -e["macro_f1"], e["submitted_at"]))
    for rank, item in enumerate(entries, start=1):
        item["rank"] = rank
    _write(org, entries)
    return entry


def _write(org: Path, entries: list[dict[str, Any]]) -> None:
    tmp = org / (layout.BOARD_JSON + ".tmp")
    tmp.write_text(json.dumps({"entries": entries}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(org / layout.BOARD_JSON)
    with (org / layout.BOARD_CSV).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(BOARD_COLUMNS)
        for e in entries:
            writer.writerow(["" if e.get(c) is None else e[c] for c in BOARD_COLUMNS])
