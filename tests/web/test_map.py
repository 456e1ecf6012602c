"""The public map's pages and JSON (no browser): which projects have a map, markers by viewport
as the public may see them (clustered at low zoom), filters, a marker's details, and that no box,
count or cell gives back a place finer than the public one."""

from __future__ import annotations

from typing import Any

import pytest

from core import accounts, consent
from core.engine import Engine
from core.lifecycle import Upload, submit
from core.web.map import markers as map_markers

MAP_REGISTRY = """
services:
  birdsong:
    summary: bird songs only
    settings: {type: object}
projects:
  - slug: alpha
    name: Alpha
    description: Birds and foxes of the city
    timezone: Europe/Madrid
    licence: CC-BY-4.0
    location_precision: 3
    obscured_precision: 1
    services: {birdsong: {}}
  - slug: beta
    name: Beta
    public: false
    services: {}
"""

EXACT = (41.38712, 2.16843)
"""An obscured observation's exact place: its public cell is (41.4, 2.2)."""


@pytest.fixture
def registry() -> str:
    return MAP_REGISTRY


@pytest.fixture
def plugins() -> str:
    return "birdsong=tests.support.birdsong"


def add(engine: Engine, lat: float, lon: float, *, privacy: str = "open", kind: str | None = None,
        day: str = "2026-05-01", fields: dict[str, Any] | None = None, status: str | None = "published",
        contributor: int | None = None, photo: bytes | None = None, project: str = "alpha") -> int:
    """Store one observation (published by default) and return its id."""
    data: dict[str, Any] = {"observed_at": f"{day}T09:30:00+02:00", "location": {"lat": lat, "lon": lon, "accuracy_m": 5},
                            "fields": fields or {"note": "seen"}, "location_privacy": privacy}
    if kind:
        data["kind"] = kind
    uploads = [Upload(photo, "IMG_home_garden.jpg", "image/jpeg")] if photo else []
    return submit(engine, project, data, uploads, contributor, status=status).observation_id


def markers(client: Any, **params: Any) -> dict[str, Any]:
    response = client.get("/map/alpha/markers", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_only_public_projects_have_a_map(client: Any, engine: Engine) -> None:
    listing = client.get("/map")
    assert listing.status_code == 200
    assert 'href="/map/alpha"' in listing.text and "/map/beta" not in listing.text
    page = client.get("/map/alpha")
    assert page.status_code == 200
    assert "Birds and foxes of the city" in page.text and "CC-BY-4.0" in page.text
    assert "/assets/leaflet/leaflet.js" in page.text and "/assets/markercluster/leaflet.markercluster.js" in page.text
    for path in ("/map/beta", "/map/nowhere"):
        assert client.get(path).status_code == 404
        assert "There is no public map of that project." in client.get(path).text
    assert client.get("/map/beta/markers").status_code == 404
    beta = add(engine, 41.0, 2.0, project="beta")
    assert client.get(f"/map/beta/observations/{beta}").status_code == 404


def test_markers_show_places_as_the_public_sees_them_and_never_a_private_one(client: Any, engine: Engine) -> None:
    open_id = add(engine, 41.38123, 2.17456)
    obscured_id = add(engine, *EXACT, privacy="obscured")
    add(engine, 41.39999, 2.15555, privacy="private")
    add(engine, 41.3, 2.1, status="pending")
    found = markers(client, zoom=16)
    assert found["mode"] == "points" and found["total"] == 2
    by_id = {p["id"]: p for p in found["points"]}
    assert set(by_id) == {open_id, obscured_id}
    assert (by_id[open_id]["lat"], by_id[open_id]["lon"]) == (41.381, 2.175)  # the project's 3-decimal grid
    assert (by_id[obscured_id]["lat"], by_id[obscured_id]["lon"]) == (41.4, 2.2)
    assert by_id[obscured_id]["obscured"] is True
    page = client.get("/map/alpha").text
    assert "2 published observations" not in page and "3 published observations" in page
    assert "2 with a public place" in page


def test_narrowing_the_box_cannot_find_an_obscured_or_private_exact_place(client: Any, engine: Engine) -> None:
    add(engine, *EXACT, privacy="obscured")
    add(engine, 41.39999, 2.15555, privacy="private")
    lat, lon = EXACT
    # a box around the exact place, as small as bisection would make it: nothing there
    for half in (0.01, 0.001, 0.0001):
        box = f"{lon - half},{lat - half},{lon + half},{lat + half}"
        assert markers(client, bbox=box, zoom=18)["total"] == 0, half
        assert markers(client, bbox=box, zoom=3)["total"] == 0, half
    # the public cell is where it is found, with the cell's place only
    found = markers(client, bbox="2.19,41.39,2.21,41.41", zoom=18)
    assert [(p["lat"], p["lon"]) for p in found["points"]] == [(41.4, 2.2)]
    # the private one is in no box at all, at any zoom
    for zoom in (0, 5, 12, 22):
        assert markers(client, zoom=zoom)["total"] == 1
        assert markers(client, bbox="2.155,41.399,2.156,41.4", zoom=zoom)["total"] == 0


def test_many_observations_come_as_cells_with_counts_and_public_centroids(client: Any, engine: Engine,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        add(engine, 41.38 + i * 0.001, 2.17, privacy="obscured")  # all in the cell (41.4, 2.2)
    add(engine, -33.9, 151.2)
    add(engine, -33.91, 151.21)
    monkeypatch.setattr(map_markers, "POINT_LIMIT", 3)
    found = markers(client, zoom=2)
    assert found["mode"] == "cells" and found["total"] == 8
    cells = sorted((c["count"], c["lat"], c["lon"]) for c in found["cells"])
    assert cells == [(2, -33.905, 151.205), (6, 41.4, 2.2)]  # the centroid of the public places, never exact
    assert "points" not in found


def test_filters_by_kind_days_taxon_and_field(client: Any, engine: Engine) -> None:
    add(engine, 41.1, 2.1, kind="bird_song", fields={"species": "Parus major"}, day="2026-04-10")
    add(engine, 41.2, 2.2, kind="bird_song", fields={"species": "Turdus merula"}, day="2026-05-02")
    add(engine, 41.3, 2.3, day="2026-05-20")
    assert markers(client)["total"] == 3
    assert markers(client, kind="bird_song")["total"] == 2
    assert markers(client, kind="generic")["total"] == 1
    assert markers(client, **{"from": "2026-05-01"})["total"] == 2
    assert markers(client, to="2026-05-02")["total"] == 2  # the day 'to' names is included
    assert markers(client, **{"from": "2026-05-02", "to": "2026-05-02"})["total"] == 1
    assert markers(client, taxon="Parus major")["total"] == 1
    assert markers(client, **{"field.species": "Turdus merula"})["total"] == 1


@pytest.mark.parametrize(("params", "words"), [
    ({"zoom": "99"}, "zoom"), ({"zoom": "-1"}, "zoom"), ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "0,80,10,95"}, "bbox"), ({"from": "2026-13-01"}, "from"), ({"to": "yesterday"}, "to"),
    ({"kind": "no such kind!"}, "kind"), ({"field.colour": "red"}, "colour"), ({"who": "me"}, "who"),
])
def test_a_bad_map_request_is_a_422_that_says_what_is_wrong(client: Any, engine: Engine, params: dict[str, str],
                                                              words: str) -> None:
    response = client.get("/map/alpha/markers", params=params)
    assert response.status_code == 422, response.text
    assert words in response.json()["error"]["message"]


def test_a_marker_shows_photo_licence_and_a_name_only_with_consent(client: Any, engine: Engine,
                                                                     photos: dict[str, bytes]) -> None:
    named = accounts.create_account(engine, "Ada Lovelace", email="ada@example.org").id
    unnamed = accounts.create_account(engine, "Grace Hopper", email="grace@example.org").id
    project = engine.registry.project("alpha")
    consent.record(engine, named, project, consent.ATTRIBUTION, consent.ATTRIBUTION_VERSION, True)
    consent.record(engine, unnamed, project, consent.ATTRIBUTION, consent.ATTRIBUTION_VERSION, True)
    consent.record(engine, unnamed, project, consent.ATTRIBUTION, consent.ATTRIBUTION_VERSION, False)
    first = add(engine, *EXACT, privacy="obscured", contributor=named, photo=photos["chelsea.jpg"])
    second = add(engine, 41.5, 2.5, contributor=unnamed)
    hidden = add(engine, 41.6, 2.6, status="unpublished", contributor=named)

    shown = client.get(f"/map/alpha/observations/{first}").json()
    assert shown["day"] == "2026-05-01" and shown["licence"] == "CC-BY-4.0"
    assert shown["licence_url"] == "http://creativecommons.org/licenses/by/4.0/legalcode"
    assert shown["recorded_by"] == "Ada Lovelace" and shown["rights_holder"] == "Ada Lovelace"
    assert shown["place"] == {"lat": 41.4, "lon": 2.2, "obscured": True, "accuracy_m": 11100.0}
    [photo] = shown["photos"]
    image = client.get(photo["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    text = str(shown)
    assert "IMG_home" not in text and "ada@" not in text and "contributor" not in text

    other = client.get(f"/map/alpha/observations/{second}").json()
    assert other["recorded_by"] is None and "Grace" not in str(other)
    assert other["rights_holder"] == "Alpha"
    for missing in (hidden, 999999, "abc", "99999999999999"):
        response = client.get(f"/map/alpha/observations/{missing}")
        assert response.status_code == 404, missing


def test_the_map_uses_the_tile_setting_and_says_when_there_are_none(make_engine: Any) -> None:
    from fastapi.testclient import TestClient

    from core.api.app import create_app

    engine = make_engine(map_tile_url="", map_tile_attribution="Nobody")
    with TestClient(create_app(engine)) as client:
        page = client.get("/map/alpha").text
    assert 'data-tiles=""' in page
    assert "The background map could not be loaded" in page  # hidden until the script shows it

