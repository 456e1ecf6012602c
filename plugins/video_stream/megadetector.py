"""A job's events in the MegaDetector batch output format 1.6, which Timelapse, AddaxAI and the
MegaDetector tools load (https://lila.science/megadetector-output-format), and a checker of
that format.

One video is one entry of ``images`` with the video fields the format adds (1.4+):
``frame_rate``, ``frames_processed`` (the frames looked at) and, per detection,
``frame_number``. Every box of every event is a detection: ``category`` "1" animal, "2" person,
"3" vehicle; ``conf``; ``bbox`` [x_min, y_min, width, height] relative to the frame; animals'
``classifications`` [[class id, score], ...] best first, their names in
``classification_categories``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

from plugins.video_stream.camtrap import DETECTOR, classifier_name, parse_time

FORMAT_VERSION = "1.6"
DETECTION_CATEGORIES: dict[str, str] = {"1": "animal", "2": "person", "3": "vehicle"}
CATEGORY_IDS: dict[str, str] = {"animal": "1", "human": "2", "vehicle": "3"}
# the format's list of video extensions (MegaDetector's video_utils.VIDEO_EXTENSIONS)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mpeg", ".mpg", ".mov", ".mkv", ".flv")


def _md_time(when: datetime | None) -> str:
    return (when or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def sampled_frames(job: dict[str, Any]) -> list[int]:
    """The frames a finished job looked at, when the job does not list them: the
    ``frames_done`` samples ``ceil(k * fps / sample_fps)`` (source.FrameSource's sampling)."""
    video = job.get("video") or {}
    fps = float(video.get("fps") or 0)
    sample_fps = float((job.get("settings") or {}).get("sample_fps") or fps or 1)
    done = int(job.get("frames_done") or 0)
    if fps <= 0 or done <= 0:
        return []
    step = max(fps / sample_fps, 1.0)
    frames = sorted({math.ceil(k * step - 1e-9) for k in range(done)})
    total = video.get("frames")
    return [f for f in frames if total is None or f < int(total)]


def _round(value: float) -> float:
    return float(round(float(value), 4))


def _bbox(bbox: Sequence[float]) -> list[float] | None:
    """A relative [x, y, w, h] clipped to the frame (None when nothing is left)."""
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    x1, y1 = min(max(x + w, 0.0), 1.0), min(max(y + h, 0.0), 1.0)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return [_round(x0), _round(y0), _round(x1 - x0), _round(y1 - y0)]


def megadetector_json(*, job: dict[str, Any], events: list[dict[str, Any]], video_name: str,
                      frames_processed: Sequence[int] | None = None) -> dict[str, Any]:
    """The MegaDetector 1.6 document of a job: ``video_name`` is the ``file`` (as the user has
    it, relative to the folder Timelapse or AddaxAI opens); ``frames_processed`` defaults to
    :func:`sampled_frames` (and always holds every frame with a detection). A failed job is
    an entry with ``failure`` and no detections."""
    classes: dict[str, str] = {}  # class name -> id
    detections: list[dict[str, Any]] = []
    for event in sorted(events, key=lambda e: int(e["seq"])):
        category = CATEGORY_IDS.get(str(event.get("category")))
        if category is None:
            continue
        classifications = []
        if event.get("category") == "animal":
            for c in sorted(event.get("top_k") or [], key=lambda c: -float(c.get("score") or 0.0)):
                name = str(c.get("scientific_name") or c.get("label") or "").strip()
                if name:
                    class_id = classes.setdefault(name, str(len(classes)))
                    classifications.append([class_id, _round(min(max(float(c.get("score") or 0.0), 0.0), 1.0))])
        for box in event.get("boxes") or []:
            bbox = _bbox(box["bbox"]) if box.get("bbox") else None
            if bbox is None:
                continue
            detection: dict[str, Any] = {
                "category": category, "conf": _round(min(max(float(box.get("conf") or 0.0), 0.0), 1.0)),
                "bbox": bbox, "frame_number": int(box["frame"]),
            }
            if classifications:
                detection["classifications"] = classifications
            detections.append(detection)
    detections.sort(key=lambda d: (d["frame_number"], d["category"]))

    video = job.get("video") or {}
    entry: dict[str, Any] = {"file": video_name, "frame_rate": float(video.get("fps") or 0.0)}
    if job.get("state") == "failed":
        entry.update({"failure": str(job.get("error") or job.get("error_code") or "failed"), "detections": None,
                      "frames_processed": []})
    else:
        seen = set(frames_processed if frames_processed is not None else sampled_frames(job))
        entry["frames_processed"] = sorted(seen | {d["frame_number"] for d in detections})
        entry["detections"] = detections
    finished = parse_time(job.get("finished_at")) or parse_time(job.get("updated_at"))
    info: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "detector": DETECTOR,
        "detection_completion_time": _md_time(finished),
        "classifier": classifier_name(job),
        "classification_completion_time": _md_time(finished),
        "summary_report": f"{len(events)} events in {video_name}",
    }
    doc: dict[str, Any] = {"info": info, "detection_categories": dict(DETECTION_CATEGORIES)}
    if classes:
        doc["classification_categories"] = {class_id: name for name, class_id in classes.items()}
    doc["images"] = [entry]
    return doc


# ----------------------------------------------------------------------------- checking

def _category_map(doc: dict[str, Any], key: str, problems: list[str]) -> dict[str, str]:
    mapping = doc.get(key)
    if not isinstance(mapping, dict):
        problems.append(f"{key} is not an object")
        return {}
    for category_id, name in mapping.items():
        if not (isinstance(category_id, str) and category_id.isdigit()):
            problems.append(f"{key}: id {category_id!r} is not a non-negative integer in a string")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{key} {category_id}: the name is blank")
    return mapping


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_detection(det: Any, where: str, doc: dict[str, Any], video: bool,
                     frames: set[int] | None) -> list[str]:
    problems: list[str] = []
    if not isinstance(det, dict):
        return [f"{where}: a detection is not an object"]
    categories = doc.get("detection_categories")
    if not isinstance(categories, dict) or det.get("category") not in categories:
        problems.append(f"{where}: category {det.get('category')!r} is not in detection_categories")
    conf = det.get("conf")
    if not isinstance(conf, float) or not 0.0 <= conf <= 1.0:
        problems.append(f"{where}: conf {conf!r} is not a number from 0 to 1 (a float)")
    bbox = det.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        problems.append(f"{where}: bbox {bbox!r} is not [x_min, y_min, width, height]")
    else:
        x, y, w, h = bbox
        if min(x, y) < 0 or w <= 0 or h <= 0 or x + w > 1 + 1e-6 or y + h > 1 + 1e-6:
            problems.append(f"{where}: bbox {bbox} is not inside the frame (relative coordinates 0-1)")
    if det.get("classifications") is not None:
        classes = doc.get("classification_categories")
        classes = classes if isinstance(classes, dict) else {}
        pairs = det["classifications"]
        if not isinstance(pairs, list):
            problems.append(f"{where}: classifications is not a list")
        else:
            scores = []
            for pair in pairs:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                        and _is_number(pair[1]) and 0 <= pair[1] <= 1):
                    problems.append(f"{where}: classification {pair!r} is not [class id, score]")
                    continue
                if pair[0] not in classes:
                    problems.append(f"{where}: class {pair[0]!r} is not in classification_categories")
                scores.append(pair[1])
            if scores != sorted(scores, reverse=True):
                problems.append(f"{where}: classifications are not in descending order of score")
    if video:
        number = det.get("frame_number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            problems.append(f"{where}: frame_number {number!r} is not a frame number (an integer >= 0)")
        elif frames is not None and number not in frames:
            problems.append(f"{where}: frame {number} is not in frames_processed")
    return problems


def _check_image(im: Any, i: int, doc: dict[str, Any]) -> list[str]:
    if not isinstance(im, dict) or not isinstance(im.get("file"), str) or not im["file"]:
        return [f"images[{i}]: not an object with a file"]
    where = f"images[{i}] ({im['file']})"
    problems: list[str] = []
    video = PurePosixPath(im["file"].replace("\\", "/")).suffix.lower() in VIDEO_EXTENSIONS
    failed = im.get("failure") is not None
    if failed and not isinstance(im["failure"], str):
        problems.append(f"{where}: failure is not a string")
    if failed and im.get("detections") is not None:
        problems.append(f"{where}: a failed file has detections (they should be null)")
    if not failed and not isinstance(im.get("detections"), list):
        problems.append(f"{where}: detections is not a list (an empty list when nothing was found)")
    frames: set[int] | None = None
    if video:
        rate = im.get("frame_rate")
        if not _is_number(rate) or (rate <= 0 and not failed):
            problems.append(f"{where}: frame_rate {rate!r} is not a number above 0")
        processed = im.get("frames_processed")
        if not (isinstance(processed, list) and all(isinstance(f, int) and f >= 0 for f in processed)):
            problems.append(f"{where}: frames_processed is not a list of frame numbers")
        else:
            frames = set(processed)
    for j, det in enumerate(im.get("detections") or []):
        problems += _check_detection(det, f"{where} detection {j}", doc, video, frames)
    return problems


def check_megadetector(doc: Any) -> list[str]:
    """Problems of a document against the MegaDetector batch output format (1.6 rules: a string
    ``format_version``, blank category names refused; 1.4+ video fields); [] when it is valid."""
    if not isinstance(doc, dict):
        return ["the document is not a JSON object"]
    problems: list[str] = []
    info = doc.get("info")
    version = info.get("format_version") if isinstance(info, dict) else None
    if not isinstance(info, dict):
        problems.append("info is missing or not an object")
    elif not isinstance(version, str):
        problems.append(f"info.format_version {version!r} is not a string-formatted number")
    else:
        try:
            if float(version) < 1.4:
                problems.append(f"info.format_version {version} is older than 1.4 (no video fields)")
        except ValueError:
            problems.append(f"info.format_version {version!r} is not a string-formatted number")
    for key in ("detection_categories", "images"):
        if key not in doc:
            problems.append(f"{key} is missing")
    if "detection_categories" in doc:
        _category_map(doc, "detection_categories", problems)
    if "classification_categories" in doc:
        classes = _category_map(doc, "classification_categories", problems)
        descriptions = doc.get("classification_category_descriptions")
        if isinstance(descriptions, dict) and set(descriptions) != set(classes):
            problems.append("classification_category_descriptions has other ids than classification_categories")
    images = doc.get("images", [])
    if not isinstance(images, list):
        problems.append("images is not a list")
        images = []
    for i, im in enumerate(images):
        problems += _check_image(im, i, doc)
    return problems
