"""Who may do what: every route × every role, cross-project access included."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import draft

API = "/api/v1"
ROLES = ("anonymous", "operator", "admin_a", "mod_a", "mod_b", "owner_a", "other_a", "contrib_b")

# route -> expected status per role (the owner is the contributor who submitted the observation).
# Anonymous callers may never edit or moderate: 401 before any look-up, the same for every id.
# An observation the caller may not read answers 404, as an id that does not exist (no oracle for
# what exists); 401/403 only where the caller may read it but not do the thing asked.
MATRIX: dict[str, dict[str, int]] = {
    "GET /projects": dict.fromkeys(ROLES, 200),
    "GET /plugins": dict.fromkeys(ROLES, 200),
    "GET /projects/alpha": dict.fromkeys(ROLES, 200),
    "GET /projects/beta": {"anonymous": 401, "operator": 200, "admin_a": 403, "mod_a": 403, "mod_b": 200,
                           "owner_a": 403, "other_a": 403, "contrib_b": 200},
    "GET /projects/alpha/observations": dict.fromkeys(ROLES, 200),
    "GET /projects/beta/observations": {"anonymous": 401, "operator": 200, "admin_a": 403, "mod_a": 403,
                                        "mod_b": 200, "owner_a": 403, "other_a": 403, "contrib_b": 200},
    "POST /projects/alpha/observations": {"anonymous": 401, "operator": 201, "admin_a": 201, "mod_a": 201,
                                          "mod_b": 403, "owner_a": 201, "other_a": 201, "contrib_b": 403},
    "POST /projects/beta/observations": {"anonymous": 401, "operator": 201, "admin_a": 403, "mod_a": 403,
                                         "mod_b": 201, "owner_a": 403, "other_a": 403, "contrib_b": 201},
    "GET /observations/{a_pending}": {"anonymous": 404, "operator": 200, "admin_a": 200, "mod_a": 200,
                                      "mod_b": 404, "owner_a": 200, "other_a": 404, "contrib_b": 404},
    "GET /observations/{a_published}": dict.fromkeys(ROLES, 200),
    "GET /observations/{b_published}": {"anonymous": 404, "operator": 200, "admin_a": 404, "mod_a": 404,
                                        "mod_b": 200, "owner_a": 404, "other_a": 404, "contrib_b": 200},
    "GET /observations/{a_pending}/media/{a_media}": {"anonymous": 404, "operator": 200, "admin_a": 200,
                                                      "mod_a": 200, "mod_b": 404, "owner_a": 200, "other_a": 404,
                                                      "contrib_b": 404},
    "GET /observations/{a_published}/media/{a_pub_media}": dict.fromkeys(ROLES, 200),
    "PATCH /observations/{a_pending}": {"anonymous": 401, "operator": 200, "admin_a": 200, "mod_a": 200,
                                        "mod_b": 404, "owner_a": 200, "other_a": 404, "contrib_b": 404},
    "PATCH /observations/{a_published}": {"anonymous": 401, "operator": 200, "admin_a": 200, "mod_a": 200,
                                          "mod_b": 403, "owner_a": 200, "other_a": 403, "contrib_b": 403},
    "PATCH /observations/{b_pending}": {"anonymous": 401, "operator": 200, "admin_a": 404, "mod_a": 404,
                                        "mod_b": 200, "owner_a": 404, "other_a": 404, "contrib_b": 200},
    "POST /observations/{a_pending}/moderation": {"anonymous": 401, "operator": 200, "admin_a": 200, "mod_a": 200,
                                                  "mod_b": 404, "owner_a": 403, "other_a": 404, "contrib_b": 404},
    # published already, so staff get 409 for "publish"; who may read it but not moderate gets 401/403
    "POST /observations/{a_published}/moderation": {"anonymous": 401, "operator": 409, "admin_a": 409,
                                                    "mod_a": 409, "mod_b": 403, "owner_a": 403, "other_a": 403,
                                                    "contrib_b": 403},
    "POST /observations/{b_pending}/moderation": {"anonymous": 401, "operator": 200, "admin_a": 404, "mod_a": 404,
                                                  "mod_b": 200, "owner_a": 404, "other_a": 404, "contrib_b": 403},
    "GET /projects/alpha/audit": {"anonymous": 401, "operator": 200, "admin_a": 200, "mod_a": 200, "mod_b": 403,
                                  "owner_a": 403, "other_a": 403, "contrib_b": 403},
    "GET /projects/beta/audit": {"anonymous": 401, "operator": 200, "admin_a": 403, "mod_a": 403, "mod_b": 200,
                                 "owner_a": 403, "other_a": 403, "contrib_b": 403},
}


@pytest.fixture
def world(make_token, make_observation, small_png) -> dict[str, Any]:
    tokens = {
        "anonymous": None,
        "operator": make_token("operator"),
        "admin_a": make_token("admin", "alpha"),
        "mod_a": make_token("moderator", "alpha"),
        "mod_b": make_token("moderator", "beta"),
        "owner_a": make_token("contributor", "alpha"),
        "other_a": make_token("contributor", "alpha"),
        "contrib_b": make_token("contributor", "beta"),
    }
    photo = [("p.png", small_png, "image/png")]
    a_pending = make_observation("alpha", token=tokens["owner_a"], files=photo)
    a_published = make_observation("alpha", token=tokens["owner_a"], status="published", files=photo,
                                   fields={"n": 2})
    b_pending = make_observation("beta", token=tokens["contrib_b"])
    b_published = make_observation("beta", token=tokens["contrib_b"], status="published", fields={"n": 3})
    ids = {"a_pending": a_pending["id"], "a_published": a_published["id"], "b_pending": b_pending["id"],
           "b_published": b_published["id"], "a_media": a_pending["media"][0]["id"],
           "a_pub_media": a_published["media"][0]["id"]}
    return {"tokens": tokens, "ids": ids}


def _body(method: str, path: str) -> dict[str, Any] | None:
    if method == "POST" and path.endswith("/observations"):
        return draft()
    if method == "POST" and path.endswith("/moderation"):
        return {"action": "publish"}
    if method == "PATCH":
        return {"fields": {"note": "edited"}}
    return None


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_access_matrix(route, world, client, auth):
    method, template = route.split(" ", 1)
    path = API + template.format(**world["ids"])
    failures = []
    for role, expected in MATRIX[route].items():
        # mutations use a fresh world state per role: undo moderation between roles
        response = client.request(method, path, json=_body(method, template), headers=auth(world["tokens"][role]))
        if response.status_code != expected:
            failures.append(f"{role}: expected {expected}, got {response.status_code} {response.text[:200]}")
        if method == "POST" and template.endswith("/moderation") and response.status_code == 200:
            client.post(path, json={"action": "unpublish"}, headers=auth(world["tokens"]["operator"]))
            client.post(path, json={"action": "trash"}, headers=auth(world["tokens"]["operator"]))
            client.post(path, json={"action": "restore"}, headers=auth(world["tokens"]["operator"]))
        if response.status_code >= 400:
            assert response.json()["error"]["code"], response.text
        if response.status_code == 404:  # word for word what an id that does not exist answers
            obs_id = path.split("/observations/")[1].split("/")[0]
            gone = client.request(method, path.replace(f"/observations/{obs_id}", "/observations/999999"),
                                  json=_body(method, template), headers=auth(world["tokens"][role]))
            assert gone.status_code == 404
            assert response.json() == {"error": {**gone.json()["error"],
                                                 "message": gone.json()["error"]["message"].replace("999999", obs_id)}}
    assert not failures, "\n".join(failures)


def test_lists_show_each_role_only_what_it_may_see(world, client, auth):
    ids, tokens = world["ids"], world["tokens"]

    def listed(role: str) -> set[int]:
        response = client.get(f"{API}/projects/alpha/observations", headers=auth(tokens[role]))
        assert response.status_code == 200
        return {o["id"] for o in response.json()["items"]}

    assert listed("anonymous") == {ids["a_published"]}
    assert listed("other_a") == {ids["a_published"]}
    assert listed("owner_a") == {ids["a_published"], ids["a_pending"]}
    assert listed("mod_a") == {ids["a_published"], ids["a_pending"]}
    assert listed("mod_b") == {ids["a_published"]}


def test_the_public_sees_no_personal_data(make_token, make_observation, client, auth):
    owner = make_token("contributor", "gamma")
    obs = make_observation("gamma", token=owner, client_id="secret-device-id",
                           location={"lat": 41.387654, "lon": 2.170123, "accuracy_m": 5})
    assert obs["contributor_id"] is not None and obs["location"]["lat"] == 41.387654, "the owner sees everything"
    public = client.get(f"{API}/observations/{obs['id']}").json()
    assert public["status"] == "published"
    assert public["contributor_id"] is None and public["client_id"] is None
    assert public["location"]["lat"] == 41.39 and public["location"]["lon"] == 2.17
    assert public["location"]["accuracy_m"] >= 1000
    listed = client.get(f"{API}/projects/gamma/observations").json()["items"]
    assert listed and all(o["contributor_id"] is None and o["location"]["lat"] == 41.39 for o in listed)
    assert client.get(f"{API}/projects/gamma/observations", params={"contributor": obs["contributor_id"]}).status_code == 401


def test_the_public_sees_no_media_file_names(make_token, make_observation, client, auth, small_png):
    owner = make_token("contributor", "gamma")
    obs = make_observation("gamma", token=owner, files=[("maria-home-garden.png", small_png, "image/png")])
    assert obs["media"][0]["filename"] == "maria-home-garden.png", "the owner sees the name it sent"
    for token in (None, make_token("contributor", "gamma")):
        one = client.get(f"{API}/observations/{obs['id']}", headers=auth(token)).json()
        listed = client.get(f"{API}/projects/gamma/observations", headers=auth(token)).json()["items"]
        for shown in (one, *listed):
            assert shown["media"] and all(m["filename"] is None and m["url"] for m in shown["media"])
        assert "maria" not in client.get(f"{API}/projects/gamma/export", params={"format": "geojson"},
                                         headers=auth(token)).text
    staff = client.get(f"{API}/observations/{obs['id']}", headers=auth(make_token("moderator", "gamma"))).json()
    assert staff["media"][0]["filename"] == "maria-home-garden.png"


@pytest.mark.parametrize("header", ["Bearer obs_wrong", "Bearer ", "Basic dXNlcjpwYXNz", "token"])
def test_a_wrong_token_is_401(header, client, world):
    response = client.get(f"{API}/projects", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_token_is_401(engine, client, auth):
    from core.tokens import create_token, revoke_token

    new = create_token(engine, "operator")
    assert client.get(f"{API}/projects/beta", headers=auth(new.token)).status_code == 200
    revoke_token(engine, new.id)
    assert client.get(f"{API}/projects/beta", headers=auth(new.token)).status_code == 401


class _ClockAhead:
    """The ``time`` module as ``core.tokens`` sees it, with ``monotonic`` moved on by ``ahead`` seconds."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_a_token_revoked_by_another_process_stops_working_within_the_cache_time(engine, app, client, auth,
                                                                                monkeypatch):
    from sqlalchemy import update

    from core import tokens
    from core.db.models import ApiToken, utcnow
    from core.db.session import transaction

    clock = _ClockAhead()
    monkeypatch.setattr(tokens, "time", clock)  # the cache's time passes when the test says, not by sleeping
    ttl_s = app.state.principals.ttl_s = 30.0
    new = tokens.create_token(engine, "operator")
    assert client.get(f"{API}/projects/beta", headers=auth(new.token)).status_code == 200
    with transaction(engine.sessions) as session:  # as `observatory tokens revoke` does from its own process
        session.execute(update(ApiToken).where(ApiToken.id == new.id).values(revoked_at=utcnow()))
    clock.ahead = ttl_s - 1.0
    assert client.get(f"{API}/projects/beta", headers=auth(new.token)).status_code == 200, "trusted for ttl_s"
    clock.ahead = ttl_s + 0.1
    assert client.get(f"{API}/projects/beta", headers=auth(new.token)).status_code == 401, "not after ttl_s"


def test_tokens_are_stored_only_as_hashes(engine, make_token):
    from sqlalchemy import select

    from core.db.models import ApiToken
    from core.db.session import transaction

    token = make_token("operator")
    with transaction(engine.sessions) as session:
        stored = session.scalars(select(ApiToken)).all()
    assert stored and all(token not in (t.token_hash, t.prefix) for t in stored)
    assert all(len(t.token_hash) == 64 for t in stored)


def test_moderation_and_edits_are_audited_with_before_and_after(world, client, auth):
    ids, tokens = world["ids"], world["tokens"]
    client.patch(f"{API}/observations/{ids['a_pending']}", json={"fields": {"note": "an otter"}},
                 headers=auth(tokens["owner_a"]))
    client.post(f"{API}/observations/{ids['a_pending']}/moderation", json={"action": "trash", "reason": "spam"},
                headers=auth(tokens["mod_a"]))
    entries = client.get(f"{API}/projects/alpha/audit", params={"observation_id": ids["a_pending"]},
                         headers=auth(tokens["admin_a"])).json()["items"]
    trash, edit = entries[0], entries[1]
    assert trash["action"] == "trash" and trash["before"]["status"] == "pending" and trash["after"]["status"] == "trashed"
    assert trash["after"]["reason"] == "spam" and "moderator" in trash["actor"]
    assert edit["action"] == "edit" and edit["after"]["fields"]["note"] == "an otter"
    assert edit["before"]["fields"]["note"] == "a fox crossing the path"


def test_an_invalid_transition_is_409(world, client, auth):
    response = client.post(f"{API}/observations/{world['ids']['a_published']}/moderation",
                           json={"action": "publish"}, headers=auth(world["tokens"]["mod_a"]))
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_transition"


def test_the_rate_limit_answers_429_with_retry_after(app, client, make_token, auth):
    from core.api.ratelimit import RateLimiter

    app.state.rate_limiter = RateLimiter(5)
    token = make_token("operator")
    codes = [client.get(f"{API}/projects", headers=auth(token)).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    response = client.get(f"{API}/projects", headers=auth(token))
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["error"]["code"] == "rate_limited"
