"""The console's comments page: the feed for staff, hide/unhide (the public API follows), lock an
observation's comments, the project's comments switch (admins; registry.yaml's off wins, and the
API refuses comments once switched off), and who may do what."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response

from core import accounts, comments
from core.db.models import AuditEntry
from core.db.session import transaction
from core.engine import Engine
from core.moderation import moderate
from core.errors import Conflict
from core.project_switches import comments_on
from core.testing import draft, submit
from core.tokens import Principal, authenticate, create_account_token
from core.web.session import SESSION_COOKIE, start_session


def member(engine: Engine, name: str, email: str, project: str | None = None, role: str = "admin",
           operator: bool = False) -> int:
    """An account (no password: these tests sign it in with a session token directly)."""
    info = accounts.create_account(engine, name, email=email, operator=operator)
    if project is not None:
        accounts.grant(engine, info.id, project, role)
    return info.id


def session_cookie(app: FastAPI, account_id: int) -> str:
    """A signed session cookie of a new sign-in token of the account, as the sign-in page sets it."""
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    token = create_account_token(app.state.engine, account_id, kind="session", expires_at=expires)
    request = Request({"type": "http", "app": app, "method": "POST", "scheme": "http", "path": "/",
                       "server": ("127.0.0.1", 80), "headers": [], "query_string": b""})
    response = Response()
    # core.web.session reads token_id, which NewToken calls id (reported to the lead)
    start_session(request, response, token, expires)
    return re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"]).group(1)  # type: ignore[union-attr]


def signed_client(app: FastAPI, account_id: int) -> TestClient:
    """A client signed in to the pages as the account."""
    client = TestClient(app, raise_server_exceptions=False)
    client.cookies.set(SESSION_COOKIE, session_cookie(app, account_id))
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def principal_of(engine: Engine, account_id: int) -> Principal:
    token = create_account_token(engine, account_id)
    found = authenticate(engine, token.token)
    assert found is not None
    return found


@pytest.fixture
def world(engine: Engine) -> dict[str, Any]:
    """alpha's admin and moderator, beta's admin, a contributor of alpha with two published
    observations and a comment on each."""
    admin = member(engine, "Ada Admin", "ada@example.org", "alpha", "admin")
    moderator = member(engine, "Mo Moderator", "mo@example.org", "alpha", "moderator")
    other = member(engine, "Bea Beta", "bea@example.org", "beta", "admin")
    writer = member(engine, "Carla Contributor", "carla@example.org", "alpha", "contributor")
    obs = [submit(engine, "alpha", draft(fields={"note": f"obs {i}"}))["id"] for i in range(2)]
    for obs_id in obs:
        moderate(engine, obs_id, "publish", "test")
    carla = principal_of(engine, writer)
    said = [comments.post(engine, carla, obs_id, f"Lovely fox number {i}") for i, obs_id in enumerate(obs)]
    return {"admin": admin, "moderator": moderator, "other": other, "writer": writer, "obs": obs,
            "comments": [c["id"] for c in said], "carla": carla}


def test_staff_see_the_feed_and_hiding_a_comment_hides_it_from_the_public(app: FastAPI, world: dict[str, Any],
                                                                          client: TestClient) -> None:
    with signed_client(app, world["moderator"]) as console:
        page = console.get("/console/projects/alpha/comments")
        assert page.status_code == 200
        assert "Lovely fox number 0" in page.text and "Carla Contributor" in page.text
        assert f'href="/console/observations/{world["obs"][0]}"' in page.text
        first = world["comments"][0]
        done = console.post(f"/console/projects/alpha/comments/{first}/visibility",
                            data={"csrf": csrf_of(page.text), "hidden": "1", "state": "all"}, follow_redirects=False)
        assert done.status_code == 303 and "done=hidden" in done.headers["location"]
        shown = client.get(f"/api/v1/observations/{world['obs'][0]}/comments").json()
        assert shown["items"] == []  # the public no longer sees it
        hidden_only = console.get("/console/projects/alpha/comments?state=hidden")
        assert "Lovely fox number 0" in hidden_only.text and "Lovely fox number 1" not in hidden_only.text
        console.post(f"/console/projects/alpha/comments/{first}/visibility",
                     data={"csrf": csrf_of(page.text), "hidden": "0"})
        assert [c["body"] for c in client.get(f"/api/v1/observations/{world['obs'][0]}/comments").json()["items"]] \
            == ["Lovely fox number 0"]
    with transaction(app.state.engine.readers) as session:
        actions = [a for (a,) in session.query(AuditEntry.action).filter(AuditEntry.project == "alpha")]
    assert "hide_comment" in actions and "unhide_comment" in actions


def test_locking_an_observations_comments_stops_new_ones(app: FastAPI, world: dict[str, Any]) -> None:
    engine = app.state.engine
    with signed_client(app, world["moderator"]) as console:
        page = console.get("/console/projects/alpha/comments")
        obs_id = world["obs"][1]
        console.post(f"/console/projects/alpha/comments/lock/{obs_id}", data={"csrf": csrf_of(page.text), "locked": "1"})
        assert "Unlock comments" in console.get("/console/projects/alpha/comments").text
    with pytest.raises(Exception, match="locked"):
        comments.post(engine, world["carla"], obs_id, "one more")
    comments.post(engine, world["carla"], world["obs"][0], "the other one is still open")


def test_the_comments_switch_is_for_admins_and_the_api_follows_it(app: FastAPI, world: dict[str, Any]) -> None:
    engine = app.state.engine
    alpha = engine.registry.project("alpha")
    with signed_client(app, world["moderator"]) as console:
        page = console.get("/console/projects/alpha/comments")
        assert "Switch comments off" not in page.text
        refused = console.post("/console/projects/alpha/comments/switch", data={"csrf": csrf_of(page.text), "on": "0"})
        assert refused.status_code == 403
    assert comments_on(engine, alpha)
    with signed_client(app, world["admin"]) as console:
        page = console.get("/console/projects/alpha/comments")
        done = console.post("/console/projects/alpha/comments/switch", data={"csrf": csrf_of(page.text), "on": "0"})
        assert done.status_code == 200 and "Comments are off for the project." in done.text
        assert "Switch comments on" in done.text
    assert not comments_on(engine, alpha)
    with transaction(engine.readers) as session:
        assert session.query(AuditEntry).filter(AuditEntry.action == "switch_off").count() == 1
    # the API follows the switch: a contributor's new comment is refused, and the list says so
    with pytest.raises(Conflict) as refused_comment:
        comments.post(engine, world["carla"], world["obs"][0], "one more")
    assert refused_comment.value.code == "comments_off"
    listed = comments.of_observation(engine, world["carla"], world["obs"][0])
    assert listed["comments_on"] is False and listed["open"] is False and len(listed["items"]) == 1


def test_registry_off_wins_and_cannot_be_switched_on(make_engine: Any, registry: str) -> None:
    engine = make_engine(registry.replace("    services: {recorder: {}, flaky: {failures: 1}}",
                                          "    comments: false\n    services: {recorder: {}, flaky: {failures: 1}}"))
    from core.api.app import create_app

    app = create_app(engine)
    admin = member(engine, "Ada Admin", "ada@example.org", "alpha", "admin")
    with signed_client(app, admin) as console:
        page = console.get("/console/projects/alpha/comments")
        assert "comments: false" in page.text and "Switch comments on" not in page.text
        refused = console.post("/console/projects/alpha/comments/switch", data={"csrf": csrf_of(page.text), "on": "1"})
        assert refused.status_code == 409 and "registry.yaml" in refused.text
    assert not comments_on(engine, engine.registry.project("alpha"))


def test_who_may_open_the_comments_page(app: FastAPI, world: dict[str, Any]) -> None:
    with TestClient(app) as visitor:
        answer = visitor.get("/console/projects/alpha/comments", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")
    with signed_client(app, world["writer"]) as contributor:
        assert contributor.get("/console/projects/alpha/comments").status_code == 403
    with signed_client(app, world["other"]) as beta_admin:
        assert beta_admin.get("/console/projects/alpha/comments").status_code == 403
        page = beta_admin.get("/console/projects/beta/comments")
        assert page.status_code == 200
        # alpha's comment is not beta's to hide, even by its id
        refused = beta_admin.post(f"/console/projects/beta/comments/{world['comments'][0]}/visibility",
                                  data={"csrf": csrf_of(page.text), "hidden": "1"})
        assert refused.status_code == 404
    with signed_client(app, world["admin"]) as console:
        no_csrf = console.post(f"/console/projects/alpha/comments/{world['comments'][0]}/visibility",
                               data={"hidden": "1"})
        assert no_csrf.status_code == 403
    assert [c["hidden"] for c in comments.feed(app.state.engine, Principal(operator=True), "alpha")["items"]] \
        == [False, False]
