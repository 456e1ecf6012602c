"""Data-use counting (core.data_use) on a real database: purposes checked per project, one count
per observation, per contributor and per download, never who downloaded; a 100,000-row export
counted quickly."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from core.data_use import (check_purpose, contributor_summary, observation_summary, project_totals, record_download,
                           summary_sentence)
from core.db.models import Observation
from core.db.models_codesign import ContributorUse, DataDownload, ObservationUse
from core.db.session import transaction
from core.errors import ValidationFailed
from core.testing import draft, submit
from core.tokens import create_token

REGISTRY = """
services: {}
projects:
  - slug: alpha
    name: Alpha
    auto_publish: true
  - slug: strict
    name: Strict
    download_purpose: required
  - slug: quiet
    name: Quiet
    download_purpose: "off"
"""


@pytest.fixture
def registry() -> str:
    return REGISTRY


def contribute(client, project: str, n: int) -> tuple[int, list[int]]:  # noqa: ANN001
    """``n`` observations by one new contributor: their account id and the observations' ids."""
    token = create_token(client.app.state.engine, "contributor", project)
    ids = [submit(client, project, draft(), token=token.token)["id"] for _ in range(n)]
    return token.account_id, ids


def test_downloads_are_counted_per_observation_contributor_and_purpose(client, engine):
    ana, ana_obs = contribute(client, "alpha", 3)
    ben, ben_obs = contribute(client, "alpha", 1)
    for _ in range(9):
        record_download(engine, "alpha", ana_obs[:2], "research", channel="open_data")
    for _ in range(3):
        record_download(engine, "alpha", ana_obs + ben_obs, "education", "a school class on foxes")
    record_download(engine, "alpha", ben_obs, None)

    mine = contributor_summary(engine, ana)
    assert mine["downloads"] == 12 and mine["purposes"] == {"research": 9, "education": 3}
    assert mine["text"] == "your observations were used in 12 downloads this month: 9 research, 3 education"
    assert contributor_summary(engine, ben)["purposes"] == {"education": 3, "unstated": 1}
    assert observation_summary(engine, ana_obs[0]) == {"observation_id": ana_obs[0], "downloads": 12,
                                                       "purposes": {"research": 9, "education": 3}}
    assert observation_summary(engine, ana_obs[2])["downloads"] == 3

    month = datetime.now(timezone.utc).strftime("%Y-%m")
    assert project_totals(engine, "alpha") == [{"month": month, "downloads": 13, "observations": 9 * 2 + 3 * 4 + 1,
                                                "purposes": {"education": 3, "research": 9, "unstated": 1}}]
    # nothing stored names or points to a downloader: the tables' columns say so
    for model in (DataDownload, ObservationUse, ContributorUse):
        columns = set(model.__table__.columns.keys())
        assert not columns & {"account_id_of_downloader", "downloader", "address", "token_id", "user_agent"}
    assert set(DataDownload.__table__.columns.keys()) == {"id", "project", "channel", "purpose", "text", "rows", "at"}


def test_purpose_rules_per_project(engine):
    with pytest.raises(ValidationFailed) as refused:
        check_purpose(engine, "strict", None)
    assert refused.value.problems[0].code == "purpose_required"
    with pytest.raises(ValidationFailed) as refused:
        record_download(engine, "alpha", [1], "curiosity")
    assert refused.value.problems[0].code == "unknown_purpose" and "research" in refused.value.problems[0].message
    with pytest.raises(ValidationFailed) as refused:
        check_purpose(engine, "alpha", "other", "x" * 501)
    assert refused.value.problems[0].code == "purpose_text_too_long"
    assert check_purpose(engine, "quiet", None).purpose == "unstated"
    assert check_purpose(engine, "strict", "policy", " a council report ").text == "a council report"
    with transaction(engine.readers) as session:  # a refused download stored nothing
        assert session.scalar(sa.select(sa.func.count()).select_from(DataDownload)) == 0
    assert summary_sentence(0, {}) == "your observations were not downloaded this month"
    assert summary_sentence(1, {"policy": 1}) == "your observations were used in 1 download this month: 1 policy"


def test_a_100000_row_download_is_counted_quickly(engine):
    account = create_token(engine, "contributor", "alpha").account_id
    now = datetime.now(timezone.utc)
    rows = [{"project": "alpha", "content_hash": "x", "contributor_id": account if i % 10 == 0 else None,
             "observed_at": now, "lat": 41.0, "lon": 2.0, "fields": {}, "status": "published",
             "location_privacy": "open", "comments_locked": False, "created_at": now, "updated_at": now}
            for i in range(100_000)]
    with engine.db.begin() as conn:  # Core executemany: the quickest way to plant 100,000 rows
        conn.execute(Observation.__table__.insert(), rows)
        ids = list(conn.scalars(sa.select(Observation.id).where(Observation.project == "alpha")))
    started = time.perf_counter()
    record_download(engine, "alpha", ids, "research")
    first = time.perf_counter() - started
    started = time.perf_counter()
    record_download(engine, "alpha", ids, "research")  # the same day and purpose: counts go up in place
    second = time.perf_counter() - started
    print(f"100,000-row download counted in {first:.2f} s, again (upsert) in {second:.2f} s")
    assert first < 10 and second < 10
    with transaction(engine.readers) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ObservationUse)) == 100_000
        assert session.scalar(sa.select(sa.func.sum(ObservationUse.count))) == 200_000
    assert contributor_summary(engine, account)["downloads"] == 2
