"""A job's events as a Camera Trap Data Package (Camtrap DP 1.0, release 1.0.1), and its
validation offline against the vendored profile and table schemas (``data/camtrap-dp-1.0``).

The package (https://camtrap-dp.tdwg.org/data) holds:

* ``deployments.csv``: the deployment (its place on the project's public grid unless the caller
  asks for the exact place);
* ``media.csv``: each event's keyframes, as images with their timestamps;
* ``observations.csv``: one event-level observation per event (``observationLevel`` event, its
  type, scientific name, count, the machine's classification), and one media-level observation
  per box on each keyframe: Camtrap DP 1.0 defines ``bboxX/Y/Width/Height`` relative to "the
  media file identified by ``mediaID``", and only media-level observations have one. A job with
  no event at all gives one ``blank`` event-level observation spanning the video.

Events of people are typed ``human``, their keyframes are copied with faces (and the heads in
the event's boxes) blurred and are marked ``filePublic`` false; ``include_humans=False`` leaves
them out altogether.

Absolute times: the event's own, else the video's start (its metadata) plus the offset; when the
video's start is unknown the job's start stands in and the deployment says ``timestampIssues``.
Camtrap DP's datetimes have whole seconds: a start is rounded down, an end up.
"""

from __future__ import annotations

import csv
import json
import math
import mimetypes
import re
import shutil
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from core.licences import licence_uri
from core.privacy import METRES_PER_DEGREE, precision_digits, snap
from core.types import ProjectContext
from plugins.video_stream.blur import blur_faces

CAMTRAP_DP_VERSION = "1.0.1"
_BASE_URL = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{CAMTRAP_DP_VERSION}/"
PROFILE_URL = _BASE_URL + "camtrap-dp-profile.json"
TABLES: tuple[str, ...] = ("deployments", "media", "observations")
SCHEMA_URLS: dict[str, str] = {name: f"{_BASE_URL}{name}-table-schema.json" for name in TABLES}
DATA_DIR = Path(__file__).parent / "data" / "camtrap-dp-1.0"
# the URLs the profile and the package name -> the vendored files
_VENDORED: dict[str, str] = {
    PROFILE_URL: "camtrap-dp-profile.json",
    **{SCHEMA_URLS[name]: f"{name}-table-schema.json" for name in TABLES},
    "https://specs.frictionlessdata.io/schemas/data-package.json": "data-package.json",
    "https://frictionlessdata.io/schemas/data-package.json": "data-package.json",
    "http://json.schemastore.org/geojson.json": "geojson.json",
}
OBSERVATION_TYPES = ("animal", "human", "vehicle")  # our event categories, Camtrap DP's words too
MAX_PROBLEMS_PER_TABLE = 50
STAND_IN_STARTS = ("job_created", "job_started")  # video.start_time_source values that are guesses
DETECTOR = "observatory video_stream (background subtraction, tracks; OpenCV HOG/Haar for people)"


# ----------------------------------------------------------------------------- small helpers

def parse_time(value: Any) -> datetime | None:
    """A row's datetime (a datetime or an ISO 8601 string) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def camtrap_time(when: datetime, *, up: bool = False) -> str:
    """``YYYY-MM-DDThh:mm:ssZ`` (Camtrap DP has whole seconds: down, or ``up`` for an end)."""
    when = when.astimezone(timezone.utc)
    if up and when.microsecond:
        when += timedelta(seconds=1)
    return when.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float, digits: int = 6) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "package"


def video_label(job: dict[str, Any]) -> str:
    """What the package may say of the video: the uploaded file's name or the file's name; never
    a URL (it may carry credentials) nor a server's folder."""
    if job.get("filename"):
        return str(job["filename"])
    if job.get("source_kind") in ("path", "upload") and job.get("source"):
        return Path(str(job["source"])).name
    return "live stream" if job.get("source_kind") == "stream" else "video from a URL"


def classifier_name(job: dict[str, Any]) -> str:
    """The model that classified the crops, with its version where the job says it
    (``job["classifier"]`` or ``settings["classifier"]``: a string or {name, version};
    else ``settings["model"]``)."""
    settings = job.get("settings") or {}
    named = job.get("classifier") or settings.get("classifier") or settings.get("model")
    if isinstance(named, dict):
        version = named.get("version")
        return f"{named.get('name', 'species_id')}" + (f" {version}" if version else "")
    return str(named) if named else "species_id (default model)"


def best_label(event: dict[str, Any]) -> tuple[str | None, str | None, float | None]:
    """(scientific name, label, score) of an animal event's best class (Nones when unknown)."""
    top = event.get("top_k") or []
    if event.get("category") != "animal" or not top:
        return None, None, None
    first = max(top, key=lambda c: float(c.get("score") or 0.0))
    score = first.get("score")
    return first.get("scientific_name") or None, first.get("label") or None, None if score is None else float(score)


def _max_conf(event: dict[str, Any]) -> float | None:
    confs = [float(b["conf"]) for b in event.get("boxes") or [] if b.get("conf") is not None]
    return max(confs) if confs else None


class Clock:
    """Absolute times of a job's video: its start (metadata, a setting, or the events' own
    times), else the job's start as a stand-in (``known`` False, as when the job's ``video``
    says its ``start_time_source`` is a stand-in)."""

    def __init__(self, job: dict[str, Any], events: Sequence[dict[str, Any]]) -> None:
        video = job.get("video") or {}
        start = parse_time(video.get("start_time"))
        if start is None:
            for event in events:
                if event.get("start_time") is not None:
                    start = parse_time(event["start_time"]) - timedelta(seconds=float(event["start_s"]))
                    break
        # the runner records where the start came from; the job's own creation time is a stand-in
        self.known = start is not None and video.get("start_time_source") not in STAND_IN_STARTS
        stand_in = parse_time(job.get("started_at")) or parse_time(job.get("created_at"))
        self.start: datetime = start or stand_in or datetime.now(timezone.utc)
        duration = video.get("duration_s")
        self.duration_s: float | None = None if duration is None else float(duration)

    def at(self, offset_s: float) -> datetime:
        return self.start + timedelta(seconds=float(offset_s))

    def event_start(self, event: dict[str, Any]) -> datetime:
        return parse_time(event.get("start_time")) or self.at(event["start_s"])

    def event_end(self, event: dict[str, Any]) -> datetime:
        return parse_time(event.get("end_time")) or self.at(event["end_s"])


# ----------------------------------------------------------------------------- the schemas

@lru_cache(maxsize=None)
def vendored(url: str) -> dict[str, Any]:
    """The vendored copy of a schema the standard names by URL."""
    with open(DATA_DIR / _VENDORED[url], encoding="utf-8") as handle:
        return json.load(handle)


def table_schema(name: str) -> dict[str, Any]:
    """Camtrap DP's Table Schema of ``deployments``, ``media`` or ``observations``."""
    return vendored(SCHEMA_URLS[name])


def field_names(name: str) -> list[str]:
    return [f["name"] for f in table_schema(name)["fields"]]


# ----------------------------------------------------------------------------- writing

def _contributors(project: ProjectContext) -> list[dict[str, Any]]:
    """The dataset's people and organisations in Camtrap DP's roles (no e-mail addresses)."""
    out: list[dict[str, Any]] = []

    def add(person: dict[str, Any], role: str) -> None:
        title = person.get("name") or person.get("organisation")
        if not title:
            return
        entry: dict[str, Any] = {"title": str(title), "role": role}
        if person.get("organisation") and person.get("organisation") != title:
            entry["organization"] = str(person["organisation"])
        if isinstance(person.get("url"), str) and urlsplit(person["url"]).scheme in ("http", "https"):
            entry["path"] = person["url"]
        out.append(entry)

    dataset = project.dataset
    for person in dataset.contacts:
        add(person, "contact")
    for person in dataset.creators:
        add(person, "contributor")
    if dataset.publisher:
        add(dataset.publisher, "publisher")
    if dataset.rights_holder:
        out.append({"title": dataset.rights_holder, "role": "rightsHolder"})
    return out or [{"title": project.name, "role": "publisher"}]


def _licences(project: ProjectContext) -> list[dict[str, Any]]:
    uri = licence_uri(project.licence)
    licence: dict[str, Any] = {"name": project.licence}
    if uri:
        licence["path"] = uri
    return [{**licence, "scope": "data"}, {**licence, "scope": "media"}]


def _deployment_row(deployment: dict[str, Any], clock: Clock, digits: int | None,
                    first: datetime, last: datetime) -> dict[str, Any]:
    start = parse_time(deployment.get("start")) or first
    end = parse_time(deployment.get("end")) or last
    uncertainty = None
    if digits is not None:  # the smallest circle holding a grid cell: half its diagonal
        uncertainty = max(1, math.ceil(METRES_PER_DEGREE / 10**digits * math.sqrt(2) / 2))
    return {
        "deploymentID": deployment["deployment_id"],
        "locationName": deployment.get("location_name"),
        "latitude": snap(float(deployment["lat"]), digits),
        "longitude": snap(float(deployment["lon"]), digits),
        "coordinateUncertainty": uncertainty,
        "deploymentStart": camtrap_time(min(start, first)),
        "deploymentEnd": camtrap_time(max(end, last), up=True),
        "cameraModel": deployment.get("camera_model"),
        "cameraHeight": deployment.get("camera_height_m"),
        "timestampIssues": not clock.known,
        "baitUse": deployment.get("bait"),
        "habitat": deployment.get("habitat"),
    }


def _box_at(event: dict[str, Any], frame: int) -> list[dict[str, Any]]:
    """The event's boxes on ``frame`` (else on the nearest frame that has some)."""
    boxes = [b for b in event.get("boxes") or [] if b.get("bbox")]
    if not boxes:
        return []
    exact = [b for b in boxes if int(b.get("frame", -1)) == frame]
    if exact:
        return exact
    nearest = min(boxes, key=lambda b: abs(int(b.get("frame", 0)) - frame))
    return [b for b in boxes if b.get("frame") == nearest.get("frame")]


def _bbox_cells(bbox: Sequence[float]) -> dict[str, float] | None:
    """Camtrap DP's relative box, clipped to the frame (None when nothing is left of it)."""
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    x1, y1 = min(max(x + w, 0.0), 1.0), min(max(y + h, 0.0), 1.0)
    if x1 - x0 < 1e-6 or y1 - y0 < 1e-6:
        return None
    return {"bboxX": round(x0, 6), "bboxY": round(y0, 6),
            "bboxWidth": round(x1 - x0, 6), "bboxHeight": round(y1 - y0, 6)}


def _copy_keyframe(source: Path, target: Path, *, people: list[dict[str, Any]] | None) -> bool:
    """Copy a keyframe into the package; for a human event (``people``: its boxes on that
    frame) with faces and heads blurred. False when the file is missing."""
    if not source.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    if people is None:
        shutil.copyfile(source, target)
        return True
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if image is None:
        return False
    return bool(cv2.imwrite(str(target), blur_faces(image, people=[b["bbox"] for b in people])))


def _write_csv(path: Path, name: str, rows: Iterable[dict[str, Any]]) -> None:
    fields = field_names(name)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            unknown = set(row) - set(fields)
            if unknown:
                raise ValueError(f"{name}: no such Camtrap DP field {sorted(unknown)}")
            writer.writerow([_cell(row.get(f)) for f in fields])


def write_camtrap_dp(folder: Path, *, project: ProjectContext, deployment: dict[str, Any],
                     job: dict[str, Any], events: list[dict[str, Any]], media_base_url: str | None = None,
                     media_folder: Path | None = None, exact_place: bool = False,
                     include_humans: bool = True, created: datetime | None = None,
                     sampling_design: str = "opportunistic", zip_package: bool = True) -> Path:
    """Write the job's Camtrap DP package into ``folder`` (and ``<folder>.zip`` beside it) and
    return the folder.

    Keyframes (``event["keyframes"]``: ``{frame, t, file}``, ``file`` relative to the job's
    folder) become media: with ``media_base_url`` their ``filePath`` is that URL + ``/`` + file
    (hosted elsewhere); else they are copied from ``media_folder`` (the job's folder) into
    ``media/`` (people's faces blurred). With neither, or when a keyframe's file is missing, the
    keyframe is left out (the event-level observation stays). The deployment's place is on the
    project's public grid (``location_precision``) unless ``exact_place`` (staff only)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    events = sorted(events, key=lambda e: int(e["seq"]))
    clock = Clock(job, events)
    kept = [e for e in events if include_humans or e.get("category") != "human"]
    digits = None if exact_place else precision_digits(project)
    job_key = str(job.get("uuid") or job["id"])
    deployment_id = str(deployment["deployment_id"])
    classified_by = classifier_name(job)
    classified_at = parse_time(job.get("finished_at")) or parse_time(job.get("updated_at")) or clock.start
    label = video_label(job)

    media_rows: list[dict[str, Any]] = []
    observation_rows: list[dict[str, Any]] = []
    times: list[datetime] = [clock.start]
    if clock.duration_s is not None:
        times.append(clock.at(clock.duration_s))
    taxa: dict[str, dict[str, Any]] = {}

    for event in kept:
        category = event.get("category")
        obs_type = category if category in OBSERVATION_TYPES else "unknown"
        human = category == "human"
        scientific, common, score = best_label(event)
        probability = score if obs_type == "animal" else _max_conf(event)
        start, end = clock.event_start(event), clock.event_end(event)
        times += [start, end]
        event_id = f"{job_key}-{int(event['seq'])}"
        if scientific:
            taxon = taxa.setdefault(scientific, {"scientificName": scientific})
            if common and common != scientific:
                taxon.setdefault("vernacularNames", {"eng": common})
        alternatives = "; ".join(f"{c.get('scientific_name') or c.get('label')} {float(c.get('score') or 0):.3f}"
                                 for c in (event.get("top_k") or []))
        common_cells = {
            "deploymentID": deployment_id, "eventID": event_id, "observationType": obs_type,
            "scientificName": scientific, "classificationMethod": "machine",
            "classifiedBy": classified_by if obs_type == "animal" else DETECTOR,
            "classificationTimestamp": camtrap_time(classified_at),
            "classificationProbability": None if probability is None else round(min(max(probability, 0.0), 1.0), 4),
        }
        tags = [f"frames:{int(event['start_frame'])}-{int(event['end_frame'])}",
                f"offset_s:{float(event['start_s']):.2f}-{float(event['end_s']):.2f}"]
        if common and not scientific:
            tags.append(f"label:{common}")
        observation_rows.append({
            **common_cells, "observationID": event_id, "observationLevel": "event",
            "eventStart": camtrap_time(start), "eventEnd": camtrap_time(end, up=True),
            "count": max(1, int(event.get("count") or 1)), "observationTags": "|".join(tags),
            "observationComments": f"top-k: {alternatives}" if alternatives else None,
        })
        for keyframe in sorted(event.get("keyframes") or [], key=lambda k: int(k["frame"])):
            frame = int(keyframe["frame"])
            media_id = f"{event_id}-{frame}"
            file = str(keyframe.get("file") or "")
            suffix = Path(file).suffix.lower() or ".jpg"
            if media_base_url:
                file_path = media_base_url.rstrip("/") + "/" + file.lstrip("/")
            elif media_folder is not None and file and _copy_keyframe(
                    Path(media_folder) / file, folder / "media" / f"{media_id}{suffix}",
                    people=_box_at(event, frame) if human else None):
                file_path = f"media/{media_id}{suffix}"
            else:
                continue
            taken = start + timedelta(seconds=float(keyframe.get("t", event["start_s"])) - float(event["start_s"]))
            media_rows.append({
                "mediaID": media_id, "deploymentID": deployment_id, "captureMethod": "activityDetection",
                "timestamp": camtrap_time(taken), "filePath": file_path, "filePublic": not human,
                "fileName": Path(file).name or None,
                "fileMediatype": mimetypes.guess_type(f"x{suffix}")[0] or "image/jpeg",
                "mediaComments": f"frame {frame} ({float(keyframe.get('t', 0.0)):.2f} s) of {label}",
            })
            for i, box in enumerate(_box_at(event, frame), start=1):
                cells = _bbox_cells(box["bbox"])
                if cells is None:
                    continue
                observation_rows.append({
                    **common_cells, **cells, "observationID": f"{media_id}-{i}", "mediaID": media_id,
                    "observationLevel": "media", "eventStart": camtrap_time(taken),
                    "eventEnd": camtrap_time(taken), "count": 1,
                })

    if not events:  # the video was looked at, and nothing passed
        end = clock.at(clock.duration_s or 0.0)
        observation_rows.append({
            "observationID": f"{job_key}-blank", "deploymentID": deployment_id, "eventID": f"{job_key}-blank",
            "eventStart": camtrap_time(clock.start), "eventEnd": camtrap_time(end, up=True),
            "observationLevel": "event", "observationType": "blank", "classificationMethod": "machine",
            "classifiedBy": DETECTOR, "classificationTimestamp": camtrap_time(classified_at),
            "observationComments": f"nothing moved in {label}",
        })

    first, last = min(times), max(times)
    deployment_row = _deployment_row(deployment, clock, digits, first, last)
    _write_csv(folder / "deployments.csv", "deployments", [deployment_row])
    _write_csv(folder / "media.csv", "media", media_rows)
    _write_csv(folder / "observations.csv", "observations", observation_rows)

    descriptor = _descriptor(project, deployment, job, deployment_row, label, digits, taxa,
                             created or datetime.now(timezone.utc), sampling_design)
    with open(folder / "datapackage.json", "w", encoding="utf-8") as handle:
        json.dump(descriptor, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    if zip_package:
        shutil.make_archive(str(folder), "zip", root_dir=folder)
    return folder


def _descriptor(project: ProjectContext, deployment: dict[str, Any], job: dict[str, Any],
                deployment_row: dict[str, Any], label: str, digits: int | None,
                taxa: dict[str, dict[str, Any]], created: datetime, sampling_design: str) -> dict[str, Any]:
    resources = [{
        "name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
        "mediatype": "text/csv", "encoding": "utf-8", "schema": SCHEMA_URLS[name],
    } for name in TABLES]
    descriptor: dict[str, Any] = {
        "resources": resources,
        "profile": PROFILE_URL,
        "name": _slug(f"{project.slug}-{deployment['deployment_id']}-{str(job.get('uuid') or job['id'])[:8]}"),
        "id": str(job.get("uuid") or job["id"]),
        "created": camtrap_time(created),
        "title": f"{project.name}: {label} at deployment {deployment['deployment_id']}",
        "contributors": _contributors(project),
        "description": (f"Machine observations of the animals, people and vehicles passing in {label}, "
                        f"found by {DETECTOR} and "
                        f"classified by {classifier_name(job)}. One event-level observation per pass; "
                        "media-level observations hold each keyframe's boxes."),
        "version": "1.0",
        "keywords": ["camera traps", "video", "machine observations"],
        "sources": [{"title": "Observatory engine, video_stream service", "version": "0.1.0"}],
        "licenses": _licences(project),
        "project": {
            "id": project.slug, "title": project.name, "description": project.description,
            "samplingDesign": sampling_design, "captureMethod": ["activityDetection"],
            "individualAnimals": False, "observationLevel": ["media", "event"],
        },
        "spatial": {"type": "Point", "coordinates": [deployment_row["longitude"], deployment_row["latitude"]]},
        "temporal": {"start": deployment_row["deploymentStart"][:10], "end": deployment_row["deploymentEnd"][:10]},
        "taxonomic": [taxa[name] for name in sorted(taxa)],
    }
    if project.dataset.citation:
        descriptor["bibliographicCitation"] = project.dataset.citation
    if digits is not None:
        descriptor["coordinatePrecision"] = float(f"1e-{digits}")
    return descriptor


# ----------------------------------------------------------------------------- validation

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or (len(value) == 10 and bool(date.fromisoformat(value)))


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or (bool(_RFC3339.match(value)) and bool(parse_time(value)))


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


@_FORMATS.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or "@" in value


@lru_cache(maxsize=1)
def _profile_validator() -> Draft4Validator:
    registry: Registry = Registry().with_resources(
        (url, Resource.from_contents(vendored(url), default_specification=DRAFT4)) for url in _VENDORED)
    return Draft4Validator(vendored(PROFILE_URL), registry=registry, format_checker=_FORMATS)


def _message(error: ValidationError) -> str:
    deepest = best_match(error.context) if error.context else error
    where = "/".join(str(p) for p in deepest.absolute_path) or "(top level)"
    text = deepest.message
    return f"datapackage.json {where}: {text if len(text) <= 240 else text[:240] + '...'}"


def check_descriptor(descriptor: Any) -> list[str]:
    """Problems of a datapackage.json against the Camtrap DP profile (JSON Schema, offline)."""
    problems = [_message(e) for e in sorted(_profile_validator().iter_errors(descriptor), key=lambda e: e.path)]
    if isinstance(descriptor, dict) and descriptor.get("profile") != PROFILE_URL:
        problems.append(f"datapackage.json profile: {descriptor.get('profile')!r} is not Camtrap DP "
                        f"{CAMTRAP_DP_VERSION}'s ({PROFILE_URL})")
    return problems


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def _cast(field: dict[str, Any], text: str) -> Any:
    """A cell's value as its Table Schema type says (ValueError when it is not one)."""
    kind = field.get("type", "string")
    if kind == "number":
        if not _NUMBER.match(text):
            raise ValueError("is not a number")
        return float(text)
    if kind == "integer":
        if not _INTEGER.match(text):
            raise ValueError("is not an integer")
        return int(text)
    if kind == "boolean":
        if text in field.get("trueValues", ["true", "True", "TRUE", "1"]):
            return True
        if text in field.get("falseValues", ["false", "False", "FALSE", "0"]):
            return False
        raise ValueError("is not a boolean")
    if kind == "datetime":
        fmt = field.get("format", "default")
        if fmt in ("default", "any"):
            if not _RFC3339.match(text):
                raise ValueError("is not an ISO 8601 date and time")
            return parse_time(text)
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            raise ValueError(f"is not a date and time formatted {fmt}") from None
    if kind == "any" or kind == "string":
        return text
    raise ValueError(f"has a type ({kind}) this validator does not know")


def _check_cell(field: dict[str, Any], text: str) -> tuple[Any, str | None]:
    try:
        value = _cast(field, text)
    except ValueError as exc:
        return None, str(exc)
    rules = field.get("constraints", {})
    if "enum" in rules and value not in rules["enum"]:
        return value, f"is not one of {', '.join(map(str, rules['enum']))}"
    if "minimum" in rules and value < rules["minimum"]:
        return value, f"is below the minimum {rules['minimum']}"
    if "maximum" in rules and value > rules["maximum"]:
        return value, f"is above the maximum {rules['maximum']}"
    if "pattern" in rules and not re.fullmatch(rules["pattern"], text):
        return value, f"does not match the pattern {rules['pattern']}"
    return value, None


class _Problems(list[str]):
    """Problems of one table, at most MAX_PROBLEMS_PER_TABLE listed (then how many more)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0

    def add(self, text: str) -> None:
        if len(self) < MAX_PROBLEMS_PER_TABLE:
            self.append(text)
        else:
            self.hidden += 1


def check_table(path: Path, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """A CSV file's rows (typed) and its problems against Camtrap DP's ``name`` table schema:
    the header (every field, in order, and no other), then each cell's type, required, enum,
    minimum, maximum and pattern, and unique values."""
    schema = table_schema(name)
    fields = schema["fields"]
    missing_values = set(schema.get("missingValues", [""]))
    problems = _Problems()
    file = path.name
    if not path.is_file():
        return [], [f"{file} is missing"]
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return [], [f"{file} is empty (no header)"]
        names = [f["name"] for f in fields]
        for column in names:
            if column not in header:
                problems.add(f"{file}: column {column} is missing")
        for column in header:
            if column not in names:
                problems.add(f"{file}: column {column} is not in Camtrap DP's {name} table")
        if not problems and header != names:
            problems.add(f"{file}: columns are not in the order of Camtrap DP's {name} table")
        index = {column: i for i, column in enumerate(header)}
        seen: dict[str, set[Any]] = {f["name"]: set() for f in fields if f.get("constraints", {}).get("unique")}
        rows: list[dict[str, Any]] = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                problems.add(f"{file} line {line}: {len(cells)} cells for {len(header)} columns")
                continue
            row: dict[str, Any] = {}
            for field in fields:
                column = field["name"]
                if column not in index:
                    continue
                text = cells[index[column]]
                if text in missing_values:
                    row[column] = None
                    if field.get("constraints", {}).get("required"):
                        problems.add(f"{file} line {line}, {column}: a value is required")
                    continue
                value, problem = _check_cell(field, text)
                row[column] = value
                if problem:
                    problems.add(f"{file} line {line}, {column}: {text!r} {problem}")
                elif column in seen:
                    if value in seen[column]:
                        problems.add(f"{file} line {line}, {column}: {text!r} is not unique")
                    seen[column].add(value)
            rows.append(row)
    if problems.hidden:
        problems.append(f"{file}: {problems.hidden} more problems")
    return rows, list(problems)


def _check_keys(tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Foreign keys: media and observations refer to deployments and media that exist."""
    problems: list[str] = []
    for name in TABLES:
        for key in table_schema(name).get("foreignKeys", []):
            column, target = key["fields"], key["reference"]
            known = {row.get(target["fields"]) for row in tables.get(target["resource"], [])}
            bad = sorted({str(row[column]) for row in tables.get(name, [])
                          if row.get(column) is not None and row.get(column) not in known})
            if bad:
                problems.append(f"{name}.csv, {column}: {', '.join(bad[:5])} not in {target['resource']}.csv"
                                + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""))
    return problems


def _check_rules(folder: Path, tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Camtrap DP's rules beyond the types: media-level observations name their media file, the
    box lies inside the frame, an event ends after it starts; local media files exist."""
    problems: list[str] = []
    for n, row in enumerate(tables.get("observations", []), start=2):
        where = f"observations.csv line {n}"
        if row.get("observationLevel") == "media" and row.get("mediaID") is None:
            problems.append(f"{where}: a media-level observation needs a mediaID")
        box = [row.get(k) for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")]
        if any(v is not None for v in box) and any(v is None for v in box):
            problems.append(f"{where}: a box needs bboxX, bboxY, bboxWidth and bboxHeight together")
        elif all(isinstance(v, float) for v in box):
            if box[0] + box[2] > 1 + 1e-6 or box[1] + box[3] > 1 + 1e-6:
                problems.append(f"{where}: the box goes beyond the frame (x + width or y + height > 1)")
        start, end = row.get("eventStart"), row.get("eventEnd")
        if isinstance(start, datetime) and isinstance(end, datetime) and end < start:
            problems.append(f"{where}: eventEnd is before eventStart")
    for n, row in enumerate(tables.get("media", []), start=2):
        path = row.get("filePath")
        if isinstance(path, str) and not urlsplit(path).scheme and not (folder / path).is_file():
            problems.append(f"media.csv line {n}: the file {path} is not in the package")
    return problems


def validate_camtrap_dp(folder: Path) -> list[str]:
    """Problems of the Camtrap DP package in ``folder`` ([] when it is valid), checked offline:
    datapackage.json against the Camtrap DP 1.0.1 profile (with the Data Package and GeoJSON
    schemas it builds on), each resource's CSV against its table schema, the keys between the
    tables, and Camtrap DP's rules on boxes, events and media files."""
    folder = Path(folder)
    try:
        descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ["datapackage.json is missing"]
    except ValueError as exc:
        return [f"datapackage.json is not JSON: {exc}"]
    problems = check_descriptor(descriptor)
    resources = {r.get("name"): r for r in descriptor.get("resources", []) if isinstance(r, dict)} \
        if isinstance(descriptor, dict) else {}
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        resource = resources.get(name)
        if resource is None:
            problems.append(f"datapackage.json: the {name} resource is missing")
            continue
        if resource.get("schema") != SCHEMA_URLS[name]:
            problems.append(f"datapackage.json {name}: schema {resource.get('schema')!r} is not "
                            f"Camtrap DP {CAMTRAP_DP_VERSION}'s ({SCHEMA_URLS[name]})")
        path = resource.get("path")
        if not isinstance(path, str) or urlsplit(path).scheme or ".." in path or path.startswith("/"):
            problems.append(f"datapackage.json {name}: path {path!r} is not a file in the package")
            continue
        tables[name], found = check_table(folder / path, name)
        problems += found
    return problems + _check_keys(tables) + _check_rules(folder, tables)
