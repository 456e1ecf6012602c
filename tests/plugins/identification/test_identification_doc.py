"""docs/identification.md's "From photos to research grade" runs as written: its shell blocks, in
order, against a real `observatory serve` (API and worker, embedded defaults, the repository's
registry.yaml), with real species_id on real cat photos: two contributors and an expert identify,
the community taxon and grade follow iNaturalist's rules, the expert's queue holds both projects'
cats, and pyinaturalist (unchanged) reads the research-grade observations back."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import skimage.data

from tests.plugins.identification.test_inat_pyinaturalist import pyinaturalist_path  # noqa: F401 (fixture)
from tests.support.shell_blocks import reader_session, run_shell_blocks, section_blocks

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "identification.md"
SECTION = "## From photos to research grade"


def walk_blocks() -> list:
    return section_blocks(PAGE, SECTION)


def test_the_walk_finds_its_blocks():
    assert len(walk_blocks()) == 4


def _photo(path: Path, flip: bool) -> None:
    bgr = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", cv2.flip(bgr, 1) if flip else bgr)
    assert ok
    path.write_bytes(jpeg.tobytes())


@pytest.mark.slow  # a server, a worker and the species model built on first use: once in CI
def test_from_photos_to_research_grade_runs_as_written(tmp_path, pyinaturalist_path):  # noqa: F811
    with reader_session(tmp_path, ROOT) as session:
        _photo(session.cwd / "cat1.jpg", flip=False)
        _photo(session.cwd / "cat2.jpg", flip=True)
        env = {**session.env, "PYTHONPATH": str(pyinaturalist_path), "HOME": str(tmp_path),
               "XDG_CACHE_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
        ran = run_shell_blocks(walk_blocks(), cwd=session.cwd, env=env,
                               replace={"http://127.0.0.1:8000": session.base}, timeout_s=400)
    print(ran.stdout)
    out = ran.stdout.splitlines()
    # Ben's own identification leads; the queue: Ana's unidentified cat (with species_id's
    # suggestion) first, then Ben's, from two projects
    assert out[0] == "leading", ran.stdout
    queue = [line.split() for line in out if line.startswith("queue ")]
    assert [q[1] for q in queue] == ["wildlife", "demo"], ran.stdout
    assert queue[0][3:] == ["Felis", "catus", "0"] and queue[1][3:] == ["None", "1"], ran.stdout
    # a genus after a species leaves the demo cat needing an ID until the expert agrees
    assert "demo cat: needs_id" in out, ran.stdout
    summaries = [line.split() for line in out if line.startswith("summary ")]
    # Ana's cat: two agreeing identifications; Ben's: his, Ana's genus and Eva's; both research
    assert [s[2:] for s in summaries] == [["Felis", "catus", "2", "research"], ["Felis", "catus", "3", "research"]], \
        ran.stdout
    assert out[out.index(" ".join(summaries[-1])) + 1] == "0", ran.stdout  # the expert's queue is empty
    inat = [line.split() for line in out if line.startswith("inat ")]
    assert [(i[2], i[3], i[4]) for i in inat] == [("Felis", "catus", "research")] * 2, ran.stdout
    assert [i[5] for i in inat] == ["2", "3"], ran.stdout
