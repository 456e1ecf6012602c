"""A job's summary: how many events of each class in each stretch of the video (CSV and JSON).

A class is an animal's best species (its scientific name, else the model's label, else
"unidentified animal"), or "human", or "vehicle". An event counts in the bin where it starts.
Bins with no event leave no row; ``individuals`` adds up the events' counts (the most seen at once
in each), ``max_count`` is the largest of them.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from plugins.video_stream.camtrap import best_label, camtrap_time, parse_time

COLUMNS = ("bin_start_s", "bin_end_s", "bin_start_time", "bin_end_time", "category", "class",
           "events", "individuals", "max_count", "mean_score")


def event_class(event: dict[str, Any]) -> str:
    """The class an event is counted under."""
    category = str(event.get("category"))
    if category != "animal":
        return category
    scientific, label, _ = best_label(event)
    return scientific or label or "unidentified animal"


def _video_start(events: list[dict[str, Any]]) -> datetime | None:
    for event in events:
        start = parse_time(event.get("start_time"))
        if start is not None:
            return start - timedelta(seconds=float(event["start_s"]))
    return None


def summary_rows(events: list[dict[str, Any]], *, bin_s: float = 60.0) -> list[dict[str, Any]]:
    """Events per class per ``bin_s`` seconds of video, in time order then by class; absolute
    bin times (UTC) when the events have absolute times."""
    if not bin_s > 0:
        raise ValueError("bin_s must be a number of seconds above 0")
    start = _video_start(events)
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for event in events:
        key = (int(float(event["start_s"]) // bin_s), str(event.get("category")), event_class(event))
        groups.setdefault(key, []).append(event)
    rows: list[dict[str, Any]] = []
    for (index, category, name), members in sorted(groups.items()):
        lo, hi = index * bin_s, (index + 1) * bin_s
        scores = [s for s in (best_label(e)[2] for e in members) if s is not None]
        rows.append({
            "bin_start_s": round(lo, 3), "bin_end_s": round(hi, 3),
            "bin_start_time": camtrap_time(start + timedelta(seconds=lo)) if start else None,
            "bin_end_time": camtrap_time(start + timedelta(seconds=hi)) if start else None,
            "category": category, "class": name, "events": len(members),
            "individuals": sum(max(1, int(e.get("count") or 1)) for e in members),
            "max_count": max(max(1, int(e.get("count") or 1)) for e in members),
            "mean_score": round(sum(scores) / len(scores), 4) if scores else None,
        })
    return rows


def summary_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (a header, then one line per row; empty cells for unknown values)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    return out.getvalue()


def summary_json(events: list[dict[str, Any]], *, bin_s: float = 60.0) -> dict[str, Any]:
    """The summary as a JSON document: the bin width, totals per class, and the rows."""
    rows = summary_rows(events, bin_s=bin_s)
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = totals.setdefault(row["class"], {"class": row["class"], "category": row["category"],
                                                 "events": 0, "individuals": 0})
        total["events"] += row["events"]
        total["individuals"] += row["individuals"]
    return {"bin_s": bin_s, "events": len(events),
            "totals": sorted(totals.values(), key=lambda t: (-t["events"], t["class"])), "rows": rows}
