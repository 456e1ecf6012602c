"""``observatory video``: deployments, submitting a file or a URL, following a job to its end,
status, cancel and list; bad input exits 2 with a clear message and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pytest
import skimage.data
from click.testing import CliRunner

from tests.plugins.video_stream.synth import write_video
from tests.plugins.video_stream.test_api import Held, stored


def run(engine: Any, *args: str) -> Any:
    """The command as a user runs it, on ``engine`` (its dispatcher runs or holds the jobs)."""
    from core.cli import build_cli

    return CliRunner().invoke(build_cli(), ["video", *args], obj={"engine": engine}, prog_name="observatory")


def job_id(output: str) -> str:
    """The job's number in ``job N queued: ...``."""
    return output.split()[1]


@pytest.fixture
def held() -> Held:
    return Held()


@pytest.fixture
def engine(make_engine: Any, held: Held, registry: str) -> Any:
    engine = make_engine(registry, dispatcher=held)
    added = run(engine, "deployments", "add", "cams", "cam-01", "--lat", "41.4168", "--lon", "2.1024",
                "--start", "2026-04-01T08:00:00+02:00", "--camera-model", "Browning BTC-8E", "--no-bait")
    assert added.exit_code == 0, added.output
    return engine


@pytest.fixture
def clip(videos: Path) -> Path:
    path = videos / "clip.mp4"
    write_video(path, seconds=4, fps=10, passes=[(1, 2, "cat", "ltr")])
    return path


def test_deployments_add_and_list(engine):
    assert run(engine, "deployments", "add", "cams", "cam-02", "--lat", "41.5", "--lon", "2.2",
               "--name", "Pond").output.strip() == "deployment cam-02 added to cams (41.5, 2.2)"
    listed = [json.loads(line) for line in run(engine, "deployments", "list", "cams").output.splitlines()]
    assert [d["deployment_id"] for d in listed] == ["cam-01", "cam-02"]
    assert listed[0]["camera_model"] == "Browning BTC-8E" and listed[0]["bait"] is False
    twice = run(engine, "deployments", "add", "cams", "cam-02", "--lat", "0", "--lon", "0")
    assert twice.exit_code == 2 and "cam-02" in twice.stderr
    bad = run(engine, "deployments", "add", "cams", "cam-03", "--lat", "95", "--lon", "0")
    assert bad.exit_code == 2 and "lat" in bad.stderr
    off = run(engine, "deployments", "add", "quiet", "cam-04", "--lat", "1", "--lon", "1")
    assert off.exit_code == 2 and "does not use video_stream" in off.stderr
    assert len(run(engine, "deployments", "list", "cams").output.splitlines()) == 2


def test_submit_copies_the_file_and_queues_the_job(engine, clip, held):
    out = run(engine, "submit", "cams", str(clip), "--deployment", "cam-01", "--sample-fps", "4",
              "--roi", "0,0.2,1,0.8", "--class", "Felis catus")
    assert out.exit_code == 0, out.output
    job = job_id(out.output)
    assert out.output.strip() == f"job {job} queued: cams, deployment cam-01, clip.mp4"
    assert held.tasks == [("video_stream.process", {"job_id": int(job)})]
    count, files = stored(engine)
    assert count == 1 and len(files) == 1, "a copy in the uploads folder, for the workers"
    status = json.loads(run(engine, "status", job, "--json").output)
    assert status["state"] == "queued" and status["source_kind"] == "upload"
    assert status["settings"]["roi"] == [0, 0.2, 1, 0.8] and status["settings"]["classes_of_interest"] == ["Felis catus"]
    line = run(engine, "list", "cams").output.splitlines()
    assert line[0].split("\t")[:4] == [job, "queued", "cam-01", "clip.mp4"]
    url = run(engine, "submit", "cams", "rtsp://ana:s3cret@192.0.2.7/live", "--deployment", "cam-01")
    assert url.exit_code == 0 and "s3cret" not in url.output
    assert json.loads(run(engine, "status", job_id(url.output), "--json").output)["source_kind"] == "stream"
    in_place = run(engine, "submit", "cams", str(clip), "--deployment", "cam-01", "--in-place", "--json")
    assert json.loads(in_place.output)["source"] == str(clip.resolve())


def test_bad_input_exits_2_and_stores_nothing(engine, clip, tmp_path):
    photo = tmp_path / "photo.mp4"
    ok, data = cv2.imencode(".jpg", skimage.data.chelsea())
    photo.write_bytes(data.tobytes())
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clip.read_bytes())
    cases = [
        (("submit", "cams", str(photo), "--deployment", "cam-01"), "not a video"),
        (("submit", "cams", str(tmp_path / "missing.mp4"), "--deployment", "cam-01"), "no such file"),
        (("submit", "cams", str(outside), "--deployment", "cam-01", "--in-place"), ""),
        (("submit", "cams", str(clip), "--deployment", "cam-99"), "cam-99"),
        (("submit", "nowhere", str(clip), "--deployment", "cam-01"), "nowhere"),
        (("submit", "quiet", str(clip), "--deployment", "cam-01"), "video_stream"),
        (("submit", "cams", str(clip), "--deployment", "cam-01", "--sample-fps", "-1"), "sample_fps"),
        (("submit", "cams", str(clip), "--deployment", "cam-01", "--roi", "0,0,2"), "roi"),
        (("submit", "cams", "ftp://example.org/a.mp4", "--deployment", "cam-01"), "http(s) or rtsp"),
    ]
    for args, said in cases:
        out = run(engine, *args)
        assert out.exit_code == 2, (args, out.output)
        assert out.stderr.startswith("error: ") and said in out.stderr, (args, out.stderr)
    assert stored(engine) == (0, [])


def test_status_and_cancel(engine, clip):
    job = job_id(run(engine, "submit", "cams", str(clip), "--deployment", "cam-01").output)
    shown = run(engine, "status", job).output.splitlines()
    assert shown[0] == f"job {job} queued: waiting for a worker" and "deployment cam-01" in shown[1]
    assert run(engine, "cancel", job).output.strip() == f"job {job} cancelled"
    assert run(engine, "status", job).output.startswith(f"job {job} cancelled: 0 event(s)")
    missing = run(engine, "status", "999999")
    assert missing.exit_code == 1 and "no video job 999999" in missing.stderr
    assert run(engine, "cancel", "999999").exit_code == 1
    assert run(engine, "list", "cams", "--state", "done").output == ""


def test_submit_and_wait_follows_the_job_to_its_outputs(make_engine, registry, clip):
    engine = make_engine(registry)  # jobs run in a thread of this process, as a worker runs them
    assert run(engine, "deployments", "add", "cams", "cam-01", "--lat", "41.4", "--lon", "2.1").exit_code == 0
    out = run(engine, "submit", "cams", str(clip), "--deployment", "cam-01", "--wait")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    job = job_id(out.output)
    assert lines[0] == f"job {job} queued: cams, deployment cam-01, clip.mp4"
    done = next(i for i, line in enumerate(lines) if line.startswith(f"job {job} done: "))
    assert "event(s)" in lines[done]
    outputs = [line.split(": ", 1) for line in lines[done + 2:]]
    assert {name.strip() for name, _ in outputs} >= {"camtrap-dp.zip", "megadetector.json", "summary.csv"}
    assert all(Path(path).exists() for _, path in outputs)
    waited = run(engine, "status", job, "--wait", "--json")
    assert waited.exit_code == 0 and json.loads(waited.output)["state"] == "done"
    assert run(engine, "cancel", job).exit_code == 1, "a done job cannot be cancelled"
    engine.dispatcher.flush(10)


def test_the_progress_line():
    from plugins.video_stream.commands import progress_line

    job = {"id": 7, "state": "running", "cancel_requested": False, "events": 2, "observations": 2, "error": None,
           "progress": {"frames_done": 48, "frames_total": 120, "percent": 40.0, "fps": 21.34, "eta_s": 75}}
    assert progress_line(job) == "job 7 running: 40% (48/120 frames, 21.3 fps, 1m15s left), 2 event(s)"
    stream = {**job, "source_kind": "stream", "progress": {"frames_done": 900, "frames_total": None, "percent": None, "fps": 2.0,
                                  "eta_s": None}, "cancel_requested": True}
    assert progress_line(stream) == "job 7 running: 900 frames (a stream, 2.0 fps, cancelling), 2 event(s)"
    failed = {**job, "state": "failed", "error": {"code": "truncated", "message": "frames stop at 47"}}
    assert progress_line(failed) == "job 7 failed: 2 event(s), 2 observation(s); truncated: frames stop at 47"


@pytest.mark.parametrize("tty", [False, True])
def test_follow_prints_a_plain_line_when_not_a_terminal_else_a_bar(monkeypatch, capsys, tty):
    from plugins.video_stream import commands

    states = iter([
        {"state": "queued", "done": 0}, {"state": "running", "done": 10}, {"state": "running", "done": 10},
        {"state": "running", "done": 30}, {"state": "done", "done": 40},
    ])

    def job(_engine: Any, _id: int) -> dict[str, Any]:
        s = next(states)
        return {"id": 3, "state": s["state"], "cancel_requested": False, "events": 1, "observations": 1,
                "error": None, "progress": {"frames_done": s["done"], "frames_total": 40,
                                            "percent": 100.0 * s["done"] / 40, "fps": 10.0,
                                            "eta_s": 1.0 if s["state"] == "running" else None}}

    monkeypatch.setattr(commands, "_job", job)
    monkeypatch.setattr(commands, "PLAIN_EVERY_S", 0.0)
    if tty:
        ended = commands.follow(None, 3, tty=True, echo=pytest.fail, sleep=lambda s: None)
        assert ended["state"] == "done" and "job 3" in capsys.readouterr().out, "a bar, no lines"
        return
    said: list[str] = []
    ended = commands.follow(None, 3, tty=False, echo=said.append, sleep=lambda s: None)
    assert ended["state"] == "done"
    assert said == ["job 3 queued: waiting for a worker",
                    "job 3 running: 25% (10/40 frames, 10.0 fps, 1s left), 1 event(s)",
                    "job 3 running: 75% (30/40 frames, 10.0 fps, 1s left), 1 event(s)"], "a line when it changes"
