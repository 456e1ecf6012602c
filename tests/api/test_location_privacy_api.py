"""Licence and location privacy per observation, through the HTTP API: what each caller is shown
of an open, an obscured and a private place, what a bounding-box bisection can learn of them,
the licence an observation carries, and the project page that tells apps what to ask.

Project ``places`` shows open places to 3 decimals (about 111 m) and obscured ones on a
1-decimal cell (about 11 km).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.api.ratelimit import RateLimiter
from core.db.models import Observation
from core.db.session import transaction
from core.engine import Engine
from tests.api.conftest import API_REGISTRY

API = "/api/v1"
REGISTRY = API_REGISTRY + """
  - slug: places
    name: Places
    auto_publish: true
    location_precision: 3
    obscured_precision: 1
    licence: CC-BY-4.0
    licences: [CC0-1.0, CC-BY-NC-4.0, all-rights-reserved]
    licence_version: "2"
    comments: false
    consent_choices:
      - {name: newsletter, text: "Send me the project's newsletter", version: "3"}
  - slug: shy
    name: Obscured by default
    auto_publish: true
    location_precision: 3
    default_location_privacy: obscured
"""
EXACT = {"lat": 41.391234, "lon": 2.171234, "accuracy_m": 5.0}
SHOWN = {"open": (41.391, 2.171), "obscured": (41.4, 2.2)}
# in the same obscured cell as EXACT (41.4, 2.2) but in another open cell: bisection must not tell them apart
SAME_CELL = {"lat": 41.362001, "lon": 2.238001}
STEPS = 31


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY)


@pytest.fixture(autouse=True)
def _no_rate_limit(app: FastAPI) -> None:
    app.state.rate_limiter = RateLimiter(0)


@pytest.fixture
def owner(make_token: Callable[..., str]) -> str:
    return make_token("contributor", "places")


def _submit(make_observation, owner: str, privacy: str, day: str = "2026-05-01", **parts: Any) -> dict[str, Any]:
    return make_observation("places", token=owner, observed_at=f"{day}T09:30:00+00:00", location=parts.pop(
        "location", EXACT), location_privacy=privacy, **parts)


@pytest.mark.parametrize("viewer", ["anonymous", "another contributor"])
@pytest.mark.parametrize("privacy", ["open", "obscured", "private"])
def test_the_public_sees_each_place_as_its_privacy_allows(privacy, viewer, client, make_token, auth, owner,
                                                         make_observation):
    obs = _submit(make_observation, owner, privacy)
    headers = auth(None if viewer == "anonymous" else make_token("contributor", "places"))
    one = client.get(f"{API}/observations/{obs['id']}", headers=headers)
    listed = client.get(f"{API}/projects/places/observations", headers=headers)
    assert one.status_code == listed.status_code == 200, (one.text, listed.text)
    (item,) = listed.json()["items"]
    for body in (one.json(), item):
        assert body["location_privacy"] == privacy
        assert body["licence"] == "CC-BY-4.0"
        if privacy == "private":
            assert body["location"] is None
        else:
            place = body["location"]
            assert (place["lat"], place["lon"]) == SHOWN[privacy]
            assert place["obscured"] is (privacy == "obscured")
            assert place["accuracy_m"] >= (11_100 if privacy == "obscured" else 111)
        assert "41.391234" not in str(body) and "2.171234" not in str(body)


@pytest.mark.parametrize("who", ["owner", "staff"])
@pytest.mark.parametrize("privacy", ["obscured", "private"])
def test_the_owner_and_staff_see_the_exact_place(privacy, who, client, make_token, auth, owner, make_observation):
    obs = _submit(make_observation, owner, privacy)
    headers = auth(owner if who == "owner" else make_token("moderator", "places"))
    body = client.get(f"{API}/observations/{obs['id']}", headers=headers).json()
    assert body["location"] == {**EXACT, "obscured": False}
    assert body["location_privacy"] == privacy


def test_a_project_default_privacy_applies_when_the_draft_names_none(client, make_token, auth, make_observation):
    obs = make_observation("shy", token=make_token("contributor", "shy"), location=EXACT)
    assert obs["location_privacy"] == "obscured"
    public = client.get(f"{API}/observations/{obs['id']}").json()
    assert (public["location"]["lat"], public["location"]["lon"], public["location"]["obscured"]) == (41.4, 2.2, True)


def _bisect(listed: Callable[[float, float, float, float], bool]) -> dict[str, Any]:
    """The bisection attack of issue 9 on each axis: the intervals it ends in and every answer."""
    answers: list[bool] = []
    found = {}
    for axis, (lo, hi) in (("lat", (-90.0, 90.0)), ("lon", (-180.0, 180.0))):
        for _ in range(STEPS):
            mid = (lo + hi) / 2
            box = (-180, lo, 180, mid) if axis == "lat" else (lo, -90, mid, 90)
            answers.append(listed(*box))
            lo, hi = (lo, mid) if answers[-1] else (mid, hi)
        found[axis] = (lo, hi)
    return {**found, "answers": answers}


def _lister(client: TestClient, headers: dict[str, str], day: str) -> Callable[..., bool]:
    def listed(west: float, south: float, east: float, north: float) -> bool:
        response = client.get(f"{API}/projects/places/observations", headers=headers, params={
            "bbox": f"{west!r},{south!r},{east!r},{north!r}", "since": f"{day}T00:00:00Z", "until": f"{day}T23:59:59Z"})
        assert response.status_code == 200, response.text
        return len(response.json()["items"]) == 1
    return listed


@pytest.mark.parametrize("attacker", ["anonymous", "another contributor"])
def test_bisecting_the_bbox_learns_an_obscured_place_no_better_than_its_cell(attacker, client, make_token, auth,
                                                                              owner, make_observation):
    _submit(make_observation, owner, "obscured", "2026-05-01")
    _submit(make_observation, owner, "obscured", "2026-05-02", location=SAME_CELL)
    headers = auth(None if attacker == "anonymous" else make_token("contributor", "places"))
    first = _bisect(_lister(client, headers, "2026-05-01"))
    second = _bisect(_lister(client, headers, "2026-05-02"))
    for axis, exact, cell in (("lat", EXACT["lat"], 41.4), ("lon", EXACT["lon"], 2.2)):
        lo, hi = first[axis]
        assert lo <= cell <= hi, "the attacker ends on the cell it was shown ..."
        assert not lo <= exact <= hi, f"... and not on the exact {axis}"
        assert not lo <= SHOWN["open"][0 if axis == "lat" else 1] <= hi, "nor on the open grid's finer place"
    assert first["answers"] == second["answers"], "two places in one obscured cell answer every request alike"


def test_no_bbox_finds_a_private_place_but_the_owners_and_staffs(client, make_token, auth, owner, make_observation):
    obs = _submit(make_observation, owner, "private")
    anyone = auth(make_token("contributor", "places"))
    for headers in ({}, anyone):
        listed = _lister(client, headers, "2026-05-01")
        assert not listed(-180, -90, 180, 90), "not even the whole globe holds a private place"
        everything = client.get(f"{API}/projects/places/observations", headers=headers).json()["items"]
        assert [o["id"] for o in everything] == [obs["id"]], "without a place filter it is listed, placeless"
    for headers in (auth(owner), auth(make_token("moderator", "places"))):
        found = _bisect(_lister(client, headers, "2026-05-01"))
        assert found["lat"][0] <= EXACT["lat"] <= found["lat"][1] and found["lat"][1] - found["lat"][0] < 1e-6


def test_a_draft_chooses_one_of_the_projects_licences(client, owner, auth, make_observation):
    assert _submit(make_observation, owner, "open", licence="CC0-1.0")["licence"] == "CC0-1.0"
    refused = client.post(f"{API}/projects/places/observations", headers=auth(owner),
                          json={"observed_at": "2026-05-01T09:30:00+00:00", "location": EXACT, "fields": {},
                                "licence": "CC-BY-ND-4.0"})
    assert refused.status_code == 422
    (detail,) = refused.json()["error"]["details"]
    assert detail["path"] == ["licence"] and detail["code"] == "unknown_licence"
    for allowed in ("CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0", "all-rights-reserved"):
        assert allowed in detail["message"]


def test_an_observation_stored_before_licences_shows_the_projects(engine, client, owner, make_observation):
    obs = _submit(make_observation, owner, "open")
    with transaction(engine.sessions) as session:
        session.get(Observation, obs["id"]).licence = None
    assert client.get(f"{API}/observations/{obs['id']}").json()["licence"] == "CC-BY-4.0"


def test_the_project_page_tells_apps_what_to_ask(client):
    page = client.get(f"{API}/projects/places")
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["licences"] == [
        {"id": "CC-BY-4.0", "uri": "http://creativecommons.org/licenses/by/4.0/legalcode", "gbif_eligible": True},
        {"id": "CC0-1.0", "uri": "http://creativecommons.org/publicdomain/zero/1.0/legalcode", "gbif_eligible": True},
        {"id": "CC-BY-NC-4.0", "uri": "http://creativecommons.org/licenses/by-nc/4.0/legalcode",
         "gbif_eligible": True},
        {"id": "all-rights-reserved", "uri": None, "gbif_eligible": False},
    ]
    assert body["licence_version"] == "2" and body["default_location_privacy"] == "open"
    assert body["location_precision_m"] == pytest.approx(111) and body["obscured_cell_m"] == pytest.approx(11_100)
    assert body["comments"] is False
    names = {c["name"]: c for c in body["consent_choices"]}
    assert names["newsletter"] == {"name": "newsletter", "text": "Send me the project's newsletter", "version": "3"}
    assert names["licence"]["version"] == "2"
    listed = {p["slug"]: p for p in client.get(f"{API}/projects").json()}
    assert listed["places"] == body and listed["alpha"]["location_precision_m"] is None


def test_the_schema_says_a_location_may_be_null(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ObservationOut"]
    location = schema["properties"]["location"]
    assert {"type": "null"} in location["anyOf"] and "private" in location["description"]
    assert "location" in schema["required"]
