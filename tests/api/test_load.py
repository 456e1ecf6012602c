"""A bounded load test of the real server on loopback: concurrent submitters, idempotent retries.

uvicorn serves the API (``tests/api/serve_app.py``) in a subprocess on 127.0.0.1, on the test
session's database (SQLite, or PostgreSQL with OBSERVATORY_TEST_DATABASE_URL), enrichments
queued on the file-system broker as ``observatory serve`` does. ``SUBMITTERS`` clients, each a
contributor with its own token, submit observations with their own client_ids for
OBSERVATORY_LOAD_SECONDS seconds (default 10): mostly new ones, some sent again as a retry
(same client_id, same content: 200 with the first observation), some sent twice at once (a
race on one client_id: one 201, one 200, one row).

Every response must be 201 or 200 (no errors, no time-outs), every retry must name the
observation stored the first time, and the database must hold exactly one row per distinct
accepted client_id. The loop stops at the deadline or after ``MAX_REQUESTS``, whichever first.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa

from core.db.models import Observation
from core.engine import Engine
from core.tokens import create_token
from tests.support.serving import HOST, ServerDidNotStart, api_server

ROOT = Path(__file__).resolve().parents[2]
SUBMITTERS = 50
SECONDS = float(os.environ.get("OBSERVATORY_LOAD_SECONDS", "10"))
MAX_REQUESTS = 500_000  # a bound on the loop whatever the machine's speed
REQUEST_TIMEOUT_S = 60.0  # above SQLite's busy timeout (30 s): a slow answer is an error, not a hang
PROJECT = "load"
LOAD_REGISTRY = f"""
services:
  recorder:
    summary: records which observations it saw
    settings: {{type: object}}
projects:
  - slug: {PROJECT}
    name: Load
    timezone: Europe/Madrid
    services: {{recorder: {{}}}}
"""

pytestmark = pytest.mark.slow


@pytest.fixture
def server(make_engine: Callable[..., Engine], tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """uvicorn serving the API on 127.0.0.1 with this test's settings; (base URL, engine)."""
    # make_engine writes the OBSERVATORY_* settings to the environment the server inherits
    engine = make_engine(LOAD_REGISTRY, rate_limit_per_minute=0, plugin_modules="recorder=tests.support.recorder")
    try:
        with api_server(tmp_path, ROOT, {"OBSERVATORY_SERVE_DISPATCHER": "celery"}) as base:
            yield base, engine
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    created: dict[str, int] = field(default_factory=dict)  # client_id -> observation id (201)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    races: int = 0


def make_body(submitter: int, n: int) -> dict[str, Any]:
    return {
        "client_id": f"load-{submitter}-{n}",
        "observed_at": f"2026-05-01T{n // 60 % 24:02d}:{n % 60:02d}:00+02:00",
        "location": {"lat": 41.0 + submitter / 100, "lon": 2.0 + (n % 1000) / 1000, "accuracy_m": 8},
        "kind": "generic",
        "fields": {"note": f"submitter {submitter}, observation {n}", "count": n % 7},
    }


async def submitter(index: int, token: str, base: str, deadline: float, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    sent: list[dict[str, Any]] = []
    first_ids: dict[str, int] = {}  # what this submitter was told, by client_id
    url = f"/api/v1/projects/{PROJECT}/observations"

    async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, int | None]:
        tally.requests += 1
        try:
            response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            tally.errors.append(f"{body['client_id']}: {type(exc).__name__}: {exc}")
            return 0, None
        tally.statuses[response.status_code] += 1
        if response.status_code not in (200, 201):
            tally.errors.append(f"{body['client_id']}: {response.status_code} {response.text[:300]}")
            return response.status_code, None
        return response.status_code, response.json()["id"]

    def record(body: dict[str, Any], status: int, obs_id: int | None) -> None:
        client_id = body["client_id"]
        if obs_id is None:
            return
        if status == 201:
            if client_id in tally.created:
                tally.errors.append(f"{client_id}: created twice ({tally.created[client_id]} and {obs_id})")
            tally.created[client_id] = obs_id
        if client_id in first_ids and first_ids[client_id] != obs_id:
            tally.errors.append(f"{client_id}: a retry answered observation {obs_id}, not {first_ids[client_id]}")
        first_ids.setdefault(client_id, obs_id)

    # a client must drop an idle connection before the server does (uvicorn: after 5 s), or a
    # request sent as the server closes it fails with ReadError: a client bug, not the server's
    limits = httpx.Limits(max_connections=2, keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        n = 0
        while time.monotonic() < deadline and tally.requests < MAX_REQUESTS:
            if n % 5 == 4 and sent:  # a retry of an earlier one: 200, the same observation
                body = sent[(n * 7) % len(sent)]
                tally.retries += 1
                status, obs_id = await post(client, body)
                if status == 201:
                    tally.errors.append(f"{body['client_id']}: a retry answered 201")
                record(body, status, obs_id)
            elif n % 10 == 2:  # the same new one twice at once: one 201, one 200, one row
                body = make_body(index, n)
                tally.races += 1
                answers = await asyncio.gather(post(client, body), post(client, body))
                if sorted(s for s, _ in answers) != [200, 201] and all(s in (200, 201) for s, _ in answers):
                    tally.errors.append(f"{body['client_id']}: a race answered {[s for s, _ in answers]}")
                for status, obs_id in sorted(answers, key=lambda a: -a[0]):  # the 201 first
                    record(body, status, obs_id)
                sent.append(body)
            else:
                body = make_body(index, n)
                status, obs_id = await post(client, body)
                if status == 200:
                    tally.errors.append(f"{body['client_id']}: a new client_id answered 200")
                record(body, status, obs_id)
                sent.append(body)
            n += 1


async def run_load(base: str, tokens: list[str], seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    began = time.monotonic()
    deadline = began + seconds
    await asyncio.gather(*(submitter(i, t, base, deadline, tally) for i, t in enumerate(tokens)))
    return tally, time.monotonic() - began


def test_concurrent_submitters_lose_nothing_and_store_nothing_twice(server: tuple[str, Engine]) -> None:
    base, engine = server
    assert base.startswith(f"http://{HOST}:")
    tokens = [create_token(engine, "contributor", PROJECT, f"load submitter {i}").token for i in range(SUBMITTERS)]

    tally, elapsed = asyncio.run(run_load(base, tokens, SECONDS))

    with engine.db.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).select_from(Observation).where(Observation.project == PROJECT)
        ).scalar_one()
        distinct = conn.execute(
            sa.select(sa.func.count(sa.distinct(Observation.client_id))).where(Observation.project == PROJECT)
        ).scalar_one()
    database = engine.db.dialect.name
    print(f"\nload on {database}: {SUBMITTERS} submitters, {elapsed:.1f} s, {tally.requests} requests "
          f"({tally.requests / elapsed:,.0f}/s), {len(tally.created)} observations created "
          f"({len(tally.created) / elapsed:,.0f}/s), {tally.retries} retries, {tally.races} races, "
          f"statuses {dict(sorted(tally.statuses.items()))}, {stored} rows stored, {len(tally.errors)} errors")

    assert not tally.errors, f"{len(tally.errors)} errors, the first: " + "\n".join(tally.errors[:10])
    assert set(tally.statuses) <= {200, 201}
    assert tally.requests > 0 and tally.created
    assert stored == distinct == len(tally.created), (stored, distinct, len(tally.created))
