"""One person, two projects, two roles: every route checks the membership of the project at hand,
and a token narrowed to one project or role never acts beyond it."""

from __future__ import annotations

import pytest

from core.accounts import create_account, grant, revoke
from core.tokens import create_account_token
from core.errors import Forbidden

API = "/api/v1"


@pytest.fixture
def person(engine):
    """Ada: moderator of alpha, contributor of gamma; with an unnarrowed token."""
    ada = create_account(engine, "Ada", email="ada@example.org", memberships={"alpha": "moderator", "gamma": "contributor"})
    return {"id": ada.id, "token": create_account_token(engine, ada.id, name="laptop").token}


def test_the_same_person_moderates_one_project_and_contributes_to_another(person, client, auth, make_observation, make_token):
    other = make_token("contributor", "alpha")
    in_alpha = make_observation("alpha", token=other)
    in_gamma = make_observation("gamma", token=make_token("contributor", "gamma"))  # auto-published
    # moderator of alpha: sees and moderates someone else's pending observation there
    assert client.get(f"{API}/observations/{in_alpha['id']}", headers=auth(person["token"])).status_code == 200
    published = client.post(f"{API}/observations/{in_alpha['id']}/moderation", json={"action": "publish"},
                            headers=auth(person["token"]))
    assert published.status_code == 200, published.text
    # contributor of gamma: reads the published one as the public does, may not moderate it
    seen = client.get(f"{API}/observations/{in_gamma['id']}", headers=auth(person["token"])).json()
    assert seen["contributor_id"] is None
    refused = client.post(f"{API}/observations/{in_gamma['id']}/moderation", json={"action": "unpublish"},
                          headers=auth(person["token"]))
    assert refused.status_code == 403
    # submits to both of its projects, to no other
    for slug, status in (("alpha", 201), ("gamma", 201), ("beta", 403)):
        r = client.post(f"{API}/projects/{slug}/observations", json={
            "observed_at": "2026-05-01T10:00:00+02:00", "location": {"lat": 41.4, "lon": 2.1}}, headers=auth(person["token"]))
        assert r.status_code == status, (slug, r.text)


def test_audit_and_staff_exports_follow_the_membership(person, client, auth):
    assert client.get(f"{API}/projects/alpha/audit", headers=auth(person["token"])).status_code == 200
    assert client.get(f"{API}/projects/gamma/audit", headers=auth(person["token"])).status_code == 403
    assert client.get(f"{API}/projects/alpha/export", params={"scope": "all"}, headers=auth(person["token"])).status_code == 200
    assert client.get(f"{API}/projects/gamma/export", params={"scope": "all"}, headers=auth(person["token"])).status_code == 403


def test_a_token_narrowed_to_one_project_acts_only_there(engine, person, client, auth, make_observation, make_token):
    gamma_only = create_account_token(engine, person["id"], project="gamma").token
    pending = make_observation("alpha", token=make_token("contributor", "alpha"))
    assert client.get(f"{API}/observations/{pending['id']}", headers=auth(gamma_only)).status_code == 404
    assert client.get(f"{API}/projects/alpha/audit", headers=auth(gamma_only)).status_code == 403


def test_a_token_narrowed_to_a_lower_role_cannot_moderate(engine, person, client, auth, make_observation, make_token):
    contributor_only = create_account_token(engine, person["id"], project="alpha", role="contributor").token
    pending = make_observation("alpha", token=make_token("contributor", "alpha"))
    r = client.post(f"{API}/observations/{pending['id']}/moderation", json={"action": "publish"},
                    headers=auth(contributor_only))
    assert r.status_code == 404  # a contributor may not even read another's pending observation


def test_a_token_cannot_claim_more_than_the_account_holds(engine, person):
    with pytest.raises(Forbidden, match="not admin of 'alpha'"):
        create_account_token(engine, person["id"], project="alpha", role="admin")
    with pytest.raises(Forbidden, match="not an operator"):
        create_account_token(engine, person["id"], role="operator")


def test_revoking_a_role_takes_effect_at_once(engine, person, client, auth):
    assert client.get(f"{API}/projects/alpha/audit", headers=auth(person["token"])).status_code == 200
    revoke(engine, person["id"], "alpha")
    assert client.get(f"{API}/projects/alpha/audit", headers=auth(person["token"])).status_code == 403
    grant(engine, person["id"], "alpha", "admin")
    assert client.get(f"{API}/projects/alpha/members", headers=auth(person["token"])).status_code == 200


def test_project_admins_manage_members_and_nothing_beyond(engine, person, client, auth, make_token):
    admin = make_token("admin", "alpha")
    members = client.get(f"{API}/projects/alpha/members", headers=auth(admin)).json()
    assert {"id": person["id"], "display_name": "Ada", "email": "ada@example.org", "role": "moderator"}.items() \
        <= next(m for m in members if m["id"] == person["id"]).items()
    promoted = client.put(f"{API}/projects/alpha/members/{person['id']}", json={"role": "admin"}, headers=auth(admin))
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    # an admin of alpha has no say in gamma, and a moderator none in alpha's members
    assert client.put(f"{API}/projects/gamma/members/{person['id']}", json={"role": "admin"},
                      headers=auth(admin)).status_code == 403
    moderator = make_token("moderator", "alpha")
    assert client.get(f"{API}/projects/alpha/members", headers=auth(moderator)).status_code == 403
    assert client.get(f"{API}/projects/alpha/members").status_code == 401
    assert client.get(f"{API}/accounts", headers=auth(admin)).status_code == 403


def test_me_shows_the_roles_and_tokens_made_through_the_api_are_narrowed(person, client, auth):
    me = client.get(f"{API}/me", headers=auth(person["token"])).json()
    assert me["memberships"] == {"alpha": "moderator", "gamma": "contributor"} and me["email"] == "ada@example.org"
    made = client.post(f"{API}/me/tokens", json={"name": "phone", "project": "gamma", "role": "admin"},
                       headers=auth(person["token"]))
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "contributor", "never above the role held"
    phone = made.json()["token"]
    assert client.get(f"{API}/me", headers=auth(phone)).status_code == 200
    assert client.get(f"{API}/projects/alpha/audit", headers=auth(phone)).status_code == 403
    listed = client.get(f"{API}/me/tokens", headers=auth(person["token"])).json()
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert client.delete(f"{API}/me/tokens/{made.json()['id']}", headers=auth(person["token"])).status_code == 204
    assert client.get(f"{API}/me", headers=auth(phone)).status_code == 401
    refused = client.post(f"{API}/me/tokens", json={"project": "beta"}, headers=auth(person["token"]))
    assert refused.status_code == 403
