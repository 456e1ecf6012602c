"""Identifications stored and recomputed: people identify an observation through the API and the
community taxon, categories and grade follow iNaturalist's rules; withdraw, restore, opt-out,
the project's expert settings, concurrent identifications, audit entries, on_identification."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from core.db.models import AuditEntry
from core.db.session import transaction
from core.testing import PG_ENV
from plugins.identification.db import identifications, observation_taxa
from tests.plugins.identification import listener
from tests.plugins.identification.conftest import API, identify, listing, make_person, observe


def community(summary: dict[str, Any]) -> str | None:
    return summary["community_taxon"]["name"] if summary["community_taxon"] else None


def by_author(page: dict[str, Any]) -> dict[str, list[tuple[str, str | None, bool]]]:
    out: dict[str, list[tuple[str, str | None, bool]]] = {}
    for item in page["items"]:
        out.setdefault(item["author"], []).append((item["taxon"]["name"], item["category"], item["current"]))
    return out


def audit_actions(engine: Any, obs_id: int) -> list[tuple[str, Any, Any]]:
    with transaction(engine.readers) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.observation_id == obs_id)
                               .order_by(AuditEntry.id)).all()
        return [(r.action, r.before, r.after) for r in rows]


def test_two_contributors_and_an_expert_agree_and_it_is_research_grade(client, people, taxa, photos):
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    obs = observe(client, ana, photo=photos["chelsea.jpg"])
    assert listing(client, obs)["summary"]["grade"] == "needs_id"

    first = identify(client, ana, obs, taxa["Vulpes vulpes"], body="  a fox, I think \r\n", vision=True)
    assert first["body"] == "a fox, I think" and first["vision"] is True and first["own"] is True
    assert listing(client, obs)["summary"]["community_taxon"] is None  # one identification is no community
    identify(client, ben, obs, taxa["Vulpes vulpes"])
    identify(client, eva, obs, taxa["Vulpes"])

    page = listing(client, obs)
    summary = page["summary"]
    assert community(summary) == "Vulpes vulpes" and summary["taxon"]["name"] == "Vulpes vulpes"
    assert summary["community_score"] == pytest.approx(1.0)
    assert summary["grade"] == "research"
    assert (summary["identifications_count"], summary["agreements"], summary["disagreements"]) == (3, 2, 0)
    # read anonymously: Ana observed it, so her own identification is not named
    assert by_author(page) == {None: [("Vulpes vulpes", "improving", True)],
                               "Ben": [("Vulpes vulpes", "supporting", True)],
                               "Eva": [("Vulpes", "supporting", True)]}
    assert [i["expert"] for i in page["items"]] == [False, False, True]
    # the public sees the observation graded, and who identified by display name only
    public = client.get(f"{API}/observations/{obs}").json()
    assert public["grade"] == "research"
    anonymous = listing(client, obs)
    assert all("own" not in i and "author_id" not in i for i in anonymous["items"])


def test_a_disagreement_takes_it_back_to_needs_id_and_withdrawing_it_restores_research(client, people, taxa, photos):
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    obs = observe(client, ana, photo=photos["chelsea.jpg"])
    identify(client, ana, obs, taxa["Vulpes vulpes"])
    identify(client, eva, obs, taxa["Vulpes vulpes"])
    assert listing(client, obs)["summary"]["grade"] == "research"

    cat = identify(client, ben, obs, taxa["Felis catus"])
    summary = listing(client, obs)["summary"]
    # Vulpes vulpes: 2 / (2 + 1) is not above 2/3; Carnivora holds all three
    assert community(summary) == "Carnivora" and summary["grade"] == "needs_id"
    # every one is below the community taxon: leading, as iNaturalist says (read by Ana, who may see her name)
    assert {i["author"]: i["category"] for i in listing(client, obs, ana)["items"]} == {
        "Ana": "leading", "Eva": "leading", "Ben": "leading"}

    withdrawn = client.post(f"{API}/identifications/{cat['id']}/withdraw", headers=ben.headers)
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn"] is True
    assert withdrawn.json()["current"] is False
    summary = listing(client, obs)["summary"]
    assert community(summary) == "Vulpes vulpes" and summary["grade"] == "research"
    again = client.post(f"{API}/identifications/{cat['id']}/withdraw", headers=ben.headers)
    assert again.status_code == 200  # asking again changes nothing

    restored = client.post(f"{API}/identifications/{cat['id']}/restore", headers=ben.headers)
    assert restored.status_code == 200 and restored.json()["current"] is True
    assert restored.json()["withdrawn"] is False
    summary = listing(client, obs)["summary"]
    assert community(summary) == "Carnivora" and summary["grade"] == "needs_id"


def test_a_new_identification_replaces_the_persons_current_one_and_restore_swaps_back(client, people, taxa):
    ana, ben = people["ana"], people["ben"]
    obs = observe(client, ana)
    old = identify(client, ben, obs, taxa["Canis lupus"])
    new = identify(client, ben, obs, taxa["Vulpes vulpes"])
    bens = [i for i in listing(client, obs)["items"] if i["author"] == "Ben"]
    assert [(i["id"], i["current"], i["withdrawn"]) for i in bens] == [(old["id"], False, False),
                                                                     (new["id"], True, False)]
    client.post(f"{API}/identifications/{old['id']}/restore", headers=ben.headers)
    bens = {i["id"]: i["current"] for i in listing(client, obs)["items"] if i["author"] == "Ben"}
    assert bens == {old["id"]: True, new["id"]: False}


def test_the_observer_opting_out_keeps_their_own_taxon(client, people, taxa, photos):
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    obs = observe(client, ana, photo=photos["chelsea.jpg"])
    identify(client, ana, obs, taxa["Vulpes lagopus"])
    identify(client, ben, obs, taxa["Vulpes vulpes"])
    identify(client, eva, obs, taxa["Vulpes vulpes"])
    identify(client, people["mod"], obs, taxa["Vulpes vulpes"])
    summary = listing(client, obs)["summary"]
    assert community(summary) == "Vulpes vulpes" and summary["taxon"]["name"] == "Vulpes vulpes"

    answer = client.put(f"{API}/observations/{obs}/taxon-preference", json={"prefers_community_taxon": False},
                        headers=ana.headers)
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["prefers_community_taxon"] is False
    assert community(summary) == "Vulpes vulpes" and summary["taxon"]["name"] == "Vulpes lagopus"
    assert summary["grade"] != "research"  # the observer's own taxon is a maverick

    back = client.put(f"{API}/observations/{obs}/taxon-preference", json={"prefers_community_taxon": True},
                      headers=ana.headers).json()
    assert back["taxon"]["name"] == "Vulpes vulpes" and back["grade"] == "research"


def test_experts_count_double_where_the_project_says_so(client, people, taxa, photos):
    """The same three identifications: in wild an expert counts once, in double twice."""
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    found = {}
    for project in ("wild", "double"):
        obs = observe(client, ana, project, photo=photos["chelsea.jpg"])
        identify(client, ana, obs, taxa["Vulpes vulpes"])
        identify(client, ben, obs, taxa["Felis catus"])
        identify(client, eva, obs, taxa["Vulpes vulpes"])
        found[project] = listing(client, obs)["summary"]
    assert community(found["wild"]) == "Carnivora"
    assert community(found["double"]) == "Vulpes vulpes"
    assert found["double"]["community_score"] == pytest.approx(3 / 4)
    assert found["double"]["grade"] == "research"


def test_research_grade_waits_for_an_expert_where_the_project_requires_one(client, people, taxa, photos):
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    obs = observe(client, ana, "double", photo=photos["chelsea.jpg"])
    identify(client, ana, obs, taxa["Vulpes vulpes"])
    identify(client, ben, obs, taxa["Vulpes vulpes"])
    summary = listing(client, obs)["summary"]
    assert community(summary) == "Vulpes vulpes" and summary["grade"] == "needs_id"
    identify(client, eva, obs, taxa["Vulpes vulpes"])
    assert listing(client, obs)["summary"]["grade"] == "research"


def test_every_change_is_audited_with_the_community_taxon_and_grade_before_and_after(client, engine, people, taxa,
                                                                                     photos):
    ana, ben = people["ana"], people["ben"]
    obs = observe(client, ana, photo=photos["chelsea.jpg"])
    first = identify(client, ana, obs, taxa["Vulpes vulpes"])
    second = identify(client, ben, obs, taxa["Vulpes vulpes"])
    client.post(f"{API}/identifications/{second['id']}/withdraw", headers=ben.headers)
    client.post(f"{API}/identifications/{second['id']}/restore", headers=ben.headers)
    client.put(f"{API}/observations/{obs}/quality/wild", json={"agree": False}, headers=ben.headers)
    actions = [a for a in audit_actions(engine, obs) if a[0] not in ("submit", "publish", "create")]
    vv = taxa["Vulpes vulpes"]
    assert actions == [
        ("identify", None, {"identification_id": first["id"], "taxon_id": vv, "disagreement": None, "vision": False}),
        # against the observation's taxon then (Ana's): not a disagreement
        ("identify", None, {"identification_id": second["id"], "taxon_id": vv, "disagreement": False,
                            "vision": False}),
        ("community_taxon", {"taxon_id": None, "score": None}, {"taxon_id": vv, "score": 1.0}),
        ("grade", {"grade": "needs_id"}, {"grade": "research"}),
        ("withdraw_identification", {"identification_id": second["id"], "taxon_id": vv, "current": True,
                                     "withdrawn": False},
         {"identification_id": second["id"], "taxon_id": vv, "current": False, "withdrawn": True}),
        ("community_taxon", {"taxon_id": vv, "score": 1.0}, {"taxon_id": None, "score": None}),
        ("grade", {"grade": "research"}, {"grade": "needs_id"}),
        ("restore_identification", {"identification_id": second["id"], "taxon_id": vv, "current": False,
                                    "withdrawn": True},
         {"identification_id": second["id"], "taxon_id": vv, "current": True, "withdrawn": False}),
        ("community_taxon", {"taxon_id": None, "score": None}, {"taxon_id": vv, "score": 1.0}),
        ("grade", {"grade": "needs_id"}, {"grade": "research"}),
        ("quality_vote", {"metric": "wild", "agree": None}, {"metric": "wild", "agree": False}),
        ("grade", {"grade": "research"}, {"grade": "casual"}),
    ]


def test_on_identification_tells_enabled_plugins_and_a_failing_one_changes_nothing(client, engine, people, taxa):
    ana, ben = people["ana"], people["ben"]
    obs = observe(client, ana)
    identify(client, ana, obs, taxa["Vulpes vulpes"])
    engine.state("listener.fail", lambda: [False])[0] = True
    second = identify(client, ben, obs, taxa["Vulpes vulpes"])  # the listener raises: logged, still stored
    client.post(f"{API}/identifications/{second['id']}/withdraw", headers=ben.headers)
    vv = taxa["Vulpes vulpes"]
    assert listener.calls(engine) == [
        ("added", obs, vv, ana.account_id),
        ("added", obs, vv, ben.account_id),
        ("community_taxon", obs, vv, None),
        ("withdrawn", obs, vv, ben.account_id),
        ("community_taxon", obs, None, None),
    ]
    # a project that does not enable the listener is not told
    other = observe(client, ana, "double")
    identify(client, ana, other, vv)
    assert len(listener.calls(engine)) == 5


def _identify_at_once(engine: Any, obs: int, people: list[Any], taxon_ids: list[int]) -> list[Any]:
    from fastapi.testclient import TestClient

    from core.api.app import create_app

    app = create_app(engine)
    barrier = threading.Barrier(len(people))
    answers: list[Any] = [None] * len(people)

    def run(i: int) -> None:
        with TestClient(app, raise_server_exceptions=False) as c:
            barrier.wait()
            answers[i] = c.post(f"{API}/observations/{obs}/identifications", json={"taxon_id": taxon_ids[i]},
                                headers=people[i].headers)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(people))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_concurrent_identifications_keep_every_one_and_one_consistent_community_taxon(client, engine, people, taxa,
                                                                                      photos):
    """Twelve people identify one observation at the same moment (each twice, so that replacing
    races too): every identification is kept, one current per person, and the stored community
    taxon is what the rules give for them all."""
    obs = observe(client, people["ana"], photo=photos["chelsea.jpg"])
    crowd = [make_person(engine, f"P{i}", {"wild": "contributor"}) for i in range(12)]
    species = [taxa["Vulpes vulpes"]] * 9 + [taxa["Felis catus"]] * 3
    for round_ in range(2):
        answers = _identify_at_once(engine, obs, crowd, species if round_ else list(reversed(species)))
        assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers if a.status_code != 201]
    with transaction(engine.readers) as session:
        rows = session.execute(select(identifications).where(identifications.c.observation_id == obs)).all()
        stored = session.execute(select(observation_taxa).where(observation_taxa.c.observation_id == obs)).one()
    assert len(rows) == 24
    current = [r for r in rows if r.current]
    assert sorted(r.account_id for r in current) == sorted(p.account_id for p in crowd)
    assert sorted(r.taxon_id for r in current) == sorted(species)
    # 9 of 12 is 3/4: Vulpes vulpes, whatever the order the requests were stored in
    assert stored.community_taxon_id == taxa["Vulpes vulpes"] and stored.identifications_count == 12
    summary = listing(client, obs)["summary"]
    assert summary["grade"] == "research"
    assert sum(1 for a in audit_actions(engine, obs) if a[0] == "identify") == 24


@pytest.mark.skipif(not __import__("os").environ.get(PG_ENV), reason="row locks are PostgreSQL's")
def test_concurrent_identifications_wait_on_the_observations_row_lock(client, engine, people, taxa):
    """On PostgreSQL: while one transaction holds the observation's row, an identification waits
    for it rather than computing from a stale set."""
    import time

    from core.db.models import Observation

    obs = observe(client, people["ana"])
    identify(client, people["ana"], obs, taxa["Vulpes vulpes"])
    started = time.monotonic()
    with transaction(engine.sessions) as session:
        session.execute(select(Observation).where(Observation.id == obs).with_for_update()).one()
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(identify(client, people["ben"], obs,
                                                                        taxa["Vulpes vulpes"])))
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()  # waiting on the lock
    thread.join(30)
    assert result and time.monotonic() - started >= 0.5
    assert community(listing(client, obs)["summary"]) == "Vulpes vulpes"
