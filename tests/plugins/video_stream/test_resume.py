"""A job whose worker dies resumes from its checkpoint on another worker: frames done never go
back to 0, and the events and observations are those of an uninterrupted run, none doubled.

Jobs are slowed by the operator's ``job_max_fps`` so that they are still running when their worker
is taken away: in this process (its lease taken over, as when a worker was presumed dead) and for
real (an ``observatory worker`` process killed with SIGKILL, another one started).
"""

from __future__ import annotations

import pytest

import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select, update

from core.db.models import Observation, utcnow
from core.dispatch import CeleryDispatcher
from core.testing import LiveWorker
from plugins.video_stream import jobs, recovery
from plugins.video_stream.db import jobs as jobs_table
from tests.plugins.video_stream.conftest import video_registry, wait_for_job
from tests.plugins.video_stream.synth import write_video

PASSES = [(2.0, 2.5, "cat", "ltr"), (8.0, 2.5, "cat", "rtl"), (14.0, 2.5, "cat", "ltr")]
SLOW = {"job_max_fps": 25, "checkpoint_every_s": 0.5, "lease_s": 5}


def the_video(videos: Path) -> Path:
    path = videos / "three-cats.mp4"
    if not path.exists():
        write_video(path, seconds=20, fps=10, passes=PASSES)
    return path


def submit(engine: Any, path: Path) -> dict:
    deployment = jobs.get_deployment(engine, "cams", "CAM-01") or jobs.create_deployment(
        engine, "cams", None, {"deployment_id": "CAM-01", "lat": 41.4168, "lon": 2.1024})
    return jobs.create_job(engine, project="cams", deployment=deployment["id"], source_kind="path", source=str(path),
                           filename=path.name, settings={"sample_fps": 10}, principal=None)


def outcome(engine: Any, job_id: int) -> list[tuple]:
    return [(e["seq"], e["start_frame"], e["end_frame"], e["category"]) for e in jobs.job_events(engine, job_id)]


def observations(engine: Any) -> list[Observation]:
    with engine.sessions() as session:
        return list(session.scalars(select(Observation).order_by(Observation.id)))


def wait(check: Callable[[], bool], seconds: float, what: str, details: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}\n{details()}"
        time.sleep(0.1)


def uninterrupted(make_engine: Callable[..., Any], videos: Path) -> list[tuple]:
    """The events of the same video in one go (the reference)."""
    engine = make_engine(video_registry(videos))
    job = wait_for_job(engine, submit(engine, the_video(videos))["id"])
    assert job["state"] == "done", job["error"]
    return outcome(engine, job["id"])


def check_resumed(engine: Any, job_id: int, expected: list[tuple], floor: int, seen: list[int],
                  logs: Callable[[], str] = lambda: "") -> None:
    job = jobs.get_job(engine, job_id)
    assert job["state"] == "done", job["error"]
    assert job["attempts"] == 2, logs()
    assert floor > 0 and min(seen) >= floor, f"frames done went back below the checkpoint's {floor}: {seen}"
    assert job["frames_done"] == 200
    assert outcome(engine, job_id) == expected
    made = observations(engine)
    assert len(made) == len(expected) >= 2  # (how well the passes are found is test_pipeline's)
    assert len({o.client_id for o in made}) == len(made)


def test_a_job_taken_over_from_a_worker_presumed_dead_resumes_at_its_checkpoint(make_engine, videos, caplog,
                                                                              monkeypatch):
    expected = uninterrupted(make_engine, videos)
    engine = make_engine(video_registry(videos, config=SLOW))
    frozen = threading.Event()
    held: dict[str, str] = {}

    def paused(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(engine: Any, job_id: int, token: str, *args: Any, **kwargs: Any) -> Any:
            while frozen.is_set() and token == held.get("token"):  # the first worker hangs (a long pause)
                time.sleep(0.05)
            return real(engine, job_id, token, *args, **kwargs)
        return call

    monkeypatch.setattr(jobs, "heartbeat", paused(jobs.heartbeat))
    monkeypatch.setattr(jobs, "store_events", paused(jobs.store_events))
    job = submit(engine, the_video(videos))
    wait(lambda: len(jobs.job_events(engine, job["id"])) >= 1 and jobs.get_job(engine, job["id"])["frames_done"] >= 70,
         60, "the first event")
    held["token"] = jobs.get_job(engine, job["id"])["lease_token"]
    frozen.set()
    time.sleep(0.3)  # a write already under way ends
    with engine.db.begin() as conn:  # ... and its lease runs out
        conn.execute(update(jobs_table).values(lease_until=utcnow() - timedelta(seconds=1)))
    floor = jobs.get_job(engine, job["id"])["checkpoint"]["frames_seen"]
    with caplog.at_level("INFO", logger="plugins.video_stream.runner"):
        assert recovery.recover_work(engine) == 1
        assert recovery.recover_work(engine) == 0  # taken once
        wait(lambda: jobs.get_job(engine, job["id"])["attempts"] == 2, 30, "another run to claim it")
        frozen.clear()  # the first worker wakes up: it can write nothing more, and stops
        seen: list[int] = []

        def ended() -> bool:
            now = jobs.get_job(engine, job["id"])
            seen.append(now["frames_done"])
            return now["state"] not in ("queued", "running")

        wait(ended, 60, "the resumed job to end")
        assert engine.dispatcher.flush(10)
    check_resumed(engine, job["id"], expected, floor, seen)
    assert f"resuming job {job['id']} at frame" in caplog.text
    assert "was taken over or ended while this worker ran it" in caplog.text  # the first run stopped


@pytest.mark.slow  # over 30 s: once in CI (the PostgreSQL pass)
def test_a_worker_killed_mid_job_is_replaced_and_the_job_resumes_from_its_checkpoint(make_engine, videos,
                                                                                       tmp_path: Path):
    expected = uninterrupted(make_engine, videos)
    engine = make_engine(video_registry(videos, config=SLOW), recovery_interval_s=1)
    engine.dispatcher = CeleryDispatcher()
    workers = LiveWorker(dict(os.environ), tmp_path, cwd=Path.cwd())
    try:
        first = workers.start()
        job = submit(engine, the_video(videos))
        wait(lambda: len(jobs.job_events(engine, job["id"])) >= 1, 120, "the first worker's first event",
             workers.logs)
        workers.kill(first, signal.SIGKILL)
        killed = jobs.get_job(engine, job["id"])
        assert killed["state"] == "running" and killed["frames_done"] < 200, "killed mid-job"
        floor = killed["checkpoint"]["frames_seen"]
        workers.start()
        seen: list[int] = []

        def ended() -> bool:
            now = jobs.get_job(engine, job["id"])
            seen.append(now["frames_done"])
            return now["state"] not in ("queued", "running")

        wait(ended, 180, "another worker to resume and finish the job", workers.logs)
        check_resumed(engine, job["id"], expected, floor, seen, workers.logs)
        assert f"resuming job {job['id']} at frame" in workers.logs()
    finally:
        workers.stop()
