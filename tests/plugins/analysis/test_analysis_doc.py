"""docs/analysis.md runs as written: every ```python block, in order, in one Python process (as
in a notebook), against a real engine filled with observations (``Observatory.local()`` reads its
settings from the environment) and a live uvicorn server on the same database (the page's
``https://observatory.example.org``), with an operator's token in ``OBSERVATORY_TOKEN``. A block
is skipped only when the line before its fence says ``<!-- not run: REASON -->``; a failure
names the page's line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.serving import api_server

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "analysis.md"
SERVER = "https://observatory.example.org"
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->\s*$")

RUNNER = """
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for line, code in blocks:
    print(f"--- block at line {line}", flush=True)
    try:
        exec(compile("\\n" * line + code, "analysis.md", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"FAILED: docs/analysis.md, the python block at line {line}", flush=True)
        sys.exit(1)
"""


def python_blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(line of the first code line, code, the not-run reason or None) of each ```python block."""
    lines = page.read_text().splitlines()
    blocks: list[tuple[int, str, str | None]] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            match = _NOT_RUN.match(before.strip())
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append((i + 1, "\n".join(lines[i + 1:end]), match.group("reason") if match else None))
            i = end
        i += 1
    return blocks


def test_the_page_has_its_sections_and_blocks() -> None:
    text = PAGE.read_text()
    for heading in ("## A walk through a project", "## Plots and maps", "## A project report", "## Participation",
                    "## Datathons"):
        assert f"\n{heading}\n" in text, heading
    blocks = python_blocks(PAGE)
    assert len([b for b in blocks if b[2] is None]) >= 12
    assert all(reason for _line, _code, reason in blocks if reason is not None)


@pytest.mark.slow  # a server and every section's code (plots, report, profiles): once in CI
def test_the_walk_runs_as_written(engine: Any, filled: Any, tmp_path: Path) -> None:
    run = [(line, code) for line, code, reason in python_blocks(PAGE) if reason is None]
    work = tmp_path / "notebook"
    work.mkdir()
    with api_server(tmp_path, ROOT) as base:
        (work / "blocks.json").write_text(json.dumps([(line, code.replace(SERVER, base)) for line, code in run]))
        (work / "runner.py").write_text(RUNNER)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OBSERVATORY_TOKEN": filled.people["op"].token,
               "HOME": str(tmp_path)}
        done = subprocess.run([sys.executable, "runner.py", "blocks.json"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert output.count("--- block at line") == len(run)
    # what a reader sees: the counts of the filled project, the refusal, the files written
    assert "6 observations; " in output and "refused: unknown filter 'colour'" in output, output[-6000:]
    assert (work / "analysis-cache").is_dir() and list((work / "analysis-cache").glob("*.parquet"))
    assert (work / "hours.png").stat().st_size > 1000 and (work / "report.html").exists()
