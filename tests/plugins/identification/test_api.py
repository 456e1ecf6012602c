"""The identification API's answers: what a list shows to whom, and every refusal with its code,
after which nothing stored has changed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.models import AuditEntry
from core.db.session import transaction
from plugins.identification.db import identifications, observation_taxa, quality_votes
from tests.plugins.identification.conftest import API, identify, listing, observe


def stored(engine: Any) -> tuple[Any, ...]:
    """Everything an identification request could change."""
    with transaction(engine.readers) as session:
        return (
            [tuple(r) for r in session.execute(select(identifications).order_by(identifications.c.id))],
            [tuple(r) for r in session.execute(select(observation_taxa).order_by(observation_taxa.c.observation_id))],
            [tuple(r) for r in session.execute(select(quality_votes).order_by(quality_votes.c.id))],
            session.scalar(select(func.count()).select_from(AuditEntry)),
        )


@pytest.fixture
def scene(client: Any, engine: Any, people: Any, taxa: Any, photos: Any) -> dict[str, Any]:
    """An observation of Ana's in wild with two identifications and a vote; one in plain (no
    service), one in closed (not public) and one of Ana's still pending in a project that is not
    published at once (wild's, unpublished by a moderator)."""
    ana, ben = people["ana"], people["ben"]
    obs = observe(client, ana, photo=photos["chelsea.jpg"])
    mine = identify(client, ana, obs, taxa["Vulpes vulpes"])
    bens = identify(client, ben, obs, taxa["Vulpes"])
    assert client.put(f"{API}/observations/{obs}/quality/wild", json={"agree": True},
                      headers=ben.headers).status_code == 200
    hidden = observe(client, ana)
    moderated = client.post(f"{API}/observations/{hidden}/moderation", json={"action": "unpublish"},
                            headers=people["mod"].headers)
    assert moderated.status_code == 200, moderated.text
    return {"obs": obs, "ana_ident": mine["id"], "ben_ident": bens["id"], "plain": observe(client, ana, "plain"),
            "closed": observe(client, ana, "closed"), "hidden": hidden}


def test_the_list_shows_identifiers_by_name_and_the_observer_only_to_those_who_may_know_who_it_is(client, people, scene):
    obs = scene["obs"]
    public = listing(client, obs)
    # Ana is the observer: naming her as an identifier would tell the public whose observation it is
    assert [(i["author"], i["yours"]) for i in public["items"]] == [(None, False), ("Ben", False)]
    assert all("own" not in i and "author_id" not in i for i in public["items"])
    assert public["summary"]["quality"]["wild"] == {"agree": 1, "disagree": 0, "passes": True}
    assert public["summary"]["your_votes"] == {}

    bens = listing(client, obs, people["ben"])
    assert [i["yours"] for i in bens["items"]] == [False, True] and bens["summary"]["your_votes"] == {"wild": True}
    assert all("own" not in i for i in bens["items"])  # Ben may not learn who the observer is
    assert [i["author"] for i in bens["items"]] == [None, "Ben"]

    anas = listing(client, obs, people["ana"])
    assert [i["own"] for i in anas["items"]] == [True, False]
    assert [i["author"] for i in anas["items"]] == ["Ana", "Ben"]
    staff = listing(client, obs, people["mod"])
    assert [i["author_id"] for i in staff["items"]] == [people["ana"].account_id, people["ben"].account_id]
    assert "email" not in str(public) and "@" not in str(public)


@pytest.mark.parametrize("case", [
    "anonymous", "unknown_taxon", "unknown_observation", "closed_project", "unpublished", "service_off",
    "bad_body", "extra_field", "zero_taxon", "long_body",
])
def test_a_refused_identification_changes_nothing(client, engine, people, taxa, scene, case):
    obs, ben, out = scene["obs"], people["ben"], people["out"]
    requests = {
        "anonymous": (obs, {"taxon_id": taxa["Felis catus"]}, {}, 401, "unauthorized"),
        "unknown_taxon": (obs, {"taxon_id": 999999}, ben.headers, 422, "unknown_taxon"),
        "unknown_observation": (999999, {"taxon_id": taxa["Felis catus"]}, ben.headers, 404,
                                "observation_not_found"),
        "closed_project": (scene["closed"], {"taxon_id": taxa["Felis catus"]}, out.headers, 404,
                           "observation_not_found"),
        "unpublished": (scene["hidden"], {"taxon_id": taxa["Felis catus"]}, ben.headers, 404,
                        "observation_not_found"),
        "service_off": (scene["plain"], {"taxon_id": taxa["Felis catus"]}, ben.headers, 409, "identifications_off"),
        "bad_body": (obs, {"taxon_id": "fox"}, ben.headers, 422, "invalid_request"),
        "extra_field": (obs, {"taxon_id": taxa["Felis catus"], "category": "leading"}, ben.headers, 422,
                        "invalid_request"),
        "zero_taxon": (obs, {"taxon_id": 0}, ben.headers, 422, "invalid_request"),
        "long_body": (obs, {"taxon_id": taxa["Felis catus"], "body": "x" * 5001}, ben.headers, 422,
                      "invalid_request"),
    }
    obs_id, body, headers, status, code = requests[case]
    before = stored(engine)
    answer = client.post(f"{API}/observations/{obs_id}/identifications", json=body, headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert stored(engine) == before


def test_an_unreadable_observation_answers_as_a_missing_one(client, people, scene):
    missing = client.get(f"{API}/observations/999999/identifications", headers=people["out"].headers)
    closed = client.get(f"{API}/observations/{scene['closed']}/identifications", headers=people["out"].headers)
    assert missing.status_code == closed.status_code == 404
    assert missing.json()["error"]["code"] == closed.json()["error"]["code"] == "observation_not_found"
    assert closed.json()["error"]["message"] == missing.json()["error"]["message"].replace("999999",
                                                                                           str(scene["closed"]))
    # other members of a project that is not public do not see it either; its observer does
    assert client.get(f"{API}/observations/{scene['closed']}/identifications",
                      headers=people["ben"].headers).status_code == 404
    assert client.get(f"{API}/observations/{scene['closed']}/identifications",
                      headers=people["ana"].headers).status_code == 200
    off = client.get(f"{API}/observations/{scene['plain']}/identifications")
    assert (off.status_code, off.json()["error"]["code"]) == (409, "identifications_off")


def test_only_the_author_withdraws_or_restores_and_nothing_changes_otherwise(client, engine, people, scene):
    ana_ident, ben = scene["ana_ident"], people["ben"]
    before = stored(engine)
    for action in ("withdraw", "restore"):
        other = client.post(f"{API}/identifications/{ana_ident}/{action}", headers=ben.headers)
        assert (other.status_code, other.json()["error"]["code"]) == (403, "not_your_identification")
        anonymous = client.post(f"{API}/identifications/{ana_ident}/{action}")
        assert anonymous.status_code == 401
        missing = client.post(f"{API}/identifications/999999/{action}", headers=ben.headers)
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "identification_not_found")
    assert stored(engine) == before


def test_an_identification_on_an_observation_one_can_no_longer_read_is_not_found(client, engine, people, taxa,
                                                                                   scene):
    """Ben identified a published observation; once it is unpublished he may not read it, and its
    identification answers as a missing one."""
    obs, ben = scene["obs"], people["ben"]
    assert client.post(f"{API}/observations/{obs}/moderation", json={"action": "unpublish"},
                       headers=people["mod"].headers).status_code == 200
    before = stored(engine)
    answer = client.post(f"{API}/identifications/{scene['ben_ident']}/withdraw", headers=ben.headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "identification_not_found")
    assert stored(engine) == before


@pytest.mark.parametrize("case", ["twice", "bad_metric", "anonymous", "unknown_observation", "service_off",
                                  "not_bool", "no_vote_to_delete", "bad_metric_delete"])
def test_a_refused_vote_changes_nothing(client, engine, people, scene, case):
    obs, ben = scene["obs"], people["ben"]
    requests = {
        "twice": ("put", obs, "wild", {"agree": True}, ben.headers, 409, "already_voted"),
        "bad_metric": ("put", obs, "pretty", {"agree": True}, ben.headers, 422, "invalid_request"),
        "anonymous": ("put", obs, "wild", {"agree": False}, {}, 401, "unauthorized"),
        "unknown_observation": ("put", 999999, "wild", {"agree": False}, ben.headers, 404, "observation_not_found"),
        "service_off": ("put", scene["plain"], "wild", {"agree": False}, ben.headers, 409, "identifications_off"),
        "not_bool": ("put", obs, "date", {"agree": "perhaps"}, ben.headers, 422, "invalid_request"),
        "no_vote_to_delete": ("delete", obs, "date", None, ben.headers, 404, "vote_not_found"),
        "bad_metric_delete": ("delete", obs, "pretty", None, ben.headers, 422, "invalid_request"),
    }
    method, obs_id, metric, body, headers, status, code = requests[case]
    before = stored(engine)
    answer = client.request(method.upper(), f"{API}/observations/{obs_id}/quality/{metric}", json=body,
                            headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert stored(engine) == before


def test_a_vote_changes_and_is_taken_back(client, people, scene):
    obs, ben = scene["obs"], people["ben"]
    changed = client.put(f"{API}/observations/{obs}/quality/wild", json={"agree": False}, headers=ben.headers)
    assert changed.status_code == 200
    assert changed.json()["quality"]["wild"] == {"agree": 0, "disagree": 1, "passes": False}
    assert changed.json()["grade"] == "casual"
    deleted = client.delete(f"{API}/observations/{obs}/quality/wild", headers=ben.headers)
    assert deleted.status_code == 204
    summary = listing(client, obs)["summary"]
    assert summary["quality"]["wild"] == {"agree": 0, "disagree": 0, "passes": True}


def test_only_the_observer_opts_out_and_nothing_changes_otherwise(client, engine, people, scene):
    before = stored(engine)
    url = f"{API}/observations/{scene['obs']}/taxon-preference"
    other = client.put(url, json={"prefers_community_taxon": False}, headers=people["ben"].headers)
    assert (other.status_code, other.json()["error"]["code"]) == (403, "not_the_observer")
    staff = client.put(url, json={"prefers_community_taxon": False}, headers=people["mod"].headers)
    assert staff.status_code == 403
    assert client.put(url, json={"prefers_community_taxon": False}).status_code == 401
    bad = client.put(url, json={"prefers_community_taxon": "no"}, headers=people["ana"].headers)
    assert bad.status_code == 422
    assert stored(engine) == before


def test_an_inactive_taxon_is_refused(client, engine, people, taxa, scene):
    from sqlalchemy import update

    from core.db.models import Taxon

    with transaction(engine.sessions) as session:
        session.execute(update(Taxon).where(Taxon.id == taxa["Canis lupus"]).values(is_active=False))
    before = stored(engine)
    answer = client.post(f"{API}/observations/{scene['obs']}/identifications", json={"taxon_id": taxa["Canis lupus"]},
                         headers=people["ben"].headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "inactive_taxon")
    assert stored(engine) == before


def test_an_expert_of_another_project_identifies_a_public_observation_as_anyone(client, engine, people, taxa, scene):
    """Identifying needs an account and the right to read, not a membership; expert weight is the
    project's own role: Otto, a member of nothing, is no expert of wild."""
    answer = identify(client, people["out"], scene["obs"], taxa["Vulpes vulpes"])
    assert answer["expert"] is False and answer["author"] == "Otto"
    eva = identify(client, people["eva"], scene["obs"], taxa["Vulpes vulpes"])
    assert eva["expert"] is True
