"""Fixtures for the HTTP API tests: the engine on ``API_REGISTRY``, and observations made through
the API. The app, the in-process ``client``, ``make_token`` and ``auth`` are the test kit's
(``core.testing``), on this engine.

    def test_something(client, make_token, auth, make_observation):
        token = make_token("contributor", "alpha")
        obs = make_observation("alpha", token=token, status="published")
        assert client.get(f"/api/v1/observations/{obs['id']}", headers=auth(token)).status_code == 200

The database is the one of ``tests/conftest.py`` (SQLite, or PostgreSQL with
OBSERVATORY_TEST_DATABASE_URL), emptied for each test. Projects (``API_REGISTRY``):

- ``alpha``: public, Europe/Madrid, enriched by ``recorder`` and ``flaky`` (fails once, then works)
- ``beta``: not public, no services
- ``gamma``: public, auto-published, coordinates shown to the public to 2 decimal places

The app keeps the engine's rate limit (600 requests a minute per caller); a test that makes
many requests can lift it with ``app.state.rate_limiter = RateLimiter(0)``.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from core.engine import Engine
from core.moderation import TRANSITIONS, moderate
# The kit's (core.testing) fixtures and helpers, named here for the modules that import them from here.
from core.testing import API, app, auth, bearer, client, make_token  # noqa: F401
from tests.conftest import BASE_REGISTRY, draft

API_REGISTRY = BASE_REGISTRY + """
  - slug: gamma
    name: Gamma
    auto_publish: true
    location_precision: 2
    services: {recorder: {}}
"""


def moderation_path(old: str, new: str) -> list[str]:
    """The shortest list of moderation actions that leads from status ``old`` to ``new``."""
    paths: dict[str, list[str]] = {old: []}
    frontier = [old]
    while frontier:
        status = frontier.pop(0)
        for action, (starts, leads_to) in TRANSITIONS.items():
            if status in starts and leads_to not in paths:
                paths[leads_to] = paths[status] + [action]
                frontier.append(leads_to)
    if new not in paths:
        raise ValueError(f"no moderation leads from {old!r} to {new!r}")
    return paths[new]


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    """An engine on ``API_REGISTRY``, with enrichments run inline, on emptied tables."""
    return make_engine(API_REGISTRY)


@pytest.fixture
def api_engine(engine: Engine) -> Engine:
    """The same engine as ``engine`` (the name some tests use)."""
    return engine


@pytest.fixture
def operator_token(make_token: Callable[..., str]) -> str:
    return make_token("operator")


@pytest.fixture
def make_observation(
    engine: Engine, client: TestClient, operator_token: str
) -> Callable[..., dict[str, Any]]:
    """``make_observation(project="alpha", *, token=None, status=None, files=None, **draft_parts) -> dict``.

    Submits through the API (as ``token``'s contributor, an operator's by default), then
    moderates to ``status`` if given; returns the observation as its submitter sees it.
    ``files`` are (filename, bytes, content type) triples, sent as multipart.
    """

    def make(
        project: str = "alpha",
        *,
        token: str | None = None,
        status: str | None = None,
        files: list[tuple[str, bytes, str]] | None = None,
        **parts: Any,
    ) -> dict[str, Any]:
        import json

        token = token or operator_token
        body = draft(**parts)
        url = f"{API}/projects/{project}/observations"
        if files:
            response = client.post(url, data={"draft": json.dumps(body)}, headers=bearer(token),
                                   files=[("media", f) for f in files])
        else:
            response = client.post(url, json=body, headers=bearer(token))
        assert response.status_code in (200, 201), response.text
        obs = response.json()
        if status is not None and status != obs["status"]:
            for action in moderation_path(obs["status"], status):
                moderate(engine, obs["id"], action, actor="test")
            obs = client.get(f"{API}/observations/{obs['id']}", headers=bearer(token)).json()
        return obs

    return make


@pytest.fixture(scope="session")
def small_png() -> bytes:
    """A real 64×48 PNG."""
    import cv2
    import numpy as np

    pixels = (np.arange(64 * 48 * 3, dtype=np.uint32).reshape(48, 64, 3) % 251).astype(np.uint8)
    ok, buf = cv2.imencode(".png", pixels)
    assert ok
    return buf.tobytes()


@pytest.fixture(autouse=True)
def _node_id_shim(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read ``node._nodeid``, which pytest 9.2 no longer has
    (it keeps ``node._id``); give it the string it expects. A no-op on versions that have it."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
