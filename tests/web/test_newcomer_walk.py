"""docs/console.md's first walk, as a newcomer does it: the shell block (an administrator made
with the CLI, an old project's CSV imported into the demo project) against a running engine on
the real registry.yaml, then headless Chromium: sign in at /console, publish the demo's
observations with the keyboard, and, as a visitor, open /map/demo, accept the licence and
download the open data."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.serving import api_server
from tests.support.shell_blocks import run_shell_blocks, section_blocks
from tests.test_readme_walk import walk_env  # noqa: F401  (fixture: a fresh database, the real registry)
from tests.web.conftest import axe_check, shot

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "console.md"
HEADING = "## From make run to a moderated demo and an open-data download"


@pytest.mark.slow  # once in CI: a server, CLI commands and a browser
def test_the_newcomer_walk_of_the_console_guide(tmp_path: Path, walk_env: dict[str, str], page: Any) -> None:  # noqa: F811
    env = {**walk_env, "OBSERVATORY_MAP_TILE_URL": ""}  # no tile server here: the map says so and shows the points
    blocks = section_blocks(DOC, HEADING)
    assert len(blocks) == 1, f"{DOC} has one shell block to run under {HEADING!r}"
    with api_server(tmp_path, ROOT, env=env) as base:
        run_shell_blocks(blocks, cwd=tmp_path, env={**os.environ, **env}, replace={"http://127.0.0.1:8000": base})

        # Ada signs in and lands on the demo's queue
        page.goto(f"{base}/console")
        page.get_by_label("E-mail").fill("ada@example.org")
        page.get_by_label("Password").fill("kestrel-over-the-marsh")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Demo observatory", exact=True).click()
        rows = page.locator("tbody tr[data-id]")
        rows.first.wait_for()
        waiting = rows.count()
        assert waiting == 4, "the four rows the import kept wait for moderation"
        shot(page, "walk-console-queue")

        # publish every one with the keyboard: j to the first row, then p publishes and moves on
        page.keyboard.press("j")
        for index in range(waiting):
            page.keyboard.press("p")
            page.locator(f"tbody tr[data-id] >> nth={index} >> td.status").filter(has_text="Published").wait_for()
        shot(page, "walk-console-published")

        # the services the demo uses, with their maturity and last week's health
        page.get_by_role("link", name="Services", exact=True).click()
        page.get_by_role("heading", name="Services", exact=True).wait_for()
        assert "identification" in page.locator("table").first.inner_text()
        axe_check(page, "console services")
        shot(page, "console-services")

        # a visitor (a new browser context would do; signing out is what a shared computer needs)
        page.get_by_role("button", name="Sign out").click()
        page.goto(f"{base}/map/demo")
        page.locator(".leaflet-marker-icon").first.wait_for()
        assert page.locator("#tiles-notice").is_visible()
        page.get_by_role("button", name="Download open data").click()
        dialog = page.get_by_role("dialog", name="Download open data")
        assert "CC-BY-4.0" in dialog.inner_text()
        download = dialog.get_by_role("button", name="Download the file")
        assert download.is_disabled()
        dialog.get_by_role("checkbox").check()
        shot(page, "walk-map-licence")
        with page.expect_download() as started:
            download.click()
        rows_out = list(csv.DictReader(io.StringIO(Path(started.value.path()).read_text(encoding="utf-8"))))
        assert len(rows_out) == 4
        text = Path(started.value.path()).read_text(encoding="utf-8")
        # the old project's observers and their e-mail never reach the open data
        for personal in ("Marta Puig", "marta.puig@example.org", "Jordi Soler", "Ada Lovelace"):
            assert personal not in text
