"""Migration 0004 turns each token's contributor into an account with the role its token had:
every token made before keeps working, with the same rights."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Iterator

import pytest
import sqlalchemy as sa

from core.db.migrate import upgrade
from tests.api.conftest import API_REGISTRY
from tests.conftest import PG_ENV


@pytest.fixture
def fresh_url(tmp_path) -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"obs_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_tokens_from_before_keep_their_rights(fresh_url, settings_factory):
    upgrade(fresh_url, "0003")
    db = _engine(fresh_url)
    tokens = {"op": ("operator", None), "adm": ("admin", "alpha"), "mod": ("moderator", "alpha"),
              "con": ("contributor", "gamma"), "old": ("contributor", None)}
    with db.begin() as conn:
        for i, (name, (role, project)) in enumerate(tokens.items(), start=1):
            conn.execute(sa.text("INSERT INTO contributors (id, name, created_at) VALUES (:i, :n, CURRENT_TIMESTAMP)"),
                         {"i": i, "n": f"{name} token"})
            conn.execute(sa.text(
                "INSERT INTO api_tokens (token_hash, prefix, name, role, project, contributor_id, created_at) "
                "VALUES (:h, 'obs_x', :n, :r, :p, :i, CURRENT_TIMESTAMP)"),
                {"h": hashlib.sha256(f"obs_{name}".encode()).hexdigest(), "n": name, "r": role, "p": project, "i": i})
        conn.execute(sa.text(
            "INSERT INTO observations (project, content_hash, contributor_id, observed_at, lat, lon, fields, status, "
            "created_at, updated_at) VALUES ('gamma', 'h', 4, CURRENT_TIMESTAMP, 41.4, 2.1, '{}', 'pending', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    db.dispose()
    upgrade(fresh_url)
    from core.engine import Engine
    from core.worker import InlineDispatcher

    engine = Engine.start(settings_factory(API_REGISTRY, database_url=fresh_url), dispatcher=InlineDispatcher())
    try:
        _check(engine, tokens)
    finally:
        engine.close()


def _check(engine, tokens) -> None:
    from core.api.access import can_read
    from core.tokens import authenticate

    principals = {name: authenticate(engine, f"obs_{name}") for name in tokens}
    assert principals["op"].operator and principals["op"].is_staff_of("beta")
    assert principals["adm"].is_admin_of("alpha") and not principals["adm"].is_staff_of("gamma")
    assert principals["mod"].is_staff_of("alpha") and not principals["mod"].is_admin_of("alpha")
    assert principals["con"].may_submit_to("gamma") and not principals["con"].may_submit_to("alpha")
    assert not principals["old"].may_submit_to("alpha") and not principals["old"].may_submit_to("gamma")
    # the contributor's observation is still theirs: same id, now an account
    from core.db.models import Observation
    from core.db.session import transaction
    with transaction(engine.readers) as session:
        obs = session.scalars(sa.select(Observation)).one()
    assert obs.contributor_id == principals["con"].account_id == 4
    assert can_read(principals["con"], obs, engine.registry.project("gamma"))
    assert obs.location_privacy == "open" and obs.licence is None
