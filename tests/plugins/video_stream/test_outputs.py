"""video_stream's outputs from a job's rows (no database): the Camtrap DP 1.0 package and its
offline validation, the MegaDetector 1.6 document and its checker, the summary and the contact
sheet. The rows are made from a real video: scikit-image's cat crossing twice and the astronaut
once over a real background (synth.py), keyframes cut from the video's own frames, boxes from
the truth of where the photos were pasted."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from core.types import DatasetInfo, ProjectContext
from plugins.video_stream.camtrap import PROFILE_URL, validate_camtrap_dp, write_camtrap_dp
from plugins.video_stream.contact_sheet import COLOURS, contact_sheet
from plugins.video_stream.megadetector import check_megadetector, megadetector_json, sampled_frames
from plugins.video_stream.summary import summary_csv, summary_json, summary_rows
from tests.plugins.video_stream.synth import read_frames, write_video

START = datetime(2024, 5, 17, 5, 30, 0, tzinfo=timezone.utc)
FPS = 10.0
PASSES = [(1.0, 3.0, "cat", "ltr"), (6.0, 2.5, "person", "rtl"), (9.5, 2.0, "cat", "rtl")]
TOP_K = [{"label": "domestic cat", "scientific_name": "Felis catus", "taxon_id": 7, "score": 0.91},
         {"label": "Eurasian lynx", "scientific_name": "Lynx lynx", "taxon_id": 8, "score": 0.05}]

PROJECT = ProjectContext(
    slug="wildlife", name="Wildlife cameras", description="Camera traps around the pond.",
    licence="CC-BY-4.0", public=True, auto_publish=True, timezone="Europe/Madrid",
    location_precision=3, services={"video_stream": {}},
    dataset=DatasetInfo(title="Pond cameras", creators=[
        {"name": "Ana Ruiz", "email": "ana.ruiz@example.org", "organisation": "Pond Society"}]))


@pytest.fixture(scope="module")
def trap(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 12 s camera-trap video and the rows a finished job leaves: job, deployment, events
    (boxes on every other frame of each pass, two keyframes each, written in the job's folder)."""
    tmp = tmp_path_factory.mktemp("trap")
    truth = write_video(tmp / "trap.mp4", seconds=12, fps=FPS, passes=PASSES, start_time=START)
    frames = read_frames(tmp / "trap.mp4")
    job_folder = tmp / "job"
    (job_folder / "keyframes").mkdir(parents=True)
    events = []
    for seq, p in enumerate(truth["passes"], start=1):
        seen = sorted(p["boxes"])
        animal = p["category"] == "animal"
        keyframes = []
        for f in (seen[len(seen) // 3], seen[2 * len(seen) // 3]):
            name = f"keyframes/e{seq}-{f}.jpg"
            cv2.imwrite(str(job_folder / name), frames[f])
            keyframes.append({"frame": f, "t": f / FPS, "file": name})
        boxes = [{"frame": f, "t": f / FPS, "bbox": p["boxes"][f], "conf": 0.8}
                 for f in sorted(set(seen[::2]) | {k["frame"] for k in keyframes})]
        events.append({
            "id": seq, "job": 1, "seq": seq, "start_frame": p["start_frame"], "end_frame": p["end_frame"],
            "start_s": p["start_s"], "end_s": p["end_s"],
            "start_time": START + timedelta(seconds=p["start_s"]), "end_time": START + timedelta(seconds=p["end_s"]),
            "category": "animal" if animal else "human", "top_k": TOP_K if animal else [], "count": 1,
            "boxes": boxes, "keyframes": keyframes, "observation_id": None})
    job = {
        "id": 1, "uuid": "5f0c7a52-9a51-4d37-8f43-0e1d2c3b4a59", "project": "wildlife", "deployment": 1,
        "source_kind": "upload", "source": str(tmp / "trap.mp4"), "filename": "trap.mp4",
        "settings": {"sample_fps": FPS, "model": "efficientnet-lite0"}, "state": "done",
        "video": {"fps": FPS, "width": 320, "height": 240, "frames": 120, "duration_s": 12.0,
                  "start_time": START.isoformat()},
        "frames_total": 120, "frames_done": 120, "created_at": START + timedelta(days=1),
        "started_at": START + timedelta(days=1), "finished_at": START + timedelta(days=1, minutes=1),
        "updated_at": START + timedelta(days=1, minutes=1)}
    deployment = {
        "id": 1, "project": "wildlife", "deployment_id": "pond-cam-1", "location_name": "Pond",
        "lat": 41.387654, "lon": 2.168432, "start": START - timedelta(days=2), "end": None,
        "camera_model": "Browning-BTC-8E", "camera_height_m": 0.6, "bait": False, "habitat": "reed bed"}
    return {"truth": truth, "job": job, "deployment": deployment, "events": events, "folder": job_folder}


@pytest.fixture(scope="module")
def written(trap: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job's package, written once (tests that break it work on a copy)."""
    return _package(trap, tmp_path_factory.mktemp("written") / "camtrap-dp", zip_package=False)


def _package(trap: dict[str, Any], folder: Path, **kwargs: Any) -> Path:
    args: dict[str, Any] = {"project": PROJECT, "deployment": trap["deployment"], "job": trap["job"],
                            "events": trap["events"], "media_folder": trap["folder"], **kwargs}
    return write_camtrap_dp(folder, **args)


def _detail(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _edit(path: Path, change: Any) -> None:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    rows = change(rows)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


# ----------------------------------------------------------------------------- Camtrap DP

def test_camtrap_dp_package_of_a_job_validates_and_says_what_passed(trap: dict[str, Any], tmp_path: Path) -> None:
    folder = _package(trap, tmp_path / "camtrap-dp")
    assert validate_camtrap_dp(folder) == []

    observations = _rows(folder / "observations.csv")
    events = [o for o in observations if o["observationLevel"] == "event"]
    assert [o["observationType"] for o in events] == ["animal", "human", "animal"]
    assert [o["scientificName"] for o in events] == ["Felis catus", "", "Felis catus"]
    assert {o["classificationMethod"] for o in observations} == {"machine"}
    assert events[0]["classifiedBy"] == "efficientnet-lite0" and events[0]["classificationProbability"] == "0.91"
    for o, p in zip(events, trap["truth"]["passes"]):  # whole seconds: start down, end up
        start = START + timedelta(seconds=int(p["start_s"]))
        assert o["eventStart"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert datetime.fromisoformat(o["eventEnd"]) >= START + timedelta(seconds=p["end_s"])
        assert o["count"] == "1" and not o["bboxX"] and not o["mediaID"]

    media = {m["mediaID"]: m for m in _rows(folder / "media.csv")}
    assert len(media) == 6
    for m in media.values():
        assert (folder / m["filePath"]).is_file() and m["fileMediatype"] == "image/jpeg"
    human_event = events[1]["eventID"]
    assert {m["filePublic"] for k, m in media.items() if k.startswith(human_event + "-")} == {"false"}
    # the astronaut's keyframes left the engine with her head blurred (the top of her box), the
    # cat's as they were
    for event in trap["events"]:
        for k in event["keyframes"]:
            original = cv2.imread(str(trap["folder"] / k["file"]))
            copied = cv2.imread(str(folder / "media" / f"{trap['job']['uuid']}-{event['seq']}-{k['frame']}.jpg"))
            x, y, w, h = next(b["bbox"] for b in event["boxes"] if b["frame"] == k["frame"])
            head = (slice(int(y * 240) + 2, int((y + h * 0.35) * 240)), slice(int(x * 320) + 2, int((x + w) * 320) - 2))
            ratio = _detail(copied[head]) / _detail(original[head])
            assert ratio < 0.1 if event["category"] == "human" else ratio > 0.8

    # the boxes are on media-level observations, on the keyframe's own frame, as planted
    boxed = [o for o in observations if o["observationLevel"] == "media"]
    assert len(boxed) == 6
    for o in boxed:
        seq, frame = (int(v) for v in o["mediaID"].rsplit("-", 2)[-2:])
        planted = trap["truth"]["passes"][seq - 1]["boxes"][frame]
        got = [float(o[k]) for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")]
        assert got == pytest.approx(planted, abs=1e-5)
        assert o["eventID"] == f"{trap['job']['uuid']}-{seq}" and o["mediaID"] in media

    descriptor = json.loads((folder / "datapackage.json").read_text())
    assert descriptor["profile"] == PROFILE_URL
    assert descriptor["taxonomic"] == [{"scientificName": "Felis catus", "vernacularNames": {"eng": "domestic cat"}}]
    assert descriptor["temporal"] == {"start": "2024-05-15", "end": "2024-05-17"}
    # the place on the project's public grid (3 decimals), no e-mail address anywhere
    assert descriptor["spatial"] == {"type": "Point", "coordinates": [2.168, 41.388]}
    assert descriptor["coordinatePrecision"] == 0.001
    deployment = _rows(folder / "deployments.csv")[0]
    assert (deployment["latitude"], deployment["longitude"]) == ("41.388", "2.168")
    assert "@" not in (folder / "datapackage.json").read_text()
    with zipfile.ZipFile(tmp_path / "camtrap-dp.zip") as archive:
        assert {"datapackage.json", "deployments.csv", "media.csv", "observations.csv"} <= set(archive.namelist())


def test_camtrap_dp_exact_place_only_when_asked_and_people_left_out(trap: dict[str, Any], tmp_path: Path) -> None:
    folder = _package(trap, tmp_path / "staff", exact_place=True, include_humans=False)
    assert validate_camtrap_dp(folder) == []
    deployment = _rows(folder / "deployments.csv")[0]
    assert (deployment["latitude"], deployment["longitude"]) == ("41.387654", "2.168432")
    observations = _rows(folder / "observations.csv")
    assert "human" not in {o["observationType"] for o in observations}
    assert len(_rows(folder / "media.csv")) == 4


def test_camtrap_dp_hosted_media_and_unknown_start(trap: dict[str, Any], tmp_path: Path) -> None:
    """Media hosted by the engine: URLs, nothing copied. A video whose start is unknown: the
    job's start stands in and the deployment says its timestamps have issues."""
    job = {**trap["job"], "video": {**trap["job"]["video"], "start_time": None}}
    events = [{**e, "start_time": None, "end_time": None} for e in trap["events"]]
    folder = _package(trap, tmp_path / "hosted", job=job, events=events, media_folder=None,
                      media_base_url="https://observatory.example.org/api/video/jobs/1/files/")
    assert validate_camtrap_dp(folder) == []
    assert not (folder / "media").exists()
    media = _rows(folder / "media.csv")
    assert media[0]["filePath"] == "https://observatory.example.org/api/video/jobs/1/files/keyframes/e1-20.jpg"
    assert _rows(folder / "deployments.csv")[0]["timestampIssues"] == "true"
    first = _rows(folder / "observations.csv")[0]
    assert first["eventStart"] == (job["started_at"] + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # the runner's stand-in start (when the job was made) is no better
    guessed = {**trap["job"], "video": {**trap["job"]["video"], "start_time_source": "job_created"}}
    folder = _package(trap, tmp_path / "guessed", job=guessed, zip_package=False)
    assert validate_camtrap_dp(folder) == [] and _rows(folder / "deployments.csv")[0]["timestampIssues"] == "true"


def test_camtrap_dp_of_an_empty_video_is_one_blank_observation(trap: dict[str, Any], tmp_path: Path) -> None:
    folder = _package(trap, tmp_path / "empty", events=[])
    assert validate_camtrap_dp(folder) == []
    (blank,) = _rows(folder / "observations.csv")
    assert (blank["observationType"], blank["eventStart"], blank["eventEnd"]) == (
        "blank", "2024-05-17T05:30:00Z", "2024-05-17T05:30:12Z")
    assert _rows(folder / "media.csv") == []


def _drop_column(name: str) -> Any:
    def change(rows: list[list[str]]) -> list[list[str]]:
        i = rows[0].index(name)
        return [r[:i] + r[i + 1:] for r in rows]
    return change


def _set_cell(column: str, value: str, row: int = 1) -> Any:
    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[row][rows[0].index(column)] = value
        return rows
    return change


@pytest.mark.parametrize(("file", "change", "expected"), [
    ("observations.csv", _set_cell("bboxX", "1.2", row=2), "observations.csv line 3, bboxX: '1.2' is above the maximum 1"),
    ("observations.csv", _set_cell("observationType", "dog"), "observations.csv line 2, observationType: 'dog' is not one of"),
    ("observations.csv", _set_cell("eventStart", "2024-05-17 05:30:01"), "eventStart: '2024-05-17 05:30:01' is not a date and time"),
    ("observations.csv", _set_cell("count", "0"), "observations.csv line 2, count: '0' is below the minimum 1"),
    ("media.csv", _drop_column("filePublic"), "media.csv: column filePublic is missing"),
    ("media.csv", _set_cell("deploymentID", "elsewhere"), "media.csv, deploymentID: elsewhere not in deployments.csv"),
    ("media.csv", _set_cell("filePath", "media/gone.jpg"), "media.csv line 2: the file media/gone.jpg is not in the package"),
    ("deployments.csv", _set_cell("latitude", "91"), "deployments.csv line 2, latitude: '91' is above the maximum 90"),
    ("deployments.csv", _set_cell("deploymentID", ""), "deployments.csv line 2, deploymentID: a value is required"),
])
def test_camtrap_dp_validation_reports_broken_tables(written: Path, tmp_path: Path, file: str,
                                                     change: Any, expected: str) -> None:
    folder = Path(shutil.copytree(written, tmp_path / "broken"))
    _edit(folder / file, change)
    problems = validate_camtrap_dp(folder)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.pop("project"), "'project' is a required property"),
    (lambda d: d["project"].update(samplingDesign="anywhere"), "datapackage.json project/samplingDesign"),
    (lambda d: d["temporal"].update(start="17/05/2024"), "datapackage.json temporal/start: '17/05/2024' is not a 'date'"),
    (lambda d: d["contributors"][0].update(role="boss"), "datapackage.json contributors/0/role"),
    (lambda d: d["resources"][2].update(schema="observations.json"), "observations: schema 'observations.json' is not"),
    (lambda d: d.update(spatial={"type": "Point", "coordinates": "here"}), "datapackage.json spatial"),
    (lambda d: d.update(profile="https://raw.githubusercontent.com/tdwg/camtrap-dp/0.6/camtrap-dp-profile.json"),
     "is not Camtrap DP 1.0.1's"),
])
def test_camtrap_dp_validation_reports_a_broken_descriptor(written: Path, tmp_path: Path,
                                                           change: Any, expected: str) -> None:
    folder = Path(shutil.copytree(written, tmp_path / "broken"))
    descriptor = json.loads((folder / "datapackage.json").read_text())
    change(descriptor)
    (folder / "datapackage.json").write_text(json.dumps(descriptor))
    problems = validate_camtrap_dp(folder)
    assert any(expected in p for p in problems), problems


def test_camtrap_dp_validation_of_no_package(tmp_path: Path) -> None:
    assert validate_camtrap_dp(tmp_path) == ["datapackage.json is missing"]
    (tmp_path / "datapackage.json").write_text("{not json")
    assert validate_camtrap_dp(tmp_path)[0].startswith("datapackage.json is not JSON")


# ----------------------------------------------------------------------------- MegaDetector

def test_megadetector_document_of_a_job_is_valid_and_matches_the_camtrap_package(
        trap: dict[str, Any], tmp_path: Path) -> None:
    doc = megadetector_json(job=trap["job"], events=trap["events"], video_name="trap.mp4")
    assert check_megadetector(json.loads(json.dumps(doc))) == []
    assert doc["info"]["format_version"] == "1.6"
    assert doc["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert doc["classification_categories"] == {"0": "Felis catus", "1": "Lynx lynx"}
    (video,) = doc["images"]
    assert (video["file"], video["frame_rate"], video["frames_processed"]) == ("trap.mp4", 10.0, list(range(120)))
    detections = video["detections"]
    assert len(detections) == sum(len(e["boxes"]) for e in trap["events"])
    by_frame = {(d["frame_number"], d["category"]): d for d in detections}
    for event, p in zip(trap["events"], trap["truth"]["passes"]):
        category = "1" if event["category"] == "animal" else "2"
        for box in event["boxes"]:
            d = by_frame[(box["frame"], category)]
            assert d["bbox"] == pytest.approx(p["boxes"][box["frame"]], abs=1e-4)
            assert d.get("classifications") == ([["0", 0.91], ["1", 0.05]] if category == "1" else None)

    # the Camtrap DP package says the same: each media-level box is a detection on that frame
    folder = _package(trap, tmp_path / "camtrap-dp", zip_package=False)
    for o in _rows(folder / "observations.csv"):
        if o["observationLevel"] != "media":
            continue
        frame = int(o["mediaID"].rsplit("-", 1)[1])
        d = by_frame[(frame, "1" if o["observationType"] == "animal" else "2")]
        assert d["bbox"] == pytest.approx([float(o[k]) for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")], abs=1e-4)


def test_megadetector_failed_job_and_sampling() -> None:
    job = {"id": 2, "state": "failed", "error": "not a video", "video": None, "settings": {}}
    doc = megadetector_json(job=job, events=[], video_name="broken.mp4")
    assert doc["images"][0]["failure"] == "not a video" and doc["images"][0]["detections"] is None
    assert check_megadetector(doc) == []
    # every 15th frame of a 30 fps video sampled at 2 per second
    assert sampled_frames({"video": {"fps": 30, "frames": 50}, "settings": {"sample_fps": 2}, "frames_done": 4}) == \
        [0, 15, 30, 45]
    # 25 fps at 2 per second: the first frame at or after each half second
    assert sampled_frames({"video": {"fps": 25}, "settings": {"sample_fps": 2}, "frames_done": 4}) == [0, 13, 25, 38]


def _valid_doc() -> dict[str, Any]:
    return {"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"},
            "classification_categories": {"0": "Felis catus", "1": "Lynx lynx"},
            "images": [{"file": "a.mp4", "frame_rate": 10.0, "frames_processed": [0, 5],
                        "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.2, 0.3, 0.4],
                                        "frame_number": 5, "classifications": [["0", 0.8], ["1", 0.1]]}]}]}


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("info", "format_version"), 1.6, "is not a string-formatted number"),
    (("detection_categories", "1"), " ", "detection_categories 1: the name is blank"),
    (("images", 0, "frame_rate"), 0, "frame_rate 0 is not a number above 0"),
    (("images", 0, "frames_processed"), None, "frames_processed is not a list"),
    (("images", 0, "detections", 0, "conf"), 1, "conf 1 is not a number from 0 to 1"),
    (("images", 0, "detections", 0, "bbox"), [0.8, 0.2, 0.3, 0.4], "is not inside the frame"),
    (("images", 0, "detections", 0, "category"), "2", "category '2' is not in detection_categories"),
    (("images", 0, "detections", 0, "frame_number"), 7, "frame 7 is not in frames_processed"),
    (("images", 0, "detections", 0, "frame_number"), None, "frame_number None is not a frame number"),
    (("images", 0, "detections", 0, "classifications"), [["1", 0.1], ["0", 0.8]], "not in descending order"),
    (("images", 0, "detections", 0, "classifications"), [["9", 0.8]], "class '9' is not in classification_categories"),
    (("images", 0, "detections"), None, "detections is not a list"),
])
def test_megadetector_checker_reports_what_breaks_the_format(path: tuple[Any, ...], value: Any, expected: str) -> None:
    doc = _valid_doc()
    assert check_megadetector(doc) == []
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems = check_megadetector(doc)
    assert any(expected in p for p in problems), problems


# ----------------------------------------------------------------------------- summary, sheet

def test_summary_counts_events_per_class_per_bin(trap: dict[str, Any]) -> None:
    rows = summary_rows(trap["events"], bin_s=5)
    assert [(r["bin_start_s"], r["class"], r["events"], r["individuals"]) for r in rows] == [
        (0, "Felis catus", 1, 1), (5, "Felis catus", 1, 1), (5, "human", 1, 1)]
    assert (rows[1]["bin_start_time"], rows[1]["bin_end_time"]) == ("2024-05-17T05:30:05Z", "2024-05-17T05:30:10Z")
    assert rows[0]["mean_score"] == 0.91 and rows[2]["mean_score"] is None
    text = summary_csv(rows).splitlines()
    assert text[0].startswith("bin_start_s,bin_end_s,bin_start_time") and len(text) == 4
    doc = summary_json(trap["events"], bin_s=60)
    assert doc["totals"] == [{"class": "Felis catus", "category": "animal", "events": 2, "individuals": 2},
                             {"class": "human", "category": "human", "events": 1, "individuals": 1}]
    assert summary_rows([], bin_s=60) == []
    with pytest.raises(ValueError):
        summary_rows(trap["events"], bin_s=0)


def test_contact_sheet_draws_each_keyframe_with_its_boxes(trap: dict[str, Any]) -> None:
    tiles = []
    for event in trap["events"]:
        for k in event["keyframes"]:
            image = cv2.imread(str(trap["folder"] / k["file"]))
            boxes = [{**b, "category": event["category"], "label": "Felis catus" if event["category"] == "animal" else "human"}
                     for b in event["boxes"] if b["frame"] == k["frame"]]
            tiles.append((image, boxes, f"event {event['seq']} frame {k['frame']}"))
    png = contact_sheet(tiles, columns=4)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    sheet = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert sheet.shape == (2 * (240 + 22 + 4) + 4, 4 * (320 + 4) + 4, 3)   # 6 tiles: 2 rows of 4
    # the first tile's box is drawn in the animal colour where the cat was pasted (the tile is the
    # 320 x 240 frame itself, at 4 px from the sheet's corner)
    bbox = [b for b in trap["events"][0]["boxes"] if b["frame"] == trap["events"][0]["keyframes"][0]["frame"]][0]["bbox"]
    left, bottom = 4 + int(round(bbox[0] * 320)), 4 + int(round((bbox[1] + bbox[3]) * 240))
    assert tuple(int(v) for v in sheet[bottom - 1, left + 5]) == COLOURS["animal"]
    # no keyframe at all: one tile that says so
    empty = cv2.imdecode(np.frombuffer(contact_sheet([]), np.uint8), cv2.IMREAD_COLOR)
    assert empty.shape == (240 + 22 + 8, 320 + 8, 3)
