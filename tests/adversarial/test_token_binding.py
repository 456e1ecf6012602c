"""Tokens are bound as documented: a contributor token acts in the one project it was made for."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from core.db.models import ApiToken, Membership
from core.errors import EngineError
from core.tokens import create_token
from tests.conftest import draft

API = "/api/v1"


def test_a_contributor_token_needs_a_project(engine):
    with pytest.raises(EngineError, match="a contributor token is for one project"):
        create_token(engine, "contributor", None, "unbound")


def test_a_contributor_token_submits_only_to_its_project(client, make_token, auth):
    token = make_token("contributor", "alpha")
    assert client.post(f"{API}/projects/alpha/observations", json=draft(), headers=auth(token)).status_code == 201
    other = client.post(f"{API}/projects/gamma/observations", json=draft(), headers=auth(token))
    assert other.status_code == 403, other.text
    assert other.json()["error"]["code"] == "forbidden"


def test_an_unbound_token_from_before_submits_nowhere(engine, client, make_token, auth):
    """Tokens made before contributor tokens were bound have no project: migration 0004 gives
    their accounts no membership, so they submit nowhere."""
    new = create_token(engine, "contributor", "alpha", "old phone")
    with engine.db.begin() as conn:
        conn.execute(update(ApiToken).where(ApiToken.id == new.id).values(project=None))
        conn.execute(delete(Membership).where(Membership.account_id == new.account_id))
    for slug in ("alpha", "gamma"):
        response = client.post(f"{API}/projects/{slug}/observations", json=draft(), headers=auth(new.token))
        assert response.status_code == 403, response.text
