"""The change feed (``plugins/mobile_bridge/feed.py``): what an app sees of its user's observations
and of those they follow, from a cursor, with the unread count and marking seen."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core.testing import draft
from tests.support.mobile_feed import built_model, engine, people, plugins, registry  # noqa: F401 (fixtures)
from tests.support.mobile_feed import API, MOBILE, People


def _submit(client: TestClient, people: People, who: str, project: str = "wild", photo: bytes | None = None,
            **parts: Any) -> dict[str, Any]:
    import json

    url = f"{API}/projects/{project}/observations"
    if photo is not None:
        response = client.post(url, data={"draft": json.dumps(draft(**parts))}, headers=people.auth(who),
                               files=[("media", ("IMG_0042.jpg", photo, "image/jpeg"))])
    else:
        response = client.post(url, json=draft(**parts), headers=people.auth(who))
    assert response.status_code == 201, response.text
    return response.json()


def _feed(client: TestClient, people: People, who: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"{MOBILE}/feed", params=params, headers=people.auth(who))
    assert response.status_code == 200, response.text
    return response.json()


def _comment(client: TestClient, people: People, who: str, obs_id: int, body: str) -> None:
    response = client.post(f"{API}/observations/{obs_id}/comments", json={"body": body}, headers=people.auth(who))
    assert response.status_code == 201, response.text


def _moderate(client: TestClient, people: People, who: str, obs_id: int, action: str) -> None:
    response = client.post(f"{API}/observations/{obs_id}/moderation", json={"action": action},
                           headers=people.auth(who))
    assert response.status_code == 200, response.text


def test_the_contributor_sees_the_species_suggestion_and_grade_of_a_new_photo(client, people, photos):
    people.add("ana", wild="contributor")
    obs = _submit(client, people, "ana", photo=photos["chelsea.jpg"])

    page = _feed(client, people, "ana")
    assert page["unread"] == 1
    [entry] = page["items"]
    assert (entry["type"], entry["observation_id"], entry["project"], entry["seen"]) == \
        ("results", obs["id"], "wild", False)
    assert page["next_cursor"] == entry["id"]
    species = entry["data"]["results"]["species_id"]
    stored_best = obs["enrichments"]["species_id"]["result"]["best"]
    assert species["outcome"] == "identified"
    assert species["scientific_name"] == stored_best["scientific_name"]
    assert species["label"] == (stored_best["common_names"] or [stored_best["scientific_name"]])[0]
    assert "cat" in species["label"].lower()  # the photo is of a cat
    assert species["score"] == stored_best["score"]
    assert entry["data"]["results"]["recorder"] == {"keys": ["media", "seen"]}
    assert entry["data"]["grade"] == obs["grade"] == "needs_id"


def test_an_odour_report_shows_the_nearest_point_of_interest_and_the_zone(client, people):
    people.add("olga", smells="contributor")
    obs = _submit(client, people, "olga", project="smells", kind="odour",
                  location={"lat": 41.401, "lon": 2.201},
                  fields={"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3})
    [entry] = _feed(client, people, "olga")["items"]
    odour = entry["data"]["results"]["odour"]
    assert entry["observation_id"] == obs["id"]
    assert odour["nearest"]["name"] == "Chemical plant"
    assert 0 < odour["nearest"]["distance_m"] < 200
    assert odour["zone"] == "Industrial estate"


def test_per_page_zero_gives_only_the_unread_count_and_seen_marks_up_to_an_id(client, people):
    people.add("ana", wild="contributor")
    for _ in range(3):
        _submit(client, people, "ana")
    assert _feed(client, people, "ana", per_page=0) == {"unread": 3, "items": [], "next_cursor": 0}
    ids = [e["id"] for e in _feed(client, people, "ana")["items"]]
    assert ids == sorted(ids) and len(ids) == 3

    seen = client.post(f"{MOBILE}/feed/seen", json={"up_to": ids[1]}, headers=people.auth("ana"))
    assert seen.status_code == 200 and seen.json() == {"marked": 2, "unread": 1}
    again = client.post(f"{MOBILE}/feed/seen", json={"up_to": ids[1]}, headers=people.auth("ana"))
    assert again.json() == {"marked": 0, "unread": 1}
    assert [e["seen"] for e in _feed(client, people, "ana")["items"]] == [True, True, False]


def test_the_cursor_pages_through_the_feed_and_continues_where_it_stopped(client, people):
    people.add("ana", wild="contributor")
    for _ in range(3):
        _submit(client, people, "ana")
    first = _feed(client, people, "ana", per_page=2)
    rest = _feed(client, people, "ana", cursor=first["next_cursor"], per_page=2)
    assert len(first["items"]) == 2 and len(rest["items"]) == 1
    assert rest["items"][0]["id"] > first["items"][1]["id"]
    end = _feed(client, people, "ana", cursor=rest["next_cursor"])
    assert end["items"] == [] and end["next_cursor"] == rest["next_cursor"]
    _submit(client, people, "ana")
    assert len(_feed(client, people, "ana", cursor=rest["next_cursor"])["items"]) == 1


def test_a_grade_change_is_told_and_an_unchanged_assessment_is_not(client, people):
    people.add("ana", wild="contributor")
    obs = _submit(client, people, "ana", fields={"doubtful": True})
    [results] = _feed(client, people, "ana")["items"]
    assert results["data"]["grade"] == "casual"

    edited = client.patch(f"{API}/observations/{obs['id']}", json={"fields": {"doubtful": None}},
                          headers=people.auth("ana"))
    assert edited.status_code == 200 and edited.json()["grade"] == "needs_id"
    [grade] = _feed(client, people, "ana", cursor=results["id"])["items"]
    assert (grade["type"], grade["data"]) == ("grade", {"grade": "needs_id", "previous": "casual"})

    client.patch(f"{API}/observations/{obs['id']}", json={"fields": {"note": "still a fox"}},
                 headers=people.auth("ana"))
    assert _feed(client, people, "ana", cursor=grade["id"])["items"] == []


def test_moderation_is_told_and_trashing_leaves_a_tombstone_without_data(client, people):
    people.add("ana", wild="contributor")
    people.add("mo", wild="moderator")
    obs = _submit(client, people, "ana")
    start = _feed(client, people, "ana")["next_cursor"]
    _moderate(client, people, "mo", obs["id"], "unpublish")
    _moderate(client, people, "mo", obs["id"], "trash")
    told = _feed(client, people, "ana", cursor=start)["items"]
    assert [(e["type"], e["data"]) for e in told] == [
        ("moderation", {"status": "unpublished", "previous": "published"}), ("deleted", None)]
    assert {e["observation_id"] for e in told} == {obs["id"]}


def test_others_comments_come_with_the_authors_display_name_and_ones_own_do_not(client, people):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    obs = _submit(client, people, "ana")
    start = _feed(client, people, "ana")["next_cursor"]
    _comment(client, people, "ben", obs["id"], "A fox, surely?")
    _comment(client, people, "ana", obs["id"], "Yes, at dawn.")
    [entry] = _feed(client, people, "ana", cursor=start)["items"]
    assert entry["type"] == "comment"
    assert set(entry["data"]) == {"comment_id", "author", "body", "created_at"}  # no account ids, no e-mail
    assert (entry["data"]["author"], entry["data"]["body"]) == ("Ben", "A fox, surely?")
    assert _feed(client, people, "ben", per_page=0)["unread"] == 0  # ben follows nothing


def test_a_follower_is_told_while_they_may_read_it_and_gets_a_tombstone_when_it_goes(client, people):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    people.add("cleo", wild="contributor")
    people.add("mo", wild="moderator")
    obs = _submit(client, people, "ana")
    follow = client.post(f"{MOBILE}/observations/{obs['id']}/follow", headers=people.auth("ben"))
    assert follow.status_code == 200 and follow.json() == {"observation_id": obs["id"], "following": True}
    assert client.post(f"{MOBILE}/observations/{obs['id']}/follow", headers=people.auth("ben")).status_code == 200

    _comment(client, people, "cleo", obs["id"], "Nice one")
    _comment(client, people, "ben", obs["id"], "Agreed")  # his own: not in his feed
    _moderate(client, people, "mo", obs["id"], "unpublish")  # ben may no longer read it
    _comment(client, people, "mo", obs["id"], "Hidden while we check the place")
    _moderate(client, people, "mo", obs["id"], "publish")  # he may again
    told = [(e["type"], e["data"] and e["data"].get("author", e["data"].get("status")))
            for e in _feed(client, people, "ben")["items"]]
    assert told == [("comment", "Cleo"), ("deleted", None), ("moderation", "published")]
    # the contributor got each of them once, ben's comment included
    ana = [e["type"] for e in _feed(client, people, "ana")["items"]]
    assert ana == ["results", "comment", "comment", "moderation", "comment", "moderation"]

    gone = client.delete(f"{MOBILE}/observations/{obs['id']}/follow", headers=people.auth("ben"))
    assert gone.status_code == 200 and gone.json()["following"] is False
    _comment(client, people, "cleo", obs["id"], "Back again")
    assert len(_feed(client, people, "ben")["items"]) == 3


def test_following_needs_an_observation_one_may_read_in_a_project_with_the_bridge(client, people):
    people.add("ana", closed="contributor", plain="contributor")
    people.add("ben", wild="contributor")
    private = _submit(client, people, "ana", project="closed")
    elsewhere = _submit(client, people, "ana", project="plain")
    unseen = client.post(f"{MOBILE}/observations/{private['id']}/follow", headers=people.auth("ben"))
    missing = client.post(f"{MOBILE}/observations/999999/follow", headers=people.auth("ben"))
    assert unseen.status_code == missing.status_code == 404
    assert unseen.json()["error"]["message"].replace(str(private["id"]), "N") == \
        missing.json()["error"]["message"].replace("999999", "N")
    off = client.post(f"{MOBILE}/observations/{elsewhere['id']}/follow", headers=people.auth("ben"))
    assert off.status_code == 409 and off.json()["error"]["code"] == "feed_off"


def test_the_feed_needs_a_token_and_shows_only_the_callers_entries(client, people):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    _submit(client, people, "ana")
    for method, path, body in (("GET", "/feed", None), ("POST", "/feed/seen", {"up_to": 1}),
                               ("POST", "/observations/1/follow", None), ("DELETE", "/observations/1/follow", None)):
        response = client.request(method, MOBILE + path, json=body)
        assert response.status_code == 401, (method, path, response.text)
    assert _feed(client, people, "ben") == {"unread": 0, "items": [], "next_cursor": 0}
    first = _feed(client, people, "ana")["items"][0]["id"]
    marked = client.post(f"{MOBILE}/feed/seen", json={"up_to": first}, headers=people.auth("ben"))
    assert marked.json()["marked"] == 0 and _feed(client, people, "ana")["unread"] == 1
