"""Jobs that read over the network: a video file at an http URL, and a live MJPEG stream served on
loopback that drops once (the gap is recorded on the job) and is stopped through a cancel (it then
ends ``done``, with its outputs)."""

from __future__ import annotations

import time

from plugins.video_stream import jobs
from tests.plugins.video_stream.conftest import wait_for_job
from tests.plugins.video_stream.mjpeg_server import MjpegServer
from tests.plugins.video_stream.synth import write_video


def test_a_video_at_a_url_is_read_and_its_events_stored(engine, deployment, videos):
    truth = write_video(videos / "remote.mp4", seconds=6, fps=10, passes=[(1.0, 2.5, "cat", "ltr")])
    with MjpegServer(files={"remote.mp4": ((videos / "remote.mp4").read_bytes(), "video/mp4")}) as server:
        job = jobs.create_job(engine, project="cams", deployment=deployment["id"], source_kind="url",
                              source=server.url("/files/remote.mp4"), settings={}, principal=None)
        done = wait_for_job(engine, job["id"])
    assert done["state"] == "done", done["error"]
    assert done["frames_done"] == 30
    assert len(jobs.job_events(engine, job["id"])) == len(truth["passes"]) == 1


def test_an_unreachable_url_fails_its_job_as_unreachable(engine, deployment):
    job = jobs.create_job(engine, project="cams", deployment=deployment["id"], source_kind="url",
                          source="http://127.0.0.1:9/nothing.mp4", settings={}, principal=None)
    failed = wait_for_job(engine, job["id"], timeout=60)
    assert (failed["state"], failed["error_code"]) == ("failed", "unreachable"), failed["error"]


def test_a_live_stream_runs_until_stopped_and_records_its_gap(engine, deployment):
    with MjpegServer(fps=10, cut_at=25) as server:
        job = jobs.create_job(engine, project="cams", deployment=deployment["id"], source_kind="stream",
                              source=server.url(), settings={"sample_fps": 5}, principal=None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = jobs.get_job(engine, job["id"])
            if now["gaps"] and now["frames_done"] >= 20:
                break
            time.sleep(0.2)
        asked = time.monotonic()
        jobs.request_cancel(engine, job["id"])
        stopped = wait_for_job(engine, job["id"], timeout=15)
        took = time.monotonic() - asked
    assert stopped["state"] == "done", stopped["error"]
    assert took <= 5, f"stopping took {took:.1f} s"
    assert stopped["frames_done"] >= 20 and stopped["frames_total"] == stopped["frames_done"]
    [gap] = stopped["gaps"]
    assert gap["reason"] == "dropped" and gap["recovered"] is True
    assert stopped["video"]["start_time_source"] == "stream_clock"
    assert {"megadetector.json", "camtrap-dp.zip", "summary.csv"} <= set(stopped["outputs"])
