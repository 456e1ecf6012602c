"""The odour service's public outputs follow each report's location privacy: a private report
shows no place and adds none to the OdourCollect list, events, maps or flags; an obscured one
counts at its obscured cell. Staff see the exact places. And the reach of a report's
corroboration wraps across the antimeridian.

Project ``smells``: open places to 3 decimals, obscured ones on the 1-decimal cell.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.engine import Engine
from core.tokens import create_token
from plugins.odour.plugin import _reach_bbox
from tests.support.odour import odour_service

API = "/api/v1"
FAR_ZONE = [[10.0, 50.0], [10.1, 50.0], [10.1, 50.1], [10.0, 50.1], [10.0, 50.0]]  # every report lies outside
REGISTRY = """
services:
""" + odour_service("privacy") + f"""projects:
  - slug: smells
    name: Smells
    timezone: UTC
    auto_publish: true
    location_precision: 3
    obscured_precision: 1
    services:
      odour:
        points_of_interest: [{{name: Factory, lat: 41.40, lon: 2.17}}]
        zones: [{{name: Far, polygon: {json.dumps(FAR_ZONE)}}}]
"""
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
PUBLIC_PLACE_READS = (
    f"{API}/projects/smells/odour/events",
    f"{API}/projects/smells/odour/events?format=csv",
    f"{API}/projects/smells/odour/events?format=geojson",
    f"{API}/projects/smells/odour/analyses/heatmap.geojson",
    "/api/odor/list",
)


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), raise_server_exceptions=False) as test_client:
        yield test_client


class People:
    def __init__(self, engine: Engine, client: TestClient):
        self.client = client
        self.tokens = {name: create_token(engine, "contributor", "smells", name).token
                       for name in ("alice", "bob", "carol", "erin")}
        self.staff = {"Authorization": f"Bearer {create_token(engine, 'moderator', 'smells', 'mod').token}"}

    def report(self, who: str, minutes: float, lat: float, lon: float, privacy: str = "open") -> int:
        draft = {"observed_at": (T0 + timedelta(minutes=minutes)).isoformat(), "kind": "odour",
                 "location": {"lat": lat, "lon": lon}, "location_privacy": privacy,
                 "fields": {"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3}}
        response = self.client.post(f"{API}/projects/smells/observations", json=draft,
                                    headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "published"
        return int(response.json()["id"])

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        response = self.client.get(path, headers=headers or {})
        assert response.status_code == 200, (path, response.text)
        return response.json() if "json" in response.headers["content-type"] else response.text


@pytest.fixture
def people(engine: Engine, client: TestClient) -> People:
    return People(engine, client)


def _listed(people: People) -> dict[int, tuple[float, float]]:
    """The OdourCollect list (always the public's: published reports on their public places)."""
    rows = people.get("/api/odor/list")["content"]
    return {row["id"]: (row["latitude"], row["longitude"]) for row in rows}


def _events(people: People, headers: dict[str, str] | None = None) -> list[list[int]]:
    return [sorted(e["report_ids"]) for e in people.get(f"{API}/projects/smells/odour/events", headers)["events"]]


def test_a_private_report_shows_and_adds_no_place_in_public(people: People) -> None:
    alice = people.report("alice", 0, 41.4012, 2.1714, "private")
    bob = people.report("bob", 20, 41.4030, 2.1740)  # 300 m away, 20 minutes later: an event for staff
    assert _events(people, people.staff) == [sorted([alice, bob])]

    assert _events(people) == [], "a private report makes no public event"
    assert _listed(people) == {bob: (41.403, 2.174)}
    assert people.get(f"{API}/projects/smells/odour/analyses/heatmap")["n_reports"] == 1
    assert people.get(f"{API}/projects/smells/odour/analyses/heatmap?scope=all", people.staff)["n_reports"] == 2
    for path in PUBLIC_PLACE_READS:
        assert "41.401" not in json.dumps(people.get(path)), path

    seen = people.get(f"{API}/observations/{alice}")
    assert seen["location"] is None and seen["location_privacy"] == "private"
    enriched = seen["enrichments"]["odour"]["result"]
    assert enriched["place_private"] is True and enriched["day_of_week"] == "Monday"
    assert "points_of_interest" not in enriched and "zone" not in enriched, "distances and zones tell a place"
    assert {f["code"] for f in seen["flags"]}.isdisjoint({"odour.outside_zones", "odour.corroborated"})
    bob_flags = {f["code"] for f in people.get(f"{API}/observations/{bob}")["flags"]}
    assert "odour.outside_zones" in bob_flags, "an open report still gets its place flags"
    assert "odour.corroborated" not in bob_flags, "a private report corroborates nothing in public"


def test_an_obscured_report_counts_at_its_cell_in_public(people: People) -> None:
    carol = people.report("carol", 0, 41.4012, 2.1714, "obscured")  # shown as (41.4, 2.2)
    erin = people.report("erin", 20, 41.4005, 2.1995)  # 2.3 km from carol's place, 111 m from her cell
    assert _events(people, people.staff) == [], "on the exact places the two reports are too far apart"

    assert _listed(people) == {carol: (41.4, 2.2), erin: (41.401, 2.2)}
    (event,) = people.get(f"{API}/projects/smells/odour/events")["events"]
    assert sorted(event["report_ids"]) == sorted([carol, erin]), "the public's events use the obscured cell"
    assert round(event["centroid"]["lat"], 1) == 41.4 and round(event["centroid"]["lon"], 1) == 2.2
    for path in PUBLIC_PLACE_READS:
        assert "41.4012" not in json.dumps(people.get(path)), path

    for report in (carol, erin):  # the public flag is decided on the same places as the public's events
        assert "odour.corroborated" in {f["code"] for f in people.get(f"{API}/observations/{report}")["flags"]}

    seen = people.get(f"{API}/observations/{carol}")
    assert seen["location"]["obscured"] is True
    enriched = seen["enrichments"]["odour"]["result"]
    assert enriched["from_public_place"] == {"precision_m": pytest.approx(11_100), "obscured": True}
    (factory,) = enriched["points_of_interest"]
    assert factory["distance_m"] == 2502  # from the cell (41.4, 2.2), not the exact place (177 m away)


def test_reach_of_a_report_wraps_across_the_antimeridian() -> None:
    west, south, east, north = _reach_bbox(0.5, 179.99, 5000.0)
    assert west > east, "west of the antimeridian to east of it"
    assert west == pytest.approx(179.945, abs=1e-4) and east == pytest.approx(-179.965, abs=1e-4)
    assert south < 0.5 < north


def test_reports_either_side_of_the_antimeridian_corroborate_each_other(people: People) -> None:
    alice = people.report("alice", 0, 0.5, 179.9995)  # shown at 180.0
    bob = people.report("bob", 10, 0.5, -179.9995)  # shown at -180.0: the same meridian, 111 m apart exactly
    assert _events(people) == [sorted([alice, bob])]
    flags = {f["code"] for f in people.get(f"{API}/observations/{bob}")["flags"]}
    assert "odour.corroborated" in flags, "the neighbour across the antimeridian was found"
