"""docs/video_stream.md's "From a camera trap video to observations" runs as written: its shell
blocks, in order, against a real `observatory serve` (API and worker, embedded defaults, this
repository's registry.yaml) as a newcomer types them: an admin and a deployment, a synthetic
camera-trap video submitted, its progress over Server-Sent Events, the machine observation
through the core API, the Camtrap DP package and the MegaDetector JSON downloaded."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.support.shell_blocks import reader_session, run_shell_blocks, section_blocks

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "video_stream.md"
SECTION = "## From a camera trap video to observations"


def walk_blocks() -> list:
    return section_blocks(PAGE, SECTION)


def test_the_walk_finds_its_blocks():
    assert len(walk_blocks()) == 5


@pytest.mark.slow  # a server, a worker and species_id's model built on first use
def test_from_a_camera_trap_video_to_observations_runs_as_written(tmp_path):
    from tests.plugins.video_stream.synth import write_video

    with reader_session(tmp_path, ROOT) as session:
        truth = write_video(session.cwd / "trap.mp4", seconds=8, fps=10, passes=[(2, 3, "cat", "ltr")])
        ran = run_shell_blocks(walk_blocks(), cwd=session.cwd, env=session.env,
                               replace={"http://127.0.0.1:8000": session.base}, timeout_s=600)
    print(ran.stdout)
    out = ran.stdout.splitlines()
    assert out[0] == "cam-01" and out[1].startswith("job "), ran.stdout
    progress = [line for line in out if line.split(" ", 1)[0] in ("queued", "running", "done")]
    assert progress and progress[-1].startswith("done 100.0 % of ") and progress[-1].endswith("1 event(s)"), out
    events = [line.split() for line in out if line.startswith("1 animal ")]
    assert len(events) == 1, ran.stdout
    start_s = float(events[0][2])
    cat = truth["passes"][0]
    assert cat["start_s"] - 0.5 <= start_s <= cat["end_s"], (start_s, cat["start_s"], cat["end_s"])
    assert events[0][7] == "MachineObservation", events[0]
    package = zipfile.ZipFile(tmp_path / "camtrap-dp.zip")
    assert any(name.endswith("observations.csv") for name in package.namelist())
    assert any(line.startswith("MegaDetector 1.6 {") for line in out), ran.stdout
