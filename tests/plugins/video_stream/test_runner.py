"""The background task ``video_stream.process`` on real (small) videos: events become machine
observations at the deployment's place and the video's time, with keyframes; the outputs are
written and valid; people are kept for staff; a bad video fails its job with the reason and
nothing else changes; a cancel stops a running job within two seconds."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import cv2
import pytest
from sqlalchemy import func, select

from core.db.models import Observation, ObservationMedia
from core.testing import bearer
from plugins.video_stream import jobs
from plugins.video_stream.camtrap import validate_camtrap_dp
from plugins.video_stream.megadetector import check_megadetector
from tests.plugins.video_stream.conftest import video_registry, wait_for_job
from tests.plugins.video_stream.synth import read_frames, write_video

START = datetime(2026, 5, 1, 6, 30, tzinfo=timezone.utc)


def submit_job(engine, deployment, path, **settings) -> dict:
    return jobs.create_job(engine, project="cams", deployment=deployment["id"], source_kind="path",
                           source=str(path), filename=path.name, settings=settings, principal=None)


def observations_of(engine) -> list[Observation]:
    with engine.sessions() as session:
        return list(session.scalars(select(Observation).order_by(Observation.id)))


def media_count(engine, obs_id: int) -> int:
    with engine.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(ObservationMedia)
                            .where(ObservationMedia.observation_id == obs_id)).scalar_one()


def test_two_passes_become_two_machine_observations_and_the_outputs_say_the_same(engine, deployment, videos):
    truth = write_video(videos / "two-cats.mp4", seconds=12, fps=10, passes=[(1.5, 2.5, "cat", "ltr"),
                                                                             (7.0, 2.5, "cat", "rtl")],
                        start_time=START)
    job = wait_for_job(engine, submit_job(engine, deployment, videos / "two-cats.mp4")["id"])
    assert job["state"] == "done", job["error"]
    assert job["frames_done"] == job["frames_total"] == 60  # 12 s sampled at the project's 5 frames a second
    assert jobs.job_progress(job)["percent"] == 100.0
    assert job["video"]["start_time_source"] == "metadata"

    found = jobs.job_events(engine, job["id"])
    assert [e["seq"] for e in found] == [1, 2]
    for event, planted in zip(found, truth["passes"]):
        assert event["category"] == "animal"
        assert abs(event["start_s"] - planted["start_s"]) <= 1.0 and abs(event["end_s"] - planted["end_s"]) <= 1.0
        assert event["start_time"] == START + timedelta(seconds=event["start_s"])

    made = observations_of(engine)
    assert [o.id for o in made] == [e["observation_id"] for e in found]
    for obs, event in zip(made, found):
        assert obs.kind == "video_event" and obs.contributor_id is None and obs.status == "published"
        assert (obs.lat, obs.lon) == (deployment["lat"], deployment["lon"])
        assert obs.observed_at == event["start_time"]
        assert obs.fields["basis_of_record"] == "MachineObservation"
        assert obs.fields["deployment"] == "CAM-01" and obs.fields["job"] == job["uuid"]
        assert obs.fields["seq"] == event["seq"] and obs.fields["time_source"] == "metadata"
        assert media_count(engine, obs.id) == len(event["keyframes"]) >= 1

    folder = jobs.job_folder(engine, job["id"])
    assert set(job["outputs"]) >= {"summary.csv", "summary.json", "contact_sheet.png", "megadetector.json",
                                   "camtrap-dp.zip"}
    for name in job["outputs"].values():
        assert (folder / name).exists(), name
    assert (folder / job["outputs"]["contact_sheet.png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import json

    md = json.loads((folder / job["outputs"]["megadetector.json"]).read_text())
    assert check_megadetector(md) == []
    detected_frames = {d["frame_number"] for d in md["images"][0]["detections"]}
    assert all(any(e["start_frame"] <= f <= e["end_frame"] for e in found) for f in detected_frames)
    assert validate_camtrap_dp(folder / job["outputs"]["camtrap-dp"]) == []
    observations_csv = (folder / job["outputs"]["camtrap-dp"] / "observations.csv").read_text()
    assert observations_csv.count("\nCAM-01") + observations_csv.count(",CAM-01,") >= 2


def test_a_video_without_a_start_time_is_timed_by_the_jobs_setting_or_else_its_creation(engine, deployment, videos):
    write_video(videos / "undated.mp4", seconds=6, fps=10, passes=[(1.0, 2.5, "cat", "ltr")])
    set_time = "2026-04-20T21:00:00+02:00"
    by_setting = wait_for_job(engine, submit_job(engine, deployment, videos / "undated.mp4",
                                                 start_time=set_time)["id"])
    by_creation = wait_for_job(engine, submit_job(engine, deployment, videos / "undated.mp4")["id"])
    first = jobs.job_events(engine, by_setting["id"])[0]
    assert first["start_time"] == datetime.fromisoformat(set_time) + timedelta(seconds=first["start_s"])
    second = jobs.job_events(engine, by_creation["id"])[0]
    assert second["start_time"] == by_creation["created_at"] + timedelta(seconds=second["start_s"])
    flagged = {o.fields["job"]: o.fields for o in observations_of(engine)}
    assert flagged[by_setting["uuid"]]["time_source"] == "setting"
    assert not flagged[by_setting["uuid"]]["time_estimated"]
    assert flagged[by_creation["uuid"]]["time_source"] == "job_created"
    assert flagged[by_creation["uuid"]]["time_estimated"] is True


def test_an_empty_video_leaves_nothing_behind_but_its_outputs(engine, deployment, videos):
    write_video(videos / "empty.mp4", seconds=6, fps=10, light_change_at=3.0, swaying=(0.6, 0.1, 0.3, 0.3))
    job = wait_for_job(engine, submit_job(engine, deployment, videos / "empty.mp4")["id"])
    assert job["state"] == "done", job["error"]
    assert jobs.job_events(engine, job["id"]) == []
    assert observations_of(engine) == []
    assert "megadetector.json" in job["outputs"]


def test_a_person_is_kept_for_the_projects_staff_only(engine, deployment, videos, client, make_token):
    write_video(videos / "walker.mp4", seconds=6, fps=10, passes=[(1.0, 3.0, "person", "ltr")], start_time=START)
    job = wait_for_job(engine, submit_job(engine, deployment, videos / "walker.mp4")["id"])
    assert job["state"] == "done", job["error"]
    [event] = jobs.job_events(engine, job["id"])
    assert event["category"] == "human" and event["top_k"] == []
    [obs] = observations_of(engine)
    # unpublished in a project that publishes everything at once, and its place private
    assert (obs.status, obs.location_privacy) == ("unpublished", "private")
    url = "/api/v1/projects/cams/observations"
    assert obs.id not in [o["id"] for o in client.get(url).json()["items"]]
    contributor = make_token("contributor", "cams")
    assert obs.id not in [o["id"] for o in client.get(url, headers=bearer(contributor)).json()["items"]]
    assert client.get(f"/api/v1/observations/{obs.id}").status_code in (403, 404)
    staff = client.get(f"/api/v1/observations/{obs.id}", headers=bearer(make_token("moderator", "cams")))
    assert staff.status_code == 200 and staff.json()["fields"]["category"] == "human"
    # the head in each keyframe stored is blurred: its detail is gone, compared with the video's frame
    frames = read_frames(videos / "walker.mp4")
    folder = jobs.job_folder(engine, job["id"])
    for key in event["keyframes"]:
        stored = cv2.imread(str(folder / key["file"]))
        [box] = [b["bbox"] for b in event["boxes"] if b["frame"] == key["frame"]]
        x, y, w, h = (int(v * s) for v, s in zip(box, (320, 240, 320, 240 * 0.4)))
        detail = [cv2.Laplacian(cv2.cvtColor(img[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
                  for img in (frames[key["frame"]], stored)]
        assert detail[1] < 0.25 * detail[0], f"keyframe {key['file']}: detail {detail[1]:.0f} of {detail[0]:.0f}"


def test_the_darwin_core_archive_has_the_animals_as_machine_observations_and_no_person(engine, deployment,
                                                                                       videos):
    import csv
    import io
    import zipfile

    from core.dwca import write_archive

    write_video(videos / "both.mp4", seconds=8, fps=10, passes=[(0.5, 2.5, "cat", "ltr"), (4.5, 2.5, "person", "rtl")],
                start_time=START)
    job = wait_for_job(engine, submit_job(engine, deployment, videos / "both.mp4")["id"])
    by_category = {o.fields["category"]: o for o in observations_of(engine)}
    assert set(by_category) == {"animal", "human"}, job["error"]
    out = io.BytesIO()
    write_archive(engine, engine.registry.project("cams"), out)
    text = zipfile.ZipFile(out).read("occurrence.txt").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    cat = by_category["animal"]
    assert [r["occurrenceID"].rsplit("/", 1)[-1] for r in rows] == [str(cat.id)]  # the person is not published
    assert rows[0]["basisOfRecord"] == "MachineObservation"
    assert rows[0]["scientificName"] == cat.fields.get("scientific_name", "")
    assert rows[0]["eventDate"].startswith("2026-05-01")


def test_nobody_submits_a_video_event_by_hand(engine, client, make_token):
    from core.testing import draft

    answer = client.post("/api/v1/projects/cams/observations", headers=bearer(make_token("contributor", "cams")),
                         json=draft(kind="video_event", fields={
                             "basis_of_record": "MachineObservation", "deployment": "CAM-01", "job": "forged",
                             "seq": 1, "category": "animal", "start_offset_s": 0, "end_offset_s": 1, "count": 1}))
    assert answer.status_code == 422
    assert "machine_kind" in answer.text


@pytest.mark.parametrize("write, code", [
    (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a video" * 50), "not_a_video"),
    (lambda p: p.write_bytes(__import__("os").urandom(20_000)), "not_a_video"),
])
def test_a_bad_video_fails_its_job_with_the_reason_and_nothing_else_changes(engine, deployment, videos, write, code):
    write_video(videos / "good.mp4", seconds=4, fps=10, passes=[(0.5, 2.0, "cat", "ltr")])
    good = wait_for_job(engine, submit_job(engine, deployment, videos / "good.mp4")["id"])
    before = [(o.id, o.status) for o in observations_of(engine)]
    write(videos / "bad.mp4")
    bad = wait_for_job(engine, submit_job(engine, deployment, videos / "bad.mp4")["id"])
    assert (bad["state"], bad["error_code"]) == ("failed", code)
    assert bad["error"] and bad["lease_token"] is None
    assert jobs.job_events(engine, bad["id"]) == []
    assert [(o.id, o.status) for o in observations_of(engine)] == before
    assert jobs.get_job(engine, good["id"])["state"] == "done"


def test_a_truncated_video_fails_as_truncated(engine, deployment, videos):
    from tests.plugins.video_stream.synth import truncate

    write_video(videos / "cut.avi", seconds=8, fps=10, codec="MJPG", passes=[(0.5, 2.0, "cat", "ltr")])
    truncate(videos / "cut.avi", 0.5)
    job = wait_for_job(engine, submit_job(engine, deployment, videos / "cut.avi")["id"])
    assert (job["state"], job["error_code"]) == ("failed", "truncated"), job["error"]


def test_a_cancel_stops_a_running_job_within_two_seconds(make_engine, videos):
    # jobs slowed to 20 sampled frames a second (an operator's limit), so that one runs long enough
    engine = make_engine(video_registry(videos, config={"job_max_fps": 20}))
    deployment = jobs.create_deployment(engine, "cams", None, {"deployment_id": "CAM-01", "lat": 41.4, "lon": 2.1})
    write_video(videos / "long.mp4", seconds=30, fps=10, passes=[(2, 3, "cat", "ltr")])
    job = submit_job(engine, deployment, videos / "long.mp4", sample_fps=10)
    deadline = time.monotonic() + 60
    while jobs.get_job(engine, job["id"])["frames_done"] < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = time.monotonic()
    jobs.request_cancel(engine, job["id"])
    stopped = wait_for_job(engine, job["id"], timeout=10)
    took = time.monotonic() - asked
    assert stopped["state"] == "cancelled"
    assert took <= 2.5, f"the cancel took {took:.1f} s"
    assert 20 <= stopped["frames_done"] < 300
    assert stopped["lease_token"] is None and stopped["outputs"] is None
