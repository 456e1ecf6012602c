"""What the public sees of one person's published odour report must not depend on reports the
public may not see: another person's pending, unpublished or trashed report next to it.

``odour.corroborated`` used to count pending reports, so a published report's flag (public)
told anyone that an unpublished report of someone else lay nearby. Here Alice's report is
published in a moderated project; Bob reports the same odour next to it and stays pending:
the flag, the events, the analyses, the OdourCollect list and the observation list must read
the same as before. Once a moderator publishes Bob's report they may change (the flag arrives on
Alice's report, without waiting for anything else), and once it is unpublished or trashed they
must read as before again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from core.api.app import create_app
from core.engine import Engine
from core.tokens import create_token
from tests.support.odour import odour_service

API = "/api/v1"
REGISTRY = """
services:
""" + odour_service("leaks") + """projects:
  - slug: smells
    name: Smells, moderated
    timezone: UTC
    location_precision: 3
    services:
      odour: {distance_m: 2000}
"""
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
PUBLIC_READS = (
    f"{API}/projects/smells/odour/events",
    f"{API}/projects/smells/odour/events?format=csv",
    f"{API}/projects/smells/odour/analyses/categories",
    f"{API}/projects/smells/odour/analyses/hour_weekday",
    f"{API}/projects/smells/odour/analyses/intensity",
    f"{API}/projects/smells/odour/analyses/heatmap.geojson",
    f"{API}/projects/smells/observations",
    "/api/odor/list",
    "/api/odor/list?project=smells&type=5",
)


def _draft(minutes: float, lat: float, lon: float) -> dict[str, Any]:
    return {"observed_at": (T0 + timedelta(minutes=minutes)).isoformat(), "kind": "odour",
            "location": {"lat": lat, "lon": lon},
            "fields": {"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3}}


class World:
    def __init__(self, engine: Engine, client: TestClient):
        self.client = client
        self.tokens = {name: create_token(engine, "contributor", "smells", name).token for name in ("alice", "bob")}
        self.moderator = create_token(engine, "moderator", "smells", "mod").token

    def submit(self, who: str, draft: dict[str, Any]) -> int:
        response = self.client.post(f"{API}/projects/smells/observations", json=draft,
                                    headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def moderate(self, obs_id: int, action: str) -> None:
        response = self.client.post(f"{API}/observations/{obs_id}/moderation", json={"action": action},
                                    headers={"Authorization": f"Bearer {self.moderator}"})
        assert response.status_code in (200, 201), response.text

    def public(self, alice_id: int) -> dict[str, Any]:
        """Everything an anonymous caller reads about the odour reports, Alice's report included."""
        seen: dict[str, Any] = {}
        for path in (f"{API}/observations/{alice_id}", *PUBLIC_READS):
            response = self.client.get(path)
            assert response.status_code == 200, (path, response.text)
            seen[path] = response.json() if "json" in response.headers["content-type"] else response.text
        return seen


def _without_clock(value: Any) -> Any:
    """``updated_at`` moves when Alice's report is assessed again (its flag is decided again
    after Bob's report was public): the public may know that, but not before."""
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k != "updated_at"}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def _flags(seen: dict[str, Any], alice_id: int) -> set[str]:
    return {f["code"] for f in seen[f"{API}/observations/{alice_id}"]["flags"]}


def test_a_pending_report_next_to_a_published_one_changes_nothing_the_public_sees(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(REGISTRY)
    with TestClient(create_app(engine)) as client:
        world = World(engine, client)
        alice = world.submit("alice", _draft(0, 41.4012, 2.1714))
        world.moderate(alice, "publish")
        before = world.public(alice)
        assert "odour.corroborated" not in _flags(before, alice)
        assert before[f"{API}/projects/smells/odour/events"]["events"] == []

        # Bob smells the same, 300 m away and 20 minutes later: an event for staff, pending
        bob = world.submit("bob", _draft(20, 41.4030, 2.1740))
        staff = client.get(f"{API}/projects/smells/odour/events",
                           headers={"Authorization": f"Bearer {world.moderator}"}).json()
        assert [sorted(e["report_ids"]) for e in staff["events"]] == [sorted([alice, bob])]
        assert world.public(alice) == before, "a pending report of someone else shows in what the public sees"

        # published: now the public may know, and Alice's flag follows at once
        world.moderate(bob, "publish")
        published = world.public(alice)
        assert "odour.corroborated" in _flags(published, alice)
        assert [sorted(e["report_ids"]) for e in published[f"{API}/projects/smells/odour/events"]["events"]] == \
            [sorted([alice, bob])]
        bob_seen = client.get(f"{API}/observations/{bob}").json()
        assert "odour.corroborated" in {f["code"] for f in bob_seen["flags"]}

        # unpublished, then trashed: the public's view is what it was before Bob reported
        for action in ("unpublish", "trash"):
            world.moderate(bob, action)
            assert _without_clock(world.public(alice)) == _without_clock(before), \
                f"after {action}, Bob's report still shows"


def test_a_pending_report_of_the_same_person_does_not_corroborate_either(
        make_engine: Callable[..., Engine]) -> None:
    """Two people are needed for an event; a published report next to two pending ones of
    two other people still reads as alone."""
    engine = make_engine(REGISTRY)
    with TestClient(create_app(engine)) as client:
        world = World(engine, client)
        alice = world.submit("alice", _draft(0, 41.4012, 2.1714))
        world.moderate(alice, "publish")
        before = world.public(alice)
        for minutes in (10, 30, 50):
            world.submit("bob", _draft(minutes, 41.4020, 2.1720))
        world.submit("alice", _draft(40, 41.4015, 2.1716))
        assert world.public(alice) == before


def test_a_published_reports_burst_flag_counts_only_published_reports_of_its_author(
        make_engine: Callable[..., Engine]) -> None:
    """``odour.burst`` (five reports of one person within ten minutes) is a public flag once the
    report is published: it must not tell that its author has other, unpublished reports."""
    engine = make_engine(REGISTRY)
    with TestClient(create_app(engine)) as client:
        world = World(engine, client)
        ids = [world.submit("alice", _draft(minutes, 41.4012, 2.1714)) for minutes in (0, 2, 4, 6, 8)]
        staff = client.get(f"{API}/observations/{ids[-1]}", headers={"Authorization": f"Bearer {world.moderator}"})
        assert "odour.burst" in {f["code"] for f in staff.json()["flags"]}, "staff see the burst while pending"
        world.moderate(ids[-1], "publish")
        seen = client.get(f"{API}/observations/{ids[-1]}").json()
        assert "odour.burst" not in {f["code"] for f in seen["flags"]}, "the public learns of 4 unpublished reports"
