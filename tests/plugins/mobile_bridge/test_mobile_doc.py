"""docs/mobile.md's "From first launch to results" runs as written: its shell blocks, in order,
against a real `observatory serve` (API and worker, embedded defaults), as a newcomer types them:
sign up, sync an offline queue, upload the photo with a tus client, see the species result come
back over Server-Sent Events."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import skimage.data

from tests.support.shell_blocks import reader_session, run_shell_blocks, section_blocks

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "mobile.md"
SECTION = "## From first launch to results"


def flow_blocks() -> list:
    return section_blocks(PAGE, SECTION)


def test_the_flow_finds_its_blocks():
    assert len(flow_blocks()) == 4


@pytest.mark.slow  # a server, a worker and the species model built on first use: once in CI
def test_from_first_launch_to_results_runs_as_written(tmp_path):
    with reader_session(tmp_path, ROOT) as session:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
        assert ok
        (session.cwd / "photo.jpg").write_bytes(jpeg.tobytes())
        ran = run_shell_blocks(flow_blocks(), cwd=session.cwd, env=session.env,
                               replace={"http://127.0.0.1:8000": session.base}, timeout_s=400)
    print(ran.stdout)
    out = ran.stdout.splitlines()
    assert "awaiting_media" in out and "created" in out, ran.stdout
    results = [line for line in out if line.startswith("results ")]
    assert results and '"outcome"' in results[0], ran.stdout
