"""Bounded work per request: analyses and the OdourCollect list are served from the reports the
event store keeps in memory, at most ``analysis_max_reports`` / ``list_max_reports`` of them
(the newest), and say so when there were more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from core import lifecycle
from core.api.app import create_app
from core.moderation import moderate
from core.tokens import create_token
from tests.support.odour import odour_service

REGISTRY = """
services:
""" + odour_service("bounds") + """projects:
  - slug: smells
    name: Smells
    timezone: UTC
    auto_publish: true
    location_precision: 3
    services:
      odour: {analysis_max_reports: 4, list_max_reports: 3}
"""
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)


@pytest.fixture
def engine(make_engine):
    return make_engine(REGISTRY)


def _submit(engine, n: int) -> list[int]:
    ids = []
    for k in range(n):
        who = create_token(engine, "contributor", "smells", f"p{k}").contributor_id
        draft = {"observed_at": (T0 + timedelta(days=k)).isoformat(), "kind": "odour",
                 "location": {"lat": 41.40 + k / 100, "lon": 2.20},
                 "fields": {"category": 5, "subtype": 53, "intensity": 1 + k % 6, "hedonic_tone": -2}}
        ids.append(lifecycle.submit(engine, "smells", draft, contributor_id=who).observation_id)
    return ids


def test_analyses_work_on_the_newest_reports_up_to_the_setting_and_say_so(engine):
    ids = _submit(engine, 6)
    with TestClient(create_app(engine)) as client:
        body = client.get("/api/v1/projects/smells/odour/analyses/categories").json()
        assert body["n_reports"] == 4 and body["n_reports_total"] == 6 and body["truncated"] is True
        assert "newest 4 of the 6" in body["message"]
        assert sum(r["n_reports"] for r in body["rows"]) == 4
        # within the cap: whole, and no message
        body = client.get("/api/v1/projects/smells/odour/analyses/hour_weekday",
                          params={"since": (T0 + timedelta(days=3)).date().isoformat()}).json()
        assert body["n_reports"] == 3 and body["truncated"] is False and "message" not in body
        # the cache follows moderation at once
        moderate(engine, ids[-1], "unpublish", actor="test")
        body = client.get("/api/v1/projects/smells/odour/analyses/categories").json()
        assert body["n_reports_total"] == 5


def test_the_odourcollect_list_holds_the_newest_rows_up_to_the_setting_and_says_so(engine):
    ids = _submit(engine, 6)
    with TestClient(create_app(engine)) as client:
        body = client.get("/api/odor/list").json()
        assert [r["id"] for r in body["content"]] == ids[-3:]
        assert body["truncated"] is True and "newest 3" in body["data"]["message"]
        # the filters are applied before the cap: the newest 3 that pass
        body = client.get("/api/odor/list", params={"maxIntensity": 3}).json()
        assert [r["id"] for r in body["content"]] == [ids[0], ids[1], ids[2]]
        assert body["truncated"] is False and body["data"]["message"] == "Successful request."
        body = client.get("/api/odor/list", params={"date_end": (T0 + timedelta(days=1)).date().isoformat()}).json()
        assert [r["id"] for r in body["content"]] == ids[:2] and body["truncated"] is False
