"""No answer tells an observation one may not see from one that does not exist.

Issue 9 found anonymous callers answered 401 "not published" for an unpublished observation and
404 for a missing id: walking ids then told what exists, and which are pending. Now whoever may
not read an observation (anonymous, another contributor, staff of another project) gets word
for word the 404 of a missing id, on every route that names an observation.
"""

from __future__ import annotations

from typing import Any

import pytest

API = "/api/v1"
MISSING = 999_999


@pytest.fixture
def hidden(make_token, make_observation, small_png) -> dict[str, Any]:
    """Observations of alpha's ``owner`` that others may not see, each with a photo."""
    owner = make_token("contributor", "alpha")
    photo = [("p.png", small_png, "image/png")]
    made = {status: make_observation("alpha", token=owner, files=photo, status=status)
            for status in ("pending", "unpublished", "trashed")}
    made["private"] = make_observation("beta", token=make_token("contributor", "beta"), status="published")
    return {"owner": owner, "observations": made}


def _requests(obs_id: int, media_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"{API}/observations/{obs_id}", None),
        ("GET", f"{API}/observations/{obs_id}/media/{media_id}", None),
        ("PATCH", f"{API}/observations/{obs_id}", {"fields": {"note": "mine now"}}),
        ("POST", f"{API}/observations/{obs_id}/moderation", {"action": "publish"}),
    ]


def _same_words(response: Any, obs_id: int, missing: Any) -> None:
    assert response.status_code == missing.status_code == 404, (response.status_code, response.text)
    assert response.json() == {"error": {"code": "observation_not_found", "message": f"no observation {obs_id}"}}
    assert missing.json() == {"error": {"code": "observation_not_found", "message": f"no observation {MISSING}"}}
    assert set(response.headers) == set(missing.headers)


@pytest.mark.parametrize("caller", ["anonymous", "another contributor", "staff of another project"])
@pytest.mark.parametrize("which", ["pending", "unpublished", "trashed", "private"])
def test_an_observation_one_may_not_see_answers_as_a_missing_one(caller, which, hidden, client, auth,
                                                                 make_token, engine):
    token = {"anonymous": None, "another contributor": make_token("contributor", "alpha"),
             "staff of another project": make_token("moderator", "gamma")}[caller]
    obs = hidden["observations"][which]
    media_id = obs["media"][0]["id"] if obs["media"] else 1
    for (method, path, body), (_, gone, _) in zip(_requests(obs["id"], media_id), _requests(MISSING, media_id)):
        response = client.request(method, path, json=body, headers=auth(token))
        missing = client.request(method, gone, json=body, headers=auth(token))
        if token is None and method != "GET":
            # an anonymous caller may never write: told so before any look-up, the same for every id
            assert response.status_code == missing.status_code == 401, response.text
            assert response.json() == missing.json() and set(response.headers) == set(missing.headers)
            continue
        _same_words(response, obs["id"], missing)
    # nothing was changed by the refused PATCH and moderation
    mine = client.get(f"{API}/observations/{obs['id']}", headers=auth(hidden["owner"] if which != "private"
                                                                      else make_token("operator")))
    assert mine.status_code == 200 and mine.json()["status"] == obs["status"]
    assert mine.json()["fields"] == obs["fields"]


def test_who_may_see_an_observation_still_gets_401_or_403_for_what_they_may_not_do(hidden, make_token,
                                                                                  make_observation, client, auth):
    published = make_observation("alpha", token=hidden["owner"], status="published")
    patch = {"fields": {"note": "mine now"}}
    anonymous = client.patch(f"{API}/observations/{published['id']}", json=patch)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    other = client.patch(f"{API}/observations/{published['id']}", json=patch,
                         headers=auth(make_token("contributor", "alpha")))
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
    # the owner may read its pending observation, so it is told it may not moderate it, not that it is missing
    own = client.post(f"{API}/observations/{hidden['observations']['pending']['id']}/moderation",
                      json={"action": "publish"}, headers=auth(hidden["owner"]))
    assert own.status_code == 403
