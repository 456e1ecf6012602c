"""The public map in headless Chromium: one walk through what a visitor does (clustered markers,
filters, a marker's photo and licence, the licence dialog by keyboard, the download and its
file), with screenshots and axe-core checks; and the tiles' notice with and without a tile server.
No request leaves loopback (the ``page`` fixture fails the test otherwise)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from core import accounts, consent
from core.engine import Engine
from tests.web.conftest import axe_check, shot
from tests.web.test_map import EXACT, MAP_REGISTRY, add

pytestmark = pytest.mark.slow  # a browser walk: once in CI (the PostgreSQL pass)

LOOPBACK_TILES = "/assets/leaflet/images/layers.png?z={z}&x={x}&y={y}"
"""A tile server on loopback: the engine itself serves this PNG (relative to the page)."""


@pytest.fixture
def registry() -> str:
    return MAP_REGISTRY


@pytest.fixture
def plugins() -> str:
    return "birdsong=tests.support.birdsong"


@pytest.fixture
def engine(make_engine: Any, request: pytest.FixtureRequest) -> Engine:
    """No tile server unless the test asks for the loopback one (``indirect`` parameter)."""
    return make_engine(map_tile_url=getattr(request, "param", ""))


def thirty(engine: Engine, photo: bytes) -> dict[str, Any]:
    """30 observations: 20 open (6 bird songs in April), 5 obscured, 5 private; one with a photo
    by a contributor who agreed to be named."""
    named = accounts.create_account(engine, "Ada Lovelace", email="ada@example.org").id
    consent.record(engine, named, engine.registry.project("alpha"), consent.ATTRIBUTION, consent.ATTRIBUTION_VERSION,
                   True)
    ids: dict[str, Any] = {"open": [], "obscured": [], "private": []}
    for i in range(20):
        song = i < 6
        ids["open"].append(add(engine, 41.35 + i * 0.004, 2.10 + (i % 5) * 0.02, contributor=named,
                               kind="bird_song" if song else None, day="2026-04-1%d" % (i % 9) if song else "2026-05-02",
                               fields={"species": "Parus major"} if song else {"note": "seen"}))
    ids["photo"] = add(engine, 41.45, 2.25, kind="bird_song", fields={"species": "Turdus merula"}, day="2026-05-20",
                       contributor=named, photo=photo)
    ids["open"].append(ids["photo"])
    for i in range(4):
        ids["obscured"].append(add(engine, EXACT[0] + i * 0.001, EXACT[1], privacy="obscured", contributor=named))
    for i in range(5):
        ids["private"].append(add(engine, 41.36 + i * 0.01, 2.13, privacy="private", contributor=named))
    return ids


def total(page: Any) -> int:
    return int(page.get_attribute("#map", "data-total"))


def wait_loaded(page: Any) -> None:
    page.wait_for_function("() => !document.getElementById('map').hasAttribute('aria-busy') "
                           "&& document.getElementById('map').dataset.total !== undefined")


def test_a_visitor_filters_the_map_opens_a_marker_and_downloads_the_open_data(
        page: Any, live_server: Any, engine: Engine, photos: dict[str, bytes], tmp_path: Path) -> None:
    ids = thirty(engine, photos["chelsea.jpg"])
    page.goto(live_server.url("/map/alpha"))
    wait_loaded(page)
    assert total(page) == 25  # private places are on no map
    assert page.locator(".marker-cluster").count() >= 1  # close points clustered
    assert page.locator("#tiles-notice").is_visible()  # no tile server: the notice says so
    page.wait_for_timeout(300)
    shot(page, "map-clustered")
    axe_check(page, "map")

    page.get_by_label("Observation kind").select_option("bird_song")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_function("() => document.getElementById('map').dataset.total === '7'")
    page.get_by_label("Observed from").fill("2026-05-01")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_function("() => document.getElementById('map').dataset.total === '1'")
    assert page.get_by_role("status").inner_text() == "1 observation in view"

    marker = page.locator(".leaflet-marker-icon:not(.marker-cluster)")
    marker.first.wait_for()
    marker.first.click()
    details = page.locator("#details")
    details.wait_for()
    photo = details.get_by_role("img", name=f"Photo of observation {ids['photo']}")
    photo.wait_for()
    page.wait_for_function("() => document.querySelector('#details img').naturalWidth > 0")
    assert details.get_by_role("link", name="CC-BY-4.0").get_attribute("href").endswith("/by/4.0/legalcode")
    assert "Ada Lovelace" in details.inner_text()  # she agreed to be named
    shot(page, "map-marker-details")
    page.get_by_role("button", name="Close details").click()
    assert details.is_hidden()
    page.get_by_role("button", name="Clear filters").click()
    page.wait_for_function("() => document.getElementById('map').dataset.total === '25'")

    # the licence dialog, by keyboard: it opens, the download waits for acceptance, Escape closes
    opener = page.get_by_role("button", name="Download open data")
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Download open data")
    dialog.wait_for()
    download = dialog.get_by_role("button", name="Download the file")
    assert download.is_disabled()
    assert page.evaluate("document.activeElement.id") == "accept"
    for _ in range(8):  # Tab stays inside the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('download-dialog').contains(document.activeElement)")
    page.keyboard.press("Escape")
    assert dialog.is_hidden()
    assert page.evaluate("document.activeElement.id") == "open-download"
    page.keyboard.press("Enter")
    dialog.wait_for()
    page.keyboard.press("Space")  # the checkbox has the focus
    assert download.is_enabled()
    shot(page, "map-download-dialog")
    axe_check(page, "map download dialog")
    with page.expect_download() as waiting:
        download.click()
    target = tmp_path / "open-data.csv"
    waiting.value.save_as(target)
    assert waiting.value.suggested_filename == "alpha-open-data.csv"
    text = target.read_text(encoding="utf-8")
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == set(ids["open"]) | set(ids["obscured"]) | set(ids["private"])
    assert "Ada" not in text and "ada@" not in text and "contributor" not in text
    assert all(rows[i]["lat"] == "" for i in ids["private"])
    assert {(rows[i]["lat"], rows[i]["lon"]) for i in ids["obscured"]} == {("41.4", "2.2")}
    assert dialog.is_hidden()
    assert page.evaluate("document.activeElement.id") == "open-download"


@pytest.mark.parametrize("engine", [LOOPBACK_TILES], indirect=True)
def test_with_a_reachable_tile_server_there_is_no_notice(page: Any, live_server: Any, engine: Engine) -> None:
    add(engine, 41.4, 2.2)
    tiles: list[str] = []
    page.on("requestfinished", lambda r: tiles.append(r.url) if "layers.png" in r.url else None)
    page.goto(live_server.url("/map/alpha"))
    wait_loaded(page)
    page.wait_for_function("() => document.querySelectorAll('.leaflet-tile-loaded').length > 0")
    assert tiles and all(re.match(r"http://127\.0\.0\.1:\d+/assets/", url) for url in tiles)
    assert page.locator("#tiles-notice").is_hidden()
    assert total(page) == 1
