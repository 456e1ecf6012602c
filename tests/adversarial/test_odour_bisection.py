"""The bisection attack on the odour outputs an anonymous caller (helped by a contributor
account in an auto-publishing project) can reach: events (membership, centroids), the
``odour.corroborated`` flag, enrichments (distance and bearing to a point of interest), the
heat map (whose grid follows the reports' extent, which the attacker's reports move), the other
analyses, and the OdourCollect list.

The project shows places to 3 decimals (111 m). A victim reports from an exact place; the
attacker knows its public place and probes around it. The attack is run twice, against a
victim at two exact places in the same public cell (0.0008 degrees, about 70 m, apart): every
answer the attacker gets must be the same in both worlds, so no sequence of probes narrows the
place below the cell. It also runs a real bisection for the distance at which a probe links
with the victim into an event: on exact places it found the victim's longitude to a metre;
here it ends on the same value in both worlds, at least 0.0004 degrees (about 33 m) from one
of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.engine import Engine
from core.privacy import snap
from core.tokens import create_token
from tests.support.odour import odour_service

API = "/api/v1"
REGISTRY = """
services:
""" + odour_service("adversarial") + """projects:
  - slug: smells
    name: Smells
    timezone: UTC
    auto_publish: true
    location_precision: 3
    services:
      odour:
        distance_m: 2000
        heatmap_cell_m: 150
        points_of_interest: [{name: Factory, lat: 41.40, lon: 2.20}]
"""
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
VICTIM_LAT = 41.4012
CELL_LON = 2.171  # the public longitude of both victims
VICTIMS = (2.1714, 2.1706)  # two exact places in that cell
DEG_PER_M = 1 / (111_320.0 * 0.75)  # east-west degrees per metre at 41.4 degrees (cos = 0.750)


class Attacker:
    """Anonymous reads, and a contributor's token for probes; the harness trashes each probe
    after it is read (as if the attacker used many time windows)."""

    def __init__(self, engine: Engine, client: TestClient):
        self.client = client
        self.token = create_token(engine, "contributor", "smells", "attacker").token
        self.operator = create_token(engine, "operator", None, "harness").token
        self.transcript: list[Any] = []

    def read(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json() if "json" in response.headers["content-type"] else response.content.hex()
        self.transcript.append(_anonymised(body))
        return body

    def probe(self, lon: float, *, minutes: float = 30) -> int:
        draft = {"observed_at": (T0 + timedelta(minutes=minutes)).isoformat(), "kind": "odour",
                 "location": {"lat": VICTIM_LAT, "lon": lon},
                 "fields": {"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3}}
        response = self.client.post(f"{API}/projects/smells/observations", json=draft,
                                    headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def trash(self, obs_id: int) -> None:
        response = self.client.post(f"{API}/observations/{obs_id}/moderation", json={"action": "trash"},
                                    headers={"Authorization": f"Bearer {self.operator}"})
        assert response.status_code in (200, 201), response.text

    def links(self, lon: float) -> bool:
        """Does a probe at ``lon`` make an event with the victim? (events and the probe's flag)"""
        probe = self.probe(lon)
        events = self.read(f"{API}/projects/smells/odour/events")["events"]
        flags = self.read(f"{API}/observations/{probe}")["flags"]
        self.trash(probe)
        linked = any(probe in e["report_ids"] for e in events)
        assert linked == any(f["code"] == "odour.corroborated" for f in flags)
        return linked


_VOLATILE = {"id", "report_ids", "possible", "created_at", "updated_at", "published_at", "observation_id",
             "next_cursor", "finished_at", "started_at", "id_user", "contributor_id", "client_id", "media",
             "grade", "assessed_at", "url"}


def _anonymised(value: Any) -> Any:
    """The answer without ids and clock times (which differ between the two worlds anyway)."""
    if isinstance(value, dict):
        return {k: _anonymised(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_anonymised(v) for v in value]
    return value


def _attack(make_engine: Callable[..., Engine], victim_lon: float) -> tuple[float, list[Any]]:
    engine = make_engine(REGISTRY)
    with TestClient(create_app(engine)) as client:
        victim = create_token(engine, "contributor", "smells", "victim").token
        draft = {"observed_at": T0.isoformat(), "kind": "odour", "location": {"lat": VICTIM_LAT, "lon": victim_lon},
                 "fields": {"category": 5, "subtype": 53, "intensity": 3, "hedonic_tone": -2}}
        response = client.post(f"{API}/projects/smells/observations", json=draft,
                               headers={"Authorization": f"Bearer {victim}"})
        assert response.status_code == 201, response.text
        victim_id = response.json()["id"]
        attacker = Attacker(engine, client)

        # what anyone sees of the victim's report: the place, the distance to the factory, flags
        seen = attacker.read(f"{API}/observations/{victim_id}")
        assert seen["location"]["lon"] == CELL_LON

        # the bisection on the link distance: probes east of the victim, 2 km away or so
        near, far = CELL_LON + 1500 * DEG_PER_M, CELL_LON + 2600 * DEG_PER_M
        assert attacker.links(near) and not attacker.links(far)
        for _ in range(14):
            middle = (near + far) / 2
            near, far = (middle, far) if attacker.links(middle) else (near, middle)
        estimate = near - 2000 * DEG_PER_M

        # the heat map: the attacker's own reports set the grid's extent; sweep its western edge
        # through the victim's cell, 10 m at a time, and read the cells
        anchor = attacker.probe(CELL_LON + 0.02, minutes=600)
        for step in range(12):
            edge = attacker.probe(CELL_LON - 0.0006 + step * 10 * DEG_PER_M, minutes=900)
            attacker.read(f"{API}/projects/smells/odour/analyses/heatmap.geojson")
            attacker.read(f"{API}/projects/smells/odour/analyses/heatmap")
            attacker.trash(edge)
        attacker.trash(anchor)

        # everything else the public can read about the odour reports
        for name in ("categories", "hour_weekday", "intensity"):
            attacker.read(f"{API}/projects/smells/odour/analyses/{name}")
        attacker.read(f"{API}/projects/smells/odour/events", format="geojson")
        attacker.read("/api/odor/list")
        rows = attacker.read("/api/odor/list", project="smells", type=5)["content"]
        assert [(r["latitude"], r["longitude"]) for r in rows] == [(snap(VICTIM_LAT, 3), CELL_LON)]
        return estimate, attacker.transcript


@pytest.fixture
def two_worlds(make_engine: Callable[..., Engine]) -> Iterator[list[tuple[float, list[Any]]]]:
    yield [_attack(make_engine, lon) for lon in VICTIMS]


def test_no_odour_output_tells_two_places_of_one_public_cell_apart(two_worlds):
    (estimate_a, seen_a), (estimate_b, seen_b) = two_worlds
    assert len(seen_a) == len(seen_b)
    for k, (a, b) in enumerate(zip(seen_a, seen_b, strict=True)):
        assert a == b, f"answer {k} differs between the two exact places: the attacker can tell them apart"
    assert estimate_a == estimate_b
    worst = max(abs(estimate_a - lon) for lon in VICTIMS)
    assert worst >= 0.0004, f"the bisection ended {worst / DEG_PER_M:.0f} m from the victim, inside the cell"
