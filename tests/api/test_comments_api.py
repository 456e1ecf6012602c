"""Comments through the API: who writes, who reads what, hiding, locking, the project feed."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from sqlalchemy import update

from core.db.models import Account
from core.engine import Engine
from tests.api.conftest import API, API_REGISTRY

REGISTRY = API_REGISTRY + """
  - slug: quiet
    name: Quiet
    comments: false
    services: {}
"""


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY)


@pytest.fixture
def people(make_token: Callable[..., str]) -> dict[str, str]:
    return {
        "author": make_token("contributor", "alpha", "Ada Author"),
        "other": make_token("contributor", "alpha", "Otto Other"),
        "outsider": make_token("contributor", "beta", "Betty Beta"),
        "moderator": make_token("moderator", "alpha", "Mona Moderator"),
    }


def comment(client, auth, token: str | None, obs_id: int, body: str = "a red fox, I think") -> Any:
    return client.post(f"{API}/observations/{obs_id}/comments", json={"body": body}, headers=auth(token))


def comments_of(client, auth, token: str | None, obs_id: int, **params: Any) -> Any:
    return client.get(f"{API}/observations/{obs_id}/comments", params=params, headers=auth(token))


def test_readers_see_a_published_observations_comments_with_display_names_but_never_the_observers(
        client, auth, engine, people, make_observation):
    with engine.sessions.begin() as session:
        session.execute(update(Account).where(Account.display_name == "Ada Author").values(email="ada@example.org"))
    obs = make_observation("alpha", token=people["author"])
    made = comment(client, auth, people["author"], obs["id"])
    assert made.status_code == 201, made.text
    assert made.json()["author"] == "Ada Author" and made.json()["yours"] is True
    # pending: only the author and staff read the observation, so only they read its comments
    assert comments_of(client, auth, None, obs["id"]).status_code == 404
    assert comments_of(client, auth, people["other"], obs["id"]).status_code == 404
    assert [c["body"] for c in comments_of(client, auth, people["author"], obs["id"]).json()["items"]] == \
        ["a red fox, I think"]

    client.post(f"{API}/observations/{obs['id']}/moderation", json={"action": "publish"}, headers=auth(people["moderator"]))
    assert comment(client, auth, people["other"], obs["id"], "agreed").status_code == 201
    page = comments_of(client, auth, None, obs["id"])
    assert page.status_code == 200
    own, others = page.json()["items"]
    assert others["author"] == "Otto Other" and others["hidden"] is False and others["yours"] is False
    assert set(others) == {"id", "observation_id", "body", "author", "created_at", "hidden", "yours"}
    # the observer's own comment would tell who made the observation, which the public may not know
    assert own["author"] is None and "Ada Author" not in page.text and "ada@example.org" not in page.text
    assert [c["author"] for c in comments_of(client, auth, people["other"], obs["id"]).json()["items"]] == \
        [None, "Otto Other"]
    assert [c["author"] for c in comments_of(client, auth, people["author"], obs["id"]).json()["items"]] == \
        ["Ada Author", "Otto Other"]
    staff_view = comments_of(client, auth, people["moderator"], obs["id"]).json()["items"][0]
    assert staff_view["author_id"] == obs["contributor_id"] and staff_view["author"] == "Ada Author"


def test_a_project_that_is_not_public_keeps_its_comments_from_anonymous_readers(client, auth, make_token,
                                                                                make_observation):
    member = make_token("contributor", "beta", "Bea")
    obs = make_observation("beta", token=member, status="published")
    assert comment(client, auth, member, obs["id"]).status_code == 201
    hidden, missing = comments_of(client, auth, None, obs["id"]), comments_of(client, auth, None, 999_999)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "observation_not_found"


def test_who_may_comment(client, auth, people, make_observation, make_token):
    obs = make_observation("alpha", token=people["author"], status="published")
    assert comment(client, auth, None, obs["id"]).status_code == 401
    refused = comment(client, auth, people["outsider"], obs["id"])  # may read it, is no member of alpha
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_member"
    assert comment(client, auth, people["other"], obs["id"]).status_code == 201
    assert comment(client, auth, people["moderator"], obs["id"]).status_code == 201
    assert comment(client, auth, make_token("operator"), obs["id"]).status_code == 201
    pending = make_observation("alpha", token=people["author"])
    hidden_from_other = comment(client, auth, people["other"], pending["id"])
    missing = comment(client, auth, people["other"], 999_999)
    assert hidden_from_other.status_code == missing.status_code == 404


@pytest.mark.parametrize("body", ["", "   \n\t ", "x" * 5001, "bell \x07 here", "nul \x00 here",
                                  "escape \x1b[31m red", "c1 \x9b control"])
def test_a_comment_body_is_refused(client, auth, people, make_observation, body):
    obs = make_observation("alpha", token=people["author"], status="published")
    response = comment(client, auth, people["author"], obs["id"], body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert comments_of(client, auth, people["author"], obs["id"]).json()["items"] == []


def test_a_long_multi_line_comment_is_kept_as_written(client, auth, people, make_observation):
    obs = make_observation("alpha", token=people["author"], status="published")
    longest = "é" * 5000
    assert comment(client, auth, people["author"], obs["id"], longest).status_code == 201
    assert comment(client, auth, people["author"], obs["id"], "  line one\r\n\tline two  ").status_code == 201
    bodies = [c["body"] for c in comments_of(client, auth, None, obs["id"]).json()["items"]]
    assert bodies == [longest, "line one\n\tline two"]


def test_a_project_with_comments_off_refuses_them(client, auth, make_token, make_observation):
    member = make_token("contributor", "quiet", "Quinn")
    obs = make_observation("quiet", token=member, status="published")
    response = comment(client, auth, member, obs["id"])
    assert response.status_code == 409 and response.json()["error"]["code"] == "comments_off"
    page = comments_of(client, auth, None, obs["id"]).json()
    assert page["open"] is False and page["comments_on"] is False and page["items"] == []


def test_staff_lock_an_observations_comments_and_unlock_them(client, auth, people, make_observation):
    obs = make_observation("alpha", token=people["author"], status="published")
    assert comment(client, auth, people["other"], obs["id"], "before the lock").status_code == 201
    lock = f"{API}/observations/{obs['id']}/comments/lock"
    assert client.post(lock, headers=auth(None)).status_code == 401
    assert client.post(lock, headers=auth(people["author"])).status_code == 403
    assert client.post(lock, headers=auth(people["moderator"])).json() == {"observation_id": obs["id"], "locked": True}
    refused = comment(client, auth, people["other"], obs["id"], "after the lock")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "comments_locked"
    page = comments_of(client, auth, None, obs["id"]).json()
    assert page["locked"] is True and page["open"] is False
    assert [c["body"] for c in page["items"]] == ["before the lock"]
    assert client.post(f"{API}/observations/{obs['id']}/comments/unlock",
                       headers=auth(people["moderator"])).json()["locked"] is False
    assert comment(client, auth, people["other"], obs["id"], "after the unlock").status_code == 201
    log = client.get(f"{API}/projects/alpha/audit", params={"observation_id": obs["id"]},
                     headers=auth(people["moderator"])).json()["items"]
    assert [e["action"] for e in log][:2] == ["unlock_comments", "lock_comments"]


def test_a_hidden_comment_is_kept_for_its_author_and_staff_only(client, auth, people, make_observation):
    obs = make_observation("alpha", token=people["author"], status="published")
    rude = comment(client, auth, people["other"], obs["id"], "a rude remark").json()
    comment(client, auth, people["author"], obs["id"], "a kind reply")
    hide = f"{API}/comments/{rude['id']}/hide"
    assert client.post(hide, headers=auth(None)).status_code == 401
    # the observation's own contributor sees the comment but is not staff
    assert client.post(hide, headers=auth(people["author"])).status_code == 403
    hidden = client.post(hide, headers=auth(people["moderator"]))
    assert hidden.status_code == 200 and hidden.json()["hidden"] is True

    def bodies(token: str | None) -> list[tuple[str, bool]]:
        return [(c["body"], c["hidden"]) for c in comments_of(client, auth, token, obs["id"]).json()["items"]]

    assert bodies(None) == [("a kind reply", False)]
    assert bodies(people["author"]) == [("a kind reply", False)]
    assert bodies(people["other"]) == [("a rude remark", True), ("a kind reply", False)]
    assert bodies(people["moderator"]) == [("a rude remark", True), ("a kind reply", False)]
    # one who cannot see the hidden comment is told it does not exist
    assert client.post(f"{API}/comments/{rude['id']}/unhide", headers=auth(people["author"])).status_code == 404
    assert client.post(f"{API}/comments/999999/hide", headers=auth(people["author"])).status_code == 404

    assert client.post(f"{API}/comments/{rude['id']}/unhide", headers=auth(people["moderator"])).json()["hidden"] is False
    assert bodies(None) == [("a rude remark", False), ("a kind reply", False)]
    log = client.get(f"{API}/projects/alpha/audit", headers=auth(people["moderator"])).json()["items"]
    changes = [(e["action"], e["after"]) for e in log if e["action"].endswith("hide_comment")]
    assert changes == [("unhide_comment", {"comment_id": rude["id"], "hidden": False}),
                       ("hide_comment", {"comment_id": rude["id"], "hidden": True})]
    assert "a rude remark" not in str(log)


def test_comments_come_oldest_first_a_page_at_a_time(client, auth, people, make_observation):
    obs = make_observation("alpha", token=people["author"], status="published")
    for i in range(5):
        assert comment(client, auth, people["other"], obs["id"], f"comment {i}").status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = comments_of(client, auth, None, obs["id"], **params).json()
        seen += [c["body"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"comment {i}" for i in range(5)]
    assert comments_of(client, auth, None, obs["id"], limit=0).status_code == 422
    assert comments_of(client, auth, None, obs["id"], cursor="abc").status_code == 422
    assert comments_of(client, auth, None, obs["id"], sort="new").json()["error"]["code"] == "unknown_parameter"


def test_the_project_feed_is_for_staff_newest_first_with_a_state_filter(client, auth, people, make_observation):
    first = make_observation("alpha", token=people["author"], status="published")
    second = make_observation("alpha", token=people["author"])
    ids = [comment(client, auth, people["author"], first["id"], "one").json()["id"],
           comment(client, auth, people["other"], first["id"], "two").json()["id"],
           comment(client, auth, people["author"], second["id"], "three").json()["id"]]
    client.post(f"{API}/comments/{ids[1]}/hide", headers=auth(people["moderator"]))
    feed = f"{API}/projects/alpha/comments"
    assert client.get(feed, headers=auth(None)).status_code == 401
    assert client.get(feed, headers=auth(people["author"])).status_code == 403
    assert client.get(f"{API}/projects/nowhere/comments", headers=auth(people["moderator"])).status_code == 404

    def state(value: str | None, **params: Any) -> list[str]:
        query = {**({"state": value} if value else {}), **params}
        return [c["body"] for c in client.get(feed, params=query, headers=auth(people["moderator"])).json()["items"]]

    assert state(None) == state("all") == ["three", "two", "one"]
    assert state("visible") == ["three", "one"]
    assert state("hidden") == ["two"]
    page = client.get(feed, params={"limit": 2}, headers=auth(people["moderator"])).json()
    assert [c["body"] for c in page["items"]] == ["three", "two"]
    assert state("all", cursor=page["next_cursor"]) == ["one"]
    # a cursor past any id (the schema allows ten digits; PostgreSQL's ids are 32-bit): from the newest
    assert state("all", cursor="9999999999") == ["three", "two", "one"]
    assert client.get(feed, params={"state": "deleted"}, headers=auth(people["moderator"])).status_code == 422
    item = client.get(feed, headers=auth(people["moderator"])).json()["items"][0]
    assert item["author"] == "Ada Author" and item["author_id"] is not None and item["observation_id"] == second["id"]
