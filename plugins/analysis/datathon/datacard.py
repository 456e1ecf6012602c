"""A datathon's data card: what the data are, where they come from, under which licences, how
they were split and how submissions are scored (``datacard.json``, and ``datacard.md`` for
people)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd

from plugins.analysis.datathon.predictions import MAX_LABELS
from plugins.analysis.datathon.split import TEST, TRAIN

if TYPE_CHECKING:
    from core.types import ProjectContext

COLUMNS = {
    "id": "this datathon's row id (random; not the engine's observation id)",
    "contributor": "who observed it, as a pseudonym of this datathon only (P0001...); nobody is on both sides",
    "date": "the local day it was observed (the project's time zone); no day is on both sides",
    "hour": "the local hour it was observed (0-23)",
    "lat": "latitude as the public sees it (on the project's grid, or its obscured cell); empty when private",
    "lon": "longitude, likewise",
    "location_privacy": "open, obscured (the place shown is a coarse cell) or private (no place)",
    "kind": "the project's observation kind",
    "licence": "the licence of the observation and its media",
    "media": "its photos or other media, ';'-separated: files under media/ (public copies, without location "
             "or camera metadata) or, in train.csv with --media link, the engine's URLs",
    "label": "the class to predict (train.csv only)",
}
PREDICTIONS_FORMAT = (
    "A CSV with a header line and one line per row of test.csv: 'id', then either 'label' (and optionally "
    "'score', the model's confidence in that label, from 0 to 1) or 'label_1' ... 'label_k' (k at most "
    f"{MAX_LABELS}, best first; later ones may be empty) and optionally 'score_1' ... 'score_k'. Labels are "
    "written exactly as in 'classes'. Every test id once, no other ids."
)
SCORING = {
    "top1": "share of test rows whose first label is right",
    "top5": "share whose right label is among the labels given (up to five)",
    "macro_f1": "F1 of each class of the test part, averaged with equal weight per class",
    "per_class_recall": "for each class, the share of its test rows labelled right",
    "ece": "expected calibration error of the first label's score (ten equal bins), when scores are given",
}


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def build_card(*, options: Any, project: ProjectContext, frame: pd.DataFrame, found: int,
               excluded: Mapping[str, int], dropped: Mapping[str, int], media_licences: Mapping[str, int],
               withheld: int, engine_version: str, created_at: datetime) -> dict[str, Any]:
    """The card of a datathon made with ``options`` from ``frame`` (its kept rows, ``side`` set)."""
    train, test = frame[frame["side"] == TRAIN], frame[frame["side"] == TEST]
    classes = sorted(train["label"].unique())
    per_class = {c: {"train": int((train["label"] == c).sum()), "test": int((test["label"] == c).sum())}
                 for c in classes}
    sides = {name: {
        "rows": len(part),
        "contributors": int(part["contributor"].nunique()),
        "days": int(part["date"].nunique()),
        "first_day": str(part["date"].min()),
        "last_day": str(part["date"].max()),
        "licences": _counts(part["licence"].astype("string").fillna("unknown")),
    } for name, part in (("train", train), ("test", test))}
    return {
        "name": options.name,
        "source": {"project": project.slug, "project_name": project.name, "filters": dict(options.filters),
                   "observations": "published observations with a label and a contributor",
                   "engine_version": engine_version},
        "created_at": created_at.isoformat(timespec="seconds"),
        "label": {"column": options.label, "classes": len(classes)},
        "classes": classes,
        "per_class": per_class,
        "rows": {"published_found": found, "excluded": dict(excluded), "dropped_by_split": dict(dropped),
                 "train": len(train), "test": len(test)},
        "split": {
            "how": options.split,
            "test_share_asked": options.test_share,
            "test_share": round(len(test) / len(frame), 4),
            "contributors_on_both_sides": int(len(set(train["contributor"]) & set(test["contributor"]))),
            "days_on_both_sides": int(len(set(train["date"]) & set(test["date"]))),
            "rule": "contributors (or, with 'time', the latest days) are assigned to a side; rows of a "
                    "contributor or a day on both sides are dropped from the side where they have fewer; test rows "
                    "of a class not in the training part are dropped",
            "seed": "kept by the organiser",
        },
        "sides": sides,
        "media": {"mode": options.media, "files_by_licence": dict(media_licences), "withheld": withheld,
                  "note": "test media are always copied: a link names the observation, whose label the engine shows"},
        "columns": {**COLUMNS, **{c: "an extra column the organiser chose" for c in options.columns}},
        "predictions_format": PREDICTIONS_FORMAT,
        "scoring": SCORING,
        "privacy": "no names, e-mails or account ids; contributors are pseudonyms of this datathon only; places "
                   "as the public sees them; times as the local day and hour; media without metadata",
        "attribution": f"observations of the {project.name} project; cite the project and, for CC BY "
                       "licences, its contributors as the project credits them",
    }


def render_markdown(card: dict[str, Any]) -> str:
    """``card`` as a page for people (datacard.md)."""
    rows, split, sides = card["rows"], card["split"], card["sides"]
    lines = [
        f"# Datathon {card['name']}: data card",
        "",
        f"From project **{card['source']['project_name']}** (`{card['source']['project']}`), "
        f"made {card['created_at']} with observatory engine {card['source']['engine_version']}.",
        f"Filters: {', '.join(f'{k}={v}' for k, v in card['source']['filters'].items()) or 'none'}. "
        f"Label: `{card['label']['column']}`, {card['label']['classes']} classes.",
        "",
        "## Rows",
        "",
        f"- published observations found: {rows['published_found']}",
        *(f"- left out, {reason}: {n}" for reason, n in rows["excluded"].items() if n),
        *(f"- dropped by the split, {reason}: {n}" for reason, n in rows["dropped_by_split"].items() if n),
        f"- training part: {rows['train']} rows (train.csv, with labels)",
        f"- test part: {rows['test']} rows (test.csv, without labels)",
        "",
        "## Split",
        "",
        f"`{split['how']}`, test share asked {split['test_share_asked']}, got {split['test_share']}. "
        f"Contributors on both sides: {split['contributors_on_both_sides']}; days on both sides: "
        f"{split['days_on_both_sides']}. Rule: {split['rule']}.",
        "",
        "| side | rows | contributors | days | first day | last day |",
        "|---|---|---|---|---|---|",
        *(f"| {name} | {s['rows']} | {s['contributors']} | {s['days']} | {s['first_day']} | {s['last_day']} |"
          for name, s in sides.items()),
        "",
        "## Classes",
        "",
        "| class | train | test |",
        "|---|---|---|",
        *(f"| {c} | {n['train']} | {n['test']} |" for c, n in card["per_class"].items()),
        "",
        "## Licences",
        "",
        *(f"- {name} rows: " + ", ".join(f"{lic} {n}" for lic, n in s["licences"].items()) for name, s in sides.items()),
        "- media files: " + (", ".join(f"{lic} {n}" for lic, n in card["media"]["files_by_licence"].items()) or "none")
        + f" ({card['media']['mode']}; {card['media']['withheld']} withheld)",
        f"- {card['attribution']}",
        "",
        "## Columns",
        "",
        *(f"- `{name}`: {text}" for name, text in card["columns"].items()),
        "",
        "## Predictions",
        "",
        card["predictions_format"],
        "",
        "    id,label_1,label_2,label_3,score_1,score_2,score_3",
        f"    d00017,{card['classes'][0]},,,0.92,,",
        "",
        "## Scoring",
        "",
        *(f"- `{name}`: {text}" for name, text in card["scoring"].items()),
        "",
        "## Privacy",
        "",
        card["privacy"] + ".",
        "",
    ]
    return "\n".join(lines)
