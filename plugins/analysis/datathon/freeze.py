"""``create_datathon``: freeze a project's labelled, published observations into a datathon's
folder (``layout``): a training part with labels, a test part without, the test labels for the
organiser only, media, a data card and manifests with checksums.

Nothing personal leaves: contributors become per-datathon pseudonyms (``P0001``, in a random
order), places are as the public sees them (``core.privacy``), times are given as the local day
and hour, rows get new random ids (an observation id, a media URL or an exact time would let a
participant look the test label up in the engine), and media are the engine's public copies,
cleaned of location and camera metadata.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from core import __version__
from core.lifecycle import get_project
from core.media import MediaNotPublic
from plugins.analysis.datathon import layout
from plugins.analysis.datathon.datacard import build_card, render_markdown
from plugins.analysis.datathon.source import load_media, load_observations
from plugins.analysis.datathon.split import SPLITS, TEST, TRAIN, split_rows

if TYPE_CHECKING:
    from core.engine import Engine

MEDIA_MODES = ("copy", "link")
DEFAULT_LABEL = "taxon_name"
BASE_COLUMNS = ("id", "contributor", "date", "hour", "lat", "lon", "location_privacy", "kind", "licence", "media")
"""What each row says, on both sides (the label only in train.csv)."""
_MEDIA_URL = "/api/v1/observations/{obs_id}/media/{media_id}"


@dataclass
class Options:
    """What ``observatory datathon create`` asks for."""

    name: str
    project: str
    out: Path
    filters: Mapping[str, str] = field(default_factory=dict)
    label: str = DEFAULT_LABEL
    test_share: float = 0.2
    split: str = "contributor+time"
    media: str = "copy"
    columns: tuple[str, ...] = ()
    seed: int | None = None


def create_datathon(engine: Engine, options: Options) -> dict[str, Any]:
    """Make the datathon ``options`` describe; return its data card (a dict)."""
    if options.media not in MEDIA_MODES:
        raise layout.DatathonError(f"media {options.media!r}: choose copy or link")
    if options.split not in SPLITS:
        raise layout.DatathonError(f"split {options.split!r}: choose one of {', '.join(SPLITS)}")
    out = Path(options.out)
    if out.exists() and any(out.iterdir()):
        raise layout.DatathonError(f"{out} exists and is not empty; choose a new folder (nothing was written)")
    context = get_project(engine, options.project)
    seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
    frame = load_observations(engine, options.project, options.filters)
    label = options.label
    if label not in frame.columns:
        available = ", ".join(c for c in frame.columns if c in (DEFAULT_LABEL, "category") or c.startswith("field."))
        raise layout.DatathonError(f"no column {label!r} to label rows with; choose --label among: {available}")
    for column in options.columns:
        if column not in frame.columns:
            raise layout.DatathonError(f"--column {column!r}: the observations have no such column")
        if column == label or column in BASE_COLUMNS or column in ("contributor_id", "observed_at"):
            raise layout.DatathonError(f"--column {column!r}: the label and the standard columns cannot be added")
    found = len(frame)
    excluded = {"no label": int(frame[label].isna().sum() + (frame[label].astype("string").str.strip() == "").sum())}
    frame = frame[frame[label].notna() & (frame[label].astype("string").str.strip() != "")]
    excluded["no contributor (imported)"] = int(frame["contributor_id"].isna().sum())
    frame = frame[frame["contributor_id"].notna()].copy()
    if frame.empty:
        raise layout.DatathonError(f"project {options.project!r} has no published observation with a {label!r} "
                                   f"and a contributor matching the filters ({found} published found)")
    frame["label"] = frame[label].astype("string").str.strip()
    local = frame["observed_at"].dt.tz_convert(ZoneInfo(context.timezone or "UTC"))
    frame["date"] = local.dt.strftime("%Y-%m-%d")
    frame["hour"] = local.dt.hour.astype("Int64")
    split = split_rows(frame.reset_index(drop=True), person="contributor_id", day="date",
                       test_share=options.test_share, how=options.split, seed=seed)
    frame = frame.reset_index(drop=True).loc[split.side.index]
    frame["side"] = split.side
    rng = np.random.default_rng(seed)
    people = np.sort(frame["contributor_id"].unique().astype(np.int64))
    pseudonym = dict(zip(people[rng.permutation(len(people))], (f"P{i + 1:04d}" for i in range(len(people)))))
    frame["contributor"] = frame["contributor_id"].astype(np.int64).map(pseudonym)
    width = max(5, len(str(len(frame))))
    frame["row_id"] = [f"d{i + 1:0{width}d}" for i in rng.permutation(len(frame))]

    part, org = layout.participants(out), layout.organiser(out)
    (part / layout.MEDIA).mkdir(parents=True, exist_ok=True)
    org.mkdir(parents=True, exist_ok=True)
    media_rows = load_media(engine, [int(i) for i in frame["id"]])
    media, media_licences, withheld = _media(engine, frame, media_rows, part, options.media)
    frame["media"] = frame["id"].map(lambda i: ";".join(media.get(int(i), []))).astype("string")
    frame["kind"] = frame["kind"].astype("string") if "kind" in frame else pd.NA

    shown = frame.rename(columns={"id": "observation_id"}).rename(columns={"row_id": "id"})
    base = list(BASE_COLUMNS) + list(options.columns)
    train = shown[shown["side"] == TRAIN].sort_values("id")
    test = shown[shown["side"] == TEST].sort_values("id")
    train[base + ["label"]].to_csv(part / layout.TRAIN_CSV, index=False)
    test[base].to_csv(part / layout.TEST_CSV, index=False)
    test[["id", "label"]].to_csv(org / layout.LABELS_CSV, index=False)
    shown.sort_values("id")[["id", "observation_id", "side"]].to_csv(org / layout.ROWS_CSV, index=False)

    card = build_card(options=options, project=context, frame=shown, found=found, excluded=excluded,
                      dropped=split.dropped, media_licences=media_licences, withheld=withheld,
                      engine_version=__version__, created_at=datetime.now(timezone.utc))
    (part / layout.CARD_JSON).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (part / layout.CARD_MD).write_text(render_markdown(card), encoding="utf-8")
    settings = {"name": options.name, "project": options.project, "label": label, "seed": seed,
                "classes": card["classes"], "split": options.split, "media": options.media,
                "created_at": card["created_at"]}
    (org / layout.SETTINGS).write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    layout.write_manifest(part)
    layout.write_manifest(org)
    return card


def _media(engine: Engine, frame: pd.DataFrame, media_rows: pd.DataFrame, part: Path,
           mode: str) -> tuple[dict[int, list[str]], dict[str, int], int]:
    """Each observation's media as test.csv/train.csv name them (``media/<sha256>.<ext>`` of the
    public copy, or the engine's URL for a training row with ``link``), the number of files per
    licence, and how many files were withheld (their metadata could not be removed)."""
    side = dict(zip(frame["id"].astype(int), frame["side"]))
    licence = dict(zip(frame["id"].astype(int), frame["licence"].astype("string").fillna("unknown")))
    base = engine.settings.base_url
    named: dict[int, list[str]] = {}
    licences: dict[str, int] = {}
    withheld = 0
    for row in media_rows.itertuples(index=False):
        obs = int(row.observation_id)
        if mode == "link" and side[obs] == TRAIN:
            name = base + _MEDIA_URL.format(obs_id=obs, media_id=int(row.media_id))
        else:
            try:
                data = engine.media.open_public(row.sha256, row.content_type)
            except (MediaNotPublic, OSError):
                withheld += 1
                continue
            digest = hashlib.sha256(data).hexdigest()
            extension = mimetypes.guess_extension(row.content_type) or ".bin"
            name = f"{layout.MEDIA}/{digest}{'.jpg' if extension in ('.jpe', '.jpeg') else extension}"
            target = part / name
            if not target.exists():
                target.write_bytes(data)
        named.setdefault(obs, []).append(name)
        licences[licence[obs]] = licences.get(licence[obs], 0) + 1
    return named, licences, withheld
