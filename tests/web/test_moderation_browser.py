"""A moderator's walk in headless Chromium: sign in through the form, moderate the queue with the
keyboard, act on a selection, edit an entry (an invalid value, then a valid one), read its
history, sign out. Every page is screenshotted and checked with axe-core; nothing is loaded from
outside the engine (the ``page`` fixture fails the test otherwise)."""

from __future__ import annotations

import pytest

import re
from typing import Any

from fastapi.testclient import TestClient

from core.engine import Engine
from core.testing import submit
from tests.web.conftest import LiveServer, axe_check, make_staff, shot, sign_in
from tests.web.test_moderation import sighting, statuses
from tests.web.test_moderation import plugins, registry  # noqa: F401  (fixtures: the same projects and kinds)

pytestmark = pytest.mark.slow  # a browser walk: once in CI (the PostgreSQL pass)


def status_cell(page: Any, obs_id: int) -> Any:
    return page.locator(f'tr[data-id="{obs_id}"] td.status')


def test_a_moderator_signs_in_moderates_with_the_keyboard_edits_an_entry_and_signs_out(
        engine: Engine, client: TestClient, live_server: LiveServer, page: Any, photos: dict[str, bytes],
        make_token: Any) -> None:
    admin = make_staff(engine, "Ada Admin", "ada@example.org", project="alpha", role="admin")
    token = make_token("contributor", "alpha", "Carla Contributor")
    names = ["chelsea.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg", "camera.png"]
    ids = [submit(client, "alpha", sighting(f"Species {i}", i + 1), media={name: photos[name]}, token=token)["id"]
           for i, name in enumerate(names)]
    newest_first = sorted(ids, reverse=True)

    # a wrong password first: a clear page, nobody signed in
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("E-mail").fill(admin.email)
    page.get_by_label("Password").fill("not the right password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong e-mail or password.").wait_for()
    shot(page, "console-signin-wrong-password")
    axe_check(page, "sign-in, wrong password")

    sign_in(page, live_server, admin, then="/console")
    page.get_by_role("link", name="Alpha", exact=True).wait_for()
    shot(page, "console-home")
    axe_check(page, "console home")

    page.get_by_role("link", name="Alpha", exact=True).click()
    page.wait_for_url(re.compile(r"/console/projects/alpha/observations$"))
    page.locator("img.thumb").first.wait_for()
    assert page.locator("img.thumb").evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    assert page.get_by_text("Carla Contributor").count() == 5
    shot(page, "console-queue")
    axe_check(page, "moderation queue")

    # keyboard: j to the first row, p publishes it and moves on, t trashes the second, j skips one
    page.keyboard.press("j")
    page.keyboard.press("p")
    status_cell(page, newest_first[0]).filter(has_text="Published").wait_for()
    assert page.locator("tr.current").get_attribute("data-id") == str(newest_first[1])
    page.keyboard.press("t")
    status_cell(page, newest_first[1]).filter(has_text="Trashed").wait_for()
    page.keyboard.press("j")
    assert page.locator("tr.current").get_attribute("data-id") == str(newest_first[3])
    page.keyboard.press("p")
    status_cell(page, newest_first[3]).filter(has_text="Published").wait_for()
    assert page.locator("#announce").inner_text() == f"Observation {newest_first[3]} is now: Published."
    assert statuses(engine, newest_first) == ["published", "trashed", "pending", "published", "pending"]
    shot(page, "console-queue-after-keyboard")

    # bulk: select the two published ones (x on the current row, and a click) and unpublish them
    assert page.locator("tr.current").get_attribute("data-id") == str(newest_first[4])  # moved on
    for _ in range(4):
        page.keyboard.press("k")
    assert page.locator("tr.current").get_attribute("data-id") == str(newest_first[0])
    page.keyboard.press("x")
    page.get_by_label(f"Select observation {newest_first[3]}").check()
    page.get_by_role("button", name="Unpublish selected").click()
    page.get_by_text("Observations unpublished: 2.").wait_for()
    assert statuses(engine, newest_first) == ["unpublished", "trashed", "pending", "unpublished", "pending"]
    shot(page, "console-queue-bulk")

    # Enter opens the current row's entry
    for _ in range(3):
        page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/console/observations/{newest_first[2]}$"))
    page.get_by_role("heading", name=f"Observation {newest_first[2]}").wait_for()
    count = page.get_by_label(re.compile("^Count"))
    count.fill("0")
    page.get_by_role("button", name="Save the fields").click()
    page.locator(".field-error").wait_for()
    assert "0 is less than the minimum of 1" in page.locator(".field-error").inner_text()
    shot(page, "console-entry-invalid")
    axe_check(page, "entry with an error")
    page.get_by_label(re.compile("^Count")).fill("7")
    page.get_by_role("button", name="Save the fields").click()
    page.get_by_text("The changes are saved.").wait_for()
    history = page.locator("ol.history").inner_text()
    assert "edited · Ada Admin" in history and "fields.count: 3 → 7" in history
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text(f"Observation {newest_first[2]} is now: Published.").wait_for()
    assert "published · Ada Admin" in page.locator("ol.history").inner_text()
    shot(page, "console-entry")
    axe_check(page, "entry")

    # the queue in Spanish, through the language switch
    page.goto(live_server.url("/console/projects/alpha/observations"))
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Change", exact=True).click()
    page.get_by_role("heading", name="Cola de moderación").wait_for()
    shot(page, "console-queue-es")
    axe_check(page, "queue in Spanish")
    page.get_by_label("Idioma").select_option("en")
    page.get_by_role("button", name="Cambiar").click()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You have signed out.").wait_for()
    shot(page, "console-signed-out")
    axe_check(page, "signed out")
    page.goto(live_server.url("/console/projects/alpha/observations"))
    page.wait_for_url(re.compile(r"/console/sign-in\?next="))
