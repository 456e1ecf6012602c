"""A video event becomes a machine observation of the project (kind ``video_event``): at the
deployment's place, at the event's absolute start, with its keyframes (faces blurred when they
were written) as media, its classes, count and boxes as fields, and basis of record
MachineObservation (the Darwin Core export reads ``fields.basis_of_record``).

Events of humans are kept for the project's staff only: stored ``unpublished`` whatever the
project's auto-publishing, with a ``private`` place, so that no public list, map, count or
export shows them.

Each event is submitted with the client id ``video:<job uuid>:<seq>`` and no contributor: the
engine stores one observation per client id, so an event submitted again (a job resumed after
its worker died between the two steps) finds the first one instead of making another.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from core import lifecycle
from core.types import ObservationType
from plugins.video_stream.db import events

log = logging.getLogger(__name__)

KIND = "video_event"
CATEGORIES = ("animal", "human", "vehicle")
TIME_SOURCES = ("metadata", "setting", "job_created", "stream_clock")
MAX_BOXES = 30  # boxes kept in an observation's fields (all of them stay in the job's outputs)

_NUMBER = {"type": "number"}
_TOP = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "scientific_name": {"type": ["string", "null"]},
                   "taxon_id": {"type": ["integer", "null"]}, "score": {"type": "number", "minimum": 0, "maximum": 1}},
}
_BOX = {
    "type": "object",
    "properties": {"frame": {"type": "integer", "minimum": 0}, "t": _NUMBER,
                   "bbox": {"type": "array", "minItems": 4, "maxItems": 4,
                            "items": {"type": "number", "minimum": 0, "maximum": 1}},
                   "conf": {"type": "number", "minimum": 0, "maximum": 1}},
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-basis-of-record": "MachineObservation",
    "required": ["basis_of_record", "deployment", "job", "seq", "category", "start_offset_s", "end_offset_s",
                 "count"],
    "additionalProperties": False,
    "properties": {
        "basis_of_record": {"const": "MachineObservation", "title": "Basis of record"},
        "deployment": {"type": "string", "title": "Deployment (Camtrap DP deploymentID)"},
        "job": {"type": "string", "title": "Video job (uuid)"},
        "video": {"type": "string", "title": "Video file name"},
        "seq": {"type": "integer", "minimum": 1, "title": "Event number in the job"},
        "category": {"enum": list(CATEGORIES), "title": "Category",
                     "x-labels": {"animal": "Animal", "human": "Human", "vehicle": "Vehicle"}},
        "start_offset_s": {"type": "number", "minimum": 0, "title": "Start (seconds into the video)"},
        "end_offset_s": {"type": "number", "minimum": 0, "title": "End (seconds into the video)"},
        "start_time": {"type": "string", "title": "Start (ISO 8601)"},
        "end_time": {"type": "string", "title": "End (ISO 8601)"},
        "time_source": {"enum": list(TIME_SOURCES), "title": "Where the absolute time comes from",
                        "x-labels": {"metadata": "the video's metadata", "setting": "the job's start time",
                                     "job_created": "when the job was made (an estimate)",
                                     "stream_clock": "the server's clock while the stream was read"}},
        "time_estimated": {"type": "boolean", "title": "The time is an estimate (no start time known)"},
        "count": {"type": "integer", "minimum": 1, "title": "Most individuals seen at once"},
        "top_k": {"type": "array", "items": _TOP, "title": "Classes suggested by the model"},
        "scientific_name": {"type": "string", "title": "Scientific name (the model's first suggestion)"},
        "label": {"type": "string", "title": "Label (the model's first suggestion)"},
        "score": {"type": "number", "minimum": 0, "maximum": 1, "title": "Score of the first suggestion"},
        "boxes": {"type": "array", "items": _BOX, "title": "Bounding boxes [x, y, width, height], relative"},
        "boxes_total": {"type": "integer", "minimum": 0, "title": "Boxes of the event (the job's outputs hold all)"},
        "keyframes": {"type": "array", "title": "Keyframes (frame, seconds), as the observation's photos",
                      "items": {"type": "object", "properties": {"frame": {"type": "integer"}, "t": _NUMBER}}},
    },
}


def observation_type() -> ObservationType:
    return ObservationType(name=KIND, title="Video event",
                           description="An animal, a person or a vehicle passing a camera once, found in a video by "
                                       "the video_stream service (a machine observation).",
                           schema=SCHEMA)


def client_id(job: dict[str, Any], seq: int) -> str:
    return f"video:{job['uuid']}:{seq}"


def _thinned(boxes: list[dict[str, Any]], most: int = MAX_BOXES) -> list[dict[str, Any]]:
    """At most ``most`` boxes, evenly spread over the event (first and last kept)."""
    if len(boxes) <= most:
        return list(boxes)
    step = (len(boxes) - 1) / (most - 1)
    return [boxes[round(i * step)] for i in range(most)]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_fields(job: dict[str, Any], deployment: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The observation's fields for one event row."""
    video = job.get("video") or {}
    source = video.get("start_time_source") or "job_created"
    fields: dict[str, Any] = {
        "basis_of_record": "MachineObservation", "deployment": deployment["deployment_id"], "job": job["uuid"],
        "seq": event["seq"], "category": event["category"], "start_offset_s": round(float(event["start_s"]), 3),
        "end_offset_s": round(float(event["end_s"]), 3), "time_source": source,
        "time_estimated": source == "job_created", "count": max(1, int(event["count"])),
        "top_k": event["top_k"] or [], "boxes": _thinned(event["boxes"] or []),
        "boxes_total": len(event["boxes"] or []),
        "keyframes": [{"frame": k["frame"], "t": k["t"]} for k in event["keyframes"] or []],
    }
    if job.get("filename"):
        fields["video"] = job["filename"]
    for name in ("start_time", "end_time"):
        if event.get(name) is not None:
            fields[name] = _iso(event[name])
    top = (event["top_k"] or [None])[0]
    if event["category"] == "animal" and isinstance(top, dict):
        if isinstance(top.get("scientific_name"), str) and top["scientific_name"]:
            fields["scientific_name"] = top["scientific_name"]
        if isinstance(top.get("label"), str) and top["label"]:
            fields["label"] = top["label"]
        if isinstance(top.get("score"), (int, float)):
            fields["score"] = float(top["score"])
    return fields


def observed_at(job: dict[str, Any], event: dict[str, Any]) -> datetime:
    """The event's absolute start: stored with it, else the job's creation plus the offset."""
    if event.get("start_time") is not None:
        return event["start_time"]
    return job["created_at"] + timedelta(seconds=float(event["start_s"]))


def event_draft(job: dict[str, Any], deployment: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    human = event["category"] == "human"
    draft: dict[str, Any] = {
        "client_id": client_id(job, event["seq"]), "kind": KIND, "observed_at": observed_at(job, event),
        "location": {"lat": deployment["lat"], "lon": deployment["lon"]},
        "fields": event_fields(job, deployment, event),
    }
    if human:
        draft["location_privacy"] = "private"
    return draft


def keyframe_uploads(folder: Path, event: dict[str, Any]) -> list[lifecycle.Upload]:
    """The event's keyframe files (written blurred by the runner) as media."""
    uploads = []
    for key in event["keyframes"] or []:
        path = folder / key["file"]
        if path.is_file():
            uploads.append(lifecycle.Upload(path.read_bytes(), path.name, "image/jpeg"))
    return uploads


def make_observations(engine: Any, job: dict[str, Any], deployment: dict[str, Any], rows: list[dict[str, Any]],
                      folder: Path) -> list[int]:
    """One observation per event row that has none yet; returns their ids (in the rows' order).
    Raises the engine's ValidationFailed when the engine refuses one (the job then fails)."""
    made = []
    for event in rows:
        if event.get("observation_id"):
            made.append(event["observation_id"])
            continue
        status = "unpublished" if event["category"] == "human" else None
        result = lifecycle.submit(engine, job["project"], event_draft(job, deployment, event),
                                  keyframe_uploads(folder, event), None, actor=f"video_stream:job:{job['uuid']}",
                                  status=status)
        with engine.db.begin() as conn:
            conn.execute(update(events).where(events.c.job == job["id"], events.c.seq == event["seq"])
                         .values(observation_id=result.observation_id))
        event["observation_id"] = result.observation_id
        made.append(result.observation_id)
    return made
