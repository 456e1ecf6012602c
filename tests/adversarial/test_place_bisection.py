"""Bisecting a bounding box does not give back a place more exactly than the caller may see it.

The attack of issue 9: ask the list for a box that holds half of what is left, keep the half
that still lists the observation, and after ~60 requests the exact place is known to 1e-7°
although the observation itself shows it to 0.01°. The filter must test the place as the caller
sees it (``core.privacy``): then everything the attacker learns is a function of the snapped
place, so two places in the same grid cell give the same answers to every request.

Project ``gamma`` shows places to the public to 2 decimal places (a 0.01° grid).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core import queries
from core.api.ratelimit import RateLimiter
from core.engine import Engine
from core.privacy import snap

API = "/api/v1"
GRID = 0.01  # gamma: location_precision 2
EXACT = (41.3912340, 2.1712340)  # the point of the issue; shown as 41.39, 2.17
SAME_CELL = (41.3860010, 2.1660010)  # another point that is shown as 41.39, 2.17
STEPS = 31  # 180° / 2**31 < 1e-7°: what the attack of the issue reached in 61 requests


@pytest.fixture(autouse=True)
def _no_rate_limit(app: FastAPI) -> None:
    app.state.rate_limiter = RateLimiter(0)


def bisect(present: Callable[[float, float], bool], lo: float, hi: float) -> tuple[float, float, list[bool]]:
    """Narrow [lo, hi] by asking ``present(lo, mid)``; the interval and every answer."""
    answers = []
    for _ in range(STEPS):
        mid = (lo + hi) / 2
        answers.append(present(lo, mid))
        lo, hi = (lo, mid) if answers[-1] else (mid, hi)
    return lo, hi, answers


def attack(client: TestClient, headers: dict[str, str], day: str) -> dict[str, Any]:
    """The bisection attack through the list route, on the one observation made on ``day``."""
    window = {"since": f"{day}T00:00:00Z", "until": f"{day}T23:59:59Z"}
    requests = 0

    def listed(west: float, south: float, east: float, north: float) -> bool:
        nonlocal requests
        requests += 1
        response = client.get(f"{API}/projects/gamma/observations",
                              params={"bbox": f"{west!r},{south!r},{east!r},{north!r}", **window}, headers=headers)
        assert response.status_code == 200, response.text
        return len(response.json()["items"]) == 1

    assert listed(-180, -90, 180, 90), "the observation is listed at all"
    lat_lo, lat_hi, lat_answers = bisect(lambda lo, mid: listed(-180, lo, 180, mid), -90.0, 90.0)
    lon_lo, lon_hi, lon_answers = bisect(lambda lo, mid: listed(lo, -90, mid, 90), -180.0, 180.0)
    return {"lat": (lat_lo, lat_hi), "lon": (lon_lo, lon_hi), "answers": lat_answers + lon_answers,
            "requests": requests}


def _make_pair(make_observation: Callable[..., dict[str, Any]], token: str) -> None:
    """Two published observations of ``token``'s contributor in one grid cell, a day apart."""
    for day, (lat, lon) in (("2026-05-01", EXACT), ("2026-05-02", SAME_CELL)):
        obs = make_observation("gamma", token=token, observed_at=f"{day}T09:30:00+00:00",
                               location={"lat": lat, "lon": lon, "accuracy_m": 3})
        assert obs["status"] == "published"


@pytest.mark.parametrize("attacker", ["anonymous", "another contributor"])
def test_bisecting_the_bbox_ends_no_closer_than_the_public_grid(attacker, client, make_token, auth,
                                                              make_observation):
    owner = make_token("contributor", "gamma")
    _make_pair(make_observation, owner)
    headers = auth(None if attacker == "anonymous" else make_token("contributor", "gamma"))
    shown = client.get(f"{API}/projects/gamma/observations", params={"since": "2026-05-01T00:00:00Z",
                       "until": "2026-05-01T23:59:59Z"}, headers=headers).json()["items"][0]["location"]
    assert (shown["lat"], shown["lon"]) == (41.39, 2.17)

    first, second = attack(client, headers, "2026-05-01"), attack(client, headers, "2026-05-02")
    assert first["requests"] == 2 * STEPS + 1
    for name, exact, value in (("lat", EXACT[0], 41.39), ("lon", EXACT[1], 2.17)):
        lo, hi = first[name]
        # the attacker ends on the value it was shown, and the exact place is not where it ends ...
        assert lo <= value <= hi, (name, lo, hi)
        assert not lo <= exact <= hi, f"{name}: bisection recovered the exact place {exact} in [{lo}, {hi}]"
        assert abs((lo + hi) / 2 - exact) > GRID / 10
    # ... and two places in one grid cell answer every request alike: all that is learnt is the cell
    assert first["answers"] == second["answers"]


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_the_owner_and_staff_filter_on_the_exact_place(who, client, make_token, auth, make_observation):
    owner = make_token("contributor", "gamma")
    _make_pair(make_observation, owner)
    headers = auth(owner if who == "owner" else make_token("moderator", "gamma"))
    found = attack(client, headers, "2026-05-01")
    for name, exact in (("lat", EXACT[0]), ("lon", EXACT[1])):
        lo, hi = found[name]
        assert lo <= exact <= hi and hi - lo < 1e-6, (name, lo, hi)
    assert found["answers"] != attack(client, headers, "2026-05-02")["answers"]


def test_a_box_across_the_antimeridian_tests_the_place_as_shown(client, make_token, auth, make_observation):
    owner = make_token("contributor", "gamma")
    obs = make_observation("gamma", token=owner, location={"lat": -16.5, "lon": -179.9962})
    assert snap(-179.9962, 2) == -180.0

    def ids(bbox: str, token: str | None) -> list[int]:
        response = client.get(f"{API}/projects/gamma/observations", params={"bbox": bbox}, headers=auth(token))
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]]

    # shown at -180.0: a box from 179.9 east across the antimeridian to -179.9999 holds it ...
    assert ids("179.9,-17,-179.9999,-16", None) == [obs["id"]]
    # ... and a thin box around the exact place does not, for the public; it does for the owner
    assert ids("-179.9963,-17,-179.9961,-16", None) == []
    assert ids("-179.9963,-17,-179.9961,-16", owner) == [obs["id"]]
    assert ids("179.9,-17,-179.9999,-16", owner) == []


def test_plugin_queries_filter_exact_places_unless_asked_for_the_public_view(engine: Engine, make_token,
                                                                            make_observation):
    owner = make_token("contributor", "gamma")
    _make_pair(make_observation, owner)
    far = make_observation("gamma", token=owner, location={"lat": -16.5, "lon": -179.9962},
                           observed_at="2026-06-01T09:30:00+00:00")

    def ids(bbox: tuple[float, float, float, float], **kw: Any) -> list[int]:
        return [v.id for v in queries.observations(engine, "gamma", bbox=bbox, **kw)]

    thin = (2.1712, 41.3912, 2.1713, 41.3913)  # around the exact place only
    assert len(ids(thin)) == 1, "plugins are trusted: exact places by default"
    assert ids(thin, public_places=True) == []
    public = queries.observations(engine, "gamma", bbox=(2.165, 41.385, 2.175, 41.395), public_places=True)
    assert {(v.location.lat, v.location.lon) for v in public} == {(41.39, 2.17)} and len(public) == 2
    assert all(v.location.accuracy_m >= 1000 for v in public)
    # west > east crosses the antimeridian, as the API's bbox does
    assert ids((179.9, -17, -179.99, -16)) == [far["id"]]
    assert ids((179.9, -17, -179.9999, -16)) == []
    assert ids((179.9, -17, -179.9999, -16), public_places=True) == [far["id"]]

    # the bisection attack through a plugin that asks for public places learns only the cell
    def transcript(day: str) -> list[bool]:
        from datetime import datetime, timedelta, timezone

        since = datetime.fromisoformat(f"{day}T00:00:00+00:00").astimezone(timezone.utc)
        window = {"since": since, "until": since + timedelta(days=1), "public_places": True}
        lat = bisect(lambda lo, mid: bool(ids((-180, lo, 180, mid), **window)), -90.0, 90.0)
        lon = bisect(lambda lo, mid: bool(ids((lo, -90, mid, 90), **window)), -180.0, 180.0)
        assert lat[0] <= 41.39 <= lat[1] and lon[0] <= 2.17 <= lon[1]
        return lat[2] + lon[2]

    assert transcript("2026-05-01") == transcript("2026-05-02")
