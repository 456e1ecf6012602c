"""The console's comments, project and exports pages in headless Chromium: one walk of an
administrator (sign in through the form, hide a comment, lock an observation's comments, switch
comments off, export a filtered CSV in the background and download it, open the project page and
start an erasure up to its confirmation), with a screenshot and an axe-core check of each page.
No request leaves loopback (the ``page`` fixture fails the test otherwise)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import comments
from core.engine import Engine
from core.moderation import moderate
from core.project_switches import comments_on
from core.testing import draft, submit
from tests.web.conftest import LiveServer, axe_check, make_staff, shot, sign_in
from tests.web.test_console_comments import member, principal_of
from tests.web.test_console_exports import plugins, registry  # noqa: F401  (the exports tests' project and plugins)

pytestmark = pytest.mark.slow  # a browser walk: once in CI (the PostgreSQL pass)


@pytest.fixture
def walk(engine: Engine) -> dict[str, Any]:
    """alpha: 2 generic and 2 bird-song published observations, a contributor's comment on one."""
    ids = [submit(engine, "alpha", draft(fields={"note": f"fox {i}"}))["id"] for i in range(2)]
    ids += [submit(engine, "alpha", draft(kind="bird_song", fields={"species": s}))["id"]
            for s in ("Turdus merula", "Erithacus rubecula")]
    for obs_id in ids:
        moderate(engine, obs_id, "publish", "test")
    writer = member(engine, "Carla Contributor", "carla@example.org", "alpha", "contributor")
    said = comments.post(engine, principal_of(engine, writer), ids[0], "Rude words here")
    admin = make_staff(engine, "Ada Admin", "ada@example.org", project="alpha", role="admin")
    return {"ids": ids, "comment": said["id"], "admin": admin, "writer": writer}


def visit(page: Any, name: str) -> None:
    shot(page, name)
    axe_check(page, name)


def test_an_admin_moderates_comments_exports_and_starts_an_erasure(page: Any, live_server: LiveServer,
                                                                   walk: dict[str, Any], app: Any,
                                                                   tmp_path: Path) -> None:
    engine = app.state.engine
    sign_in(page, live_server, walk["admin"], then="/console/projects/alpha/comments")
    assert page.url.endswith("/console/projects/alpha/comments")
    visit(page, "console-comments")

    row = page.locator(f"#comment-{walk['comment']}")
    row.get_by_role("button", name="Hide").click()
    page.wait_for_load_state("domcontentloaded")
    assert page.get_by_role("status").inner_text() == "The comment is hidden."
    with TestClient(app) as api:  # the public API no longer shows it
        assert api.get(f"/api/v1/observations/{walk['ids'][0]}/comments").json()["items"] == []

    page.locator(f"#comment-{walk['comment']}").get_by_role("button", name="Lock comments").click()
    page.wait_for_load_state("domcontentloaded")
    assert page.locator(f"#comment-{walk['comment']}").get_by_role("button", name="Unlock comments").is_visible()

    page.get_by_role("button", name="Switch comments off").click()
    page.wait_for_load_state("domcontentloaded")
    assert "Comments are off for the project." in page.get_by_role("status").inner_text()
    assert not comments_on(engine, engine.registry.project("alpha"))
    visit(page, "console-comments-off")

    page.get_by_role("link", name="Exports").click()
    page.wait_for_load_state("domcontentloaded")
    visit(page, "console-exports")
    page.get_by_label("CSV").check()
    page.get_by_label("Kind").select_option("bird_song")
    page.get_by_role("button", name="Prepare the export").click()
    download_link = page.get_by_role("link", name=re.compile("Download alpha-observations.csv"))
    download_link.wait_for(timeout=30_000)  # the page polls the progress and shows the link when done
    assert "2 of 2 rows" in page.locator("#export-job").inner_text()
    visit(page, "console-export-done")
    with page.expect_download() as started:
        download_link.click()
    saved = tmp_path / "export.csv"
    started.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert sorted(r["field.species"] for r in rows) == ["Erithacus rubecula", "Turdus merula"]
    assert {r["kind"] for r in rows} == {"bird_song"}

    page.get_by_role("link", name="Project", exact=True).click()
    page.wait_for_load_state("domcontentloaded")
    assert page.get_by_role("row", name=re.compile("Carla Contributor")).is_visible()
    visit(page, "console-project")
    page.get_by_role("link", name=re.compile("Erase on request.*Carla Contributor")).click()
    page.wait_for_load_state("domcontentloaded")
    assert "policy is to anonymise" in page.locator("#what-happens").inner_text()
    assert "This cannot be undone." in page.locator("#what-happens").inner_text()
    visit(page, "console-erasure-confirmation")
    page.get_by_role("link", name="Cancel").click()  # nothing erased
    page.wait_for_load_state("domcontentloaded")
    assert page.get_by_role("row", name=re.compile("Carla Contributor")).is_visible()
