"""A job's progress over the API: its state and progress as a worker moves it on, as Server-Sent
Events (a real uvicorn on loopback, a streaming httpx client), cancelling, and the outputs of a
job run from end to end."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from core.testing import bearer
from tests.plugins.video_stream.conftest import video_registry, wait_for_job
from tests.plugins.video_stream.synth import write_video
from tests.plugins.video_stream.test_api import CAM, DEPLOYMENTS, JOBS, Held, refused
from tests.support.mobile_feed import LiveServer

API = "/api/v1"


@pytest.fixture
def staff(make_token: Any) -> dict[str, str]:
    return bearer(make_token("admin", "cams"))


@pytest.fixture
def clip(videos: Path) -> Path:
    """6 s at 10 fps, the cat crossing once (2-4 s)."""
    path = videos / "clip.mp4"
    write_video(path, seconds=6, fps=10, passes=[(2, 2, "cat", "ltr")])
    return path


class Stream:
    """An open event stream, read event by event."""

    def __init__(self, response: httpx.Response):
        self.lines = response.iter_lines()

    def next_event(self) -> dict[str, Any] | None:
        """The next event; None when the server closed the stream."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if "data" in fields:
                    return {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        return None


@contextmanager
def stream(server: LiveServer, job_id: int, headers: dict[str, str]) -> Iterator[Stream]:
    with httpx.Client(base_url=server.base, timeout=httpx.Timeout(20.0)) as client:
        with client.stream("GET", f"{API}/video/jobs/{job_id}/events", headers=headers) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield Stream(response)


def test_progress_events_follow_the_job_to_its_end(make_engine, registry, clip, make_token):
    """The worker's side is played by the job store's own calls (claim, heartbeat, finish), so each
    step is known; the stream says each one, then ends with the job."""
    from plugins.video_stream import jobs

    held = Held()
    engine = make_engine(registry, dispatcher=held)
    from core.tokens import create_token

    headers = bearer(create_token(engine, "admin", "cams", "t").token)
    server = LiveServer(engine)
    server.start()
    try:
        assert httpx.post(server.base + DEPLOYMENTS, json=CAM, headers=headers).status_code == 201
        job = httpx.post(server.base + JOBS, json={"deployment": "cam-01", "path": str(clip)}, headers=headers,
                         timeout=30).json()
        with stream(server, job["id"], headers) as events:
            first = events.next_event()
            assert first["event"] == "progress" and first["data"]["state"] == "queued"
            lease = jobs.claim(engine, job["id"])
            running = events.next_event()
            assert running["data"]["state"] == "running" and running["id"] == first["id"] + 1
            jobs.heartbeat(engine, job["id"], lease, frames_done=15, frames_total=60, fps=30.0)
            moved = events.next_event()["data"]["progress"]
            assert (moved["frames_done"], moved["frames_total"], moved["percent"]) == (15, 60, 25.0)
            assert moved["eta_s"] == 1.5
            jobs.heartbeat(engine, job["id"], lease, frames_done=45, fps=30.0)
            assert events.next_event()["data"]["progress"]["percent"] == 75.0
            jobs.finish(engine, job["id"], lease, "failed", error_code="truncated", error="frames stop at 47 of 60")
            end = events.next_event()
            assert end["event"] == "end" and end["data"]["state"] == "failed"
            assert end["data"]["error"] == {"code": "truncated", "message": "frames stop at 47 of 60"}
            assert events.next_event() is None, "the stream closes when the job ends"
        with stream(server, job["id"], headers) as events:  # an ended job: one event, and the end
            assert events.next_event()["event"] == "end" and events.next_event() is None
    finally:
        server.stop()


def test_a_revoked_token_ends_the_stream(make_engine, registry, clip, monkeypatch):
    from core.tokens import create_token, revoke_token
    from plugins.video_stream import jobs, progress_stream

    monkeypatch.setattr(progress_stream, "HEARTBEAT_S", 0.5)
    engine = make_engine(registry, dispatcher=Held())
    made = create_token(engine, "admin", "cams", "t")
    headers = bearer(made.token)
    server = LiveServer(engine)
    server.start()
    try:
        assert httpx.post(server.base + DEPLOYMENTS, json=CAM, headers=headers).status_code == 201
        job = httpx.post(server.base + JOBS, json={"deployment": "cam-01", "path": str(clip)}, headers=headers,
                         timeout=30).json()
        lease = jobs.claim(engine, job["id"])
        with stream(server, job["id"], headers) as events:
            assert events.next_event()["data"]["state"] == "running"
            revoke_token(engine, made.id)
            jobs.heartbeat(engine, job["id"], lease, frames_done=1, frames_total=60)
            started = time.monotonic()
            while events.next_event() is not None:  # at most what was under way; then the end
                assert time.monotonic() - started < 5
        assert time.monotonic() - started < 5, "the stream ended soon after the token was revoked"
    finally:
        server.stop()


def test_cancel_a_queued_job_and_a_running_one(make_engine, registry, clip):
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from core.tokens import create_token
    from plugins.video_stream import jobs

    engine = make_engine(registry, dispatcher=Held())
    headers = bearer(create_token(engine, "moderator", "cams", "t").token)
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        assert client.post(DEPLOYMENTS, json=CAM, headers=headers).status_code == 201
        queued = client.post(JOBS, json={"deployment": "cam-01", "path": str(clip)}, headers=headers).json()
        cancelled = client.post(f"{API}/video/jobs/{queued['id']}/cancel", headers=headers)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert client.post(f"{API}/video/jobs/{queued['id']}/cancel", headers=headers).json()["state"] == "cancelled"
        running = client.post(JOBS, json={"deployment": "cam-01", "path": str(clip)}, headers=headers).json()
        lease = jobs.claim(engine, running["id"])
        asked = client.post(f"{API}/video/jobs/{running['id']}/cancel", headers=headers).json()
        assert asked["state"] == "running" and asked["cancel_requested"] is True
        assert jobs.heartbeat(engine, running["id"], lease, frames_done=3) is True, "the worker is told"
        jobs.finish(engine, running["id"], lease, "cancelled")
        assert client.get(f"{API}/video/jobs/{running['id']}", headers=headers).json()["state"] == "cancelled"
        finished = client.post(JOBS, json={"deployment": "cam-01", "path": str(clip)}, headers=headers).json()
        jobs.finish(engine, finished["id"], jobs.claim(engine, finished["id"]), "done")
        refused(client.post(f"{API}/video/jobs/{finished['id']}/cancel", headers=headers), 409, "job_ended")
        refused(client.get(f"{API}/video/jobs/{queued['id']}/outputs/summary.csv", headers=headers), 404,
                "output_not_ready")
        refused(client.get(f"{API}/video/jobs/{queued['id']}/outputs/secret.txt", headers=headers), 422,
                "invalid_request")


def test_a_running_job_stops_within_two_seconds_of_its_cancel(make_engine, videos):
    """A real job in a worker thread, slowed to 10 sampled frames a second: cancelled mid-way."""
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from core.tokens import create_token

    engine = make_engine(video_registry(videos, config={"job_max_fps": 10}, cams={"sample_fps": 10}))
    long = videos / "long.mp4"
    write_video(long, seconds=20, fps=10, passes=[(3, 2, "cat", "ltr")])
    headers = bearer(create_token(engine, "admin", "cams", "t").token)
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        assert client.post(DEPLOYMENTS, json=CAM, headers=headers).status_code == 201
        job = client.post(JOBS, json={"deployment": "cam-01", "path": str(long)}, headers=headers).json()
        wait_for_job(engine, job["id"], timeout=60, states=("running",))
        deadline = time.monotonic() + 60
        while client.get(f"{API}/video/jobs/{job['id']}", headers=headers).json()["progress"]["frames_done"] < 5:
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.1)
        asked_at = time.monotonic()
        assert client.post(f"{API}/video/jobs/{job['id']}/cancel", headers=headers).status_code == 200
        ended = wait_for_job(engine, job["id"], timeout=10)
        took = time.monotonic() - asked_at
        assert ended["state"] == "cancelled" and took < 2.5, (ended["state"], took)
        shown = client.get(f"{API}/video/jobs/{job['id']}", headers=headers).json()
        assert shown["progress"]["frames_done"] < 200, "stopped before the end"
    engine.dispatcher.flush(10)


@pytest.mark.slow  # a whole job with species_id's model
def test_a_job_from_upload_to_outputs(make_engine, registry, clip, videos):
    """Upload a video, follow the events to the end, find the machine observation through the core
    API, and download every output."""
    from core.tokens import create_token

    engine = make_engine(registry)
    headers = bearer(create_token(engine, "admin", "cams", "t").token)
    server = LiveServer(engine)
    server.start()
    try:
        base = server.base
        assert httpx.post(base + DEPLOYMENTS, json=CAM, headers=headers).status_code == 201
        made = httpx.post(base + JOBS, headers=headers, data={"deployment": "cam-01"},
                          files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}, timeout=60)
        assert made.status_code == 201, made.text
        job = made.json()
        seen: list[dict[str, Any]] = []
        with stream(server, job["id"], headers) as events:
            while (event := events.next_event()) is not None:
                seen.append(event)
        assert seen[-1]["event"] == "end" and seen[-1]["data"]["state"] == "done", seen[-1]
        done = [e["data"]["progress"]["frames_done"] for e in seen]
        assert done == sorted(done), "progress never goes back"
        final = seen[-1]["data"]
        assert final["progress"]["percent"] == 100.0 and final["events"] >= 1
        assert final["observations"] == final["events"]
        assert set(final["outputs"]) == {"summary.csv", "summary.json", "contact_sheet.png", "camtrap-dp.zip",
                                         "megadetector.json"}

        observations = httpx.get(f"{base}{API}/projects/cams/observations",
                                 params={"kind": "video_event", "field.job": job["uuid"]}, headers=headers).json()
        assert len(observations["items"]) == final["events"]
        assert observations["items"][0]["fields"]["basis_of_record"] == "MachineObservation"

        def get(name: str) -> httpx.Response:
            response = httpx.get(base + final["outputs"][name], headers=headers, timeout=30)
            assert response.status_code == 200, response.text
            return response

        package = zipfile.ZipFile(io.BytesIO(get("camtrap-dp.zip").content))
        assert {"datapackage.json", "deployments.csv", "media.csv", "observations.csv"} <= \
            {Path(n).name for n in package.namelist()}
        md = get("megadetector.json").json()
        assert md["info"]["format_version"] == "1.6" and md["images"]
        rows = list(csv.DictReader(io.StringIO(get("summary.csv").text)))
        assert rows
        sheet = cv2.imdecode(np.frombuffer(get("contact_sheet.png").content, np.uint8), cv2.IMREAD_COLOR)
        assert sheet is not None and sheet.size > 0
        assert get("summary.json").headers["content-type"].startswith("application/json")
    finally:
        server.stop()
        engine.dispatcher.flush(10)
