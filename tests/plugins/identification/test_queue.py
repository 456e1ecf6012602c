"""The expert queue (``plugins/identification/queue*.py``): experts subscribe to taxa and places and
read, across the projects that enable identifications, the needs_id observations they may read,
best first, in pages, with the machine suggestion; never a project or a place they may not see."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from core.db.models import Enrichment, Observation, utcnow
from core.db.session import transaction
from tests.plugins.identification.conftest import API, Person, identify, make_person, observe
from tests.support.mobile_feed import built_model  # noqa: F401 (the species model, built once a session)

QUEUE = f"{API}/identify/queue"
SUBS = f"{API}/identify/subscriptions"


# -- helpers ------------------------------------------------------------------------------------


def subscribe(client: Any, person: Person, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = client.post(SUBS, json=body, headers=person.headers)
    assert response.status_code == expect, response.text
    return response.json()


def queue(client: Any, person: Person, **params: Any) -> dict[str, Any]:
    response = client.get(QUEUE, params=params, headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page: dict[str, Any]) -> list[int]:
    return [item["observation"]["id"] for item in page["results"]]


def suggest(engine: Any, obs_id: int, taxon_id: int | None, name: str, score: float = 0.8) -> None:
    """species_id's stored result for ``obs_id``: its best suggestion ``name`` (taxon ``taxon_id``)."""
    best = {"label": name.lower(), "scientific_name": name, "common_names": [f"common {name}"], "score": score,
            "taxon_id": taxon_id}
    with transaction(engine.sessions) as session:
        session.add(Enrichment(observation_id=obs_id, plugin="species_id", status="done", attempts=1,
                               result={"outcome": "identified", "best": best, "results": [best]},
                               finished_at=utcnow()))


def rows(engine: Any, table: Any) -> list[Any]:
    with engine.db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]


@pytest.fixture
def photo(photos: dict[str, bytes]) -> bytes:
    return photos["chelsea.jpg"]


# -- the queue ----------------------------------------------------------------------------------


def test_an_expert_subscribed_to_a_class_sees_both_projects_best_first_in_pages(client, engine, taxa, people, photo):
    ana, ben, mod, op, eva = (people[n] for n in ("ana", "ben", "mod", "op", "eva"))
    agreed = observe(client, ana, "wild", photo=photo)           # oldest, identified, all agree
    fresh = observe(client, ana, "double", photo=photo)          # no identification yet
    argued = observe(client, ana, "wild", photo=photo)           # identifications that disagree
    fresher = observe(client, ana, "double", photo=photo)        # no identification yet, newer
    bird = observe(client, ana, "wild", photo=photo)             # a bird: not in Mammalia
    elsewhere = observe(client, ana, "plain", photo=photo)       # a project without identifications
    # the identification service's own API: a genus agreed by two (still needs_id); a genus agreed
    # by three with one dissenter
    for person in (ana, ben):
        identify(client, person, agreed, taxa["Vulpes"])
    for person, taxon in ((ana, "Vulpes"), (ben, "Vulpes"), (mod, "Vulpes"), (op, "Felis catus")):
        identify(client, person, argued, taxa[taxon])
    suggest(engine, fresh, taxa["Felis catus"], "Felis catus", 0.91)
    suggest(engine, fresher, taxa["Canis lupus"], "Canis lupus")
    suggest(engine, bird, taxa["Turdus merula"], "Turdus merula")
    suggest(engine, elsewhere, taxa["Felis catus"], "Felis catus")

    subscribe(client, eva, taxon_id=taxa["Mammalia"])
    first = queue(client, eva, per_page=2)
    assert (first["total_results"], first["page"], first["per_page"]) == (4, 1, 2)
    assert ids(first) == [fresh, fresher]
    second = queue(client, eva, per_page=2, page=2)
    assert ids(second) == [argued, agreed]
    assert queue(client, eva, per_page=2, page=3)["results"] == []

    top = first["results"][0]
    assert top["observation"]["project"] == "double" and top["observation"]["grade"] == "needs_id"
    assert top["observation"]["contributor_id"] is None  # the public form: no contributor
    assert top["suggestion"] == {"taxon_id": taxa["Felis catus"], "name": "Felis catus",
                                 "common_name": "common Felis catus", "score": 0.91}
    assert top["taxon"] == {"id": taxa["Felis catus"], "name": "Felis catus", "rank": "species"}
    assert (top["identifications_count"], top["community_taxon"]) == (0, None)
    [shown] = top["photos"]
    assert shown["content_type"] == "image/jpeg"
    assert client.get(shown["url"], headers=eva.headers).content == photo

    argued_item, agreed_item = second["results"]
    vulpes = {"id": taxa["Vulpes"], "name": "Vulpes", "rank": "genus"}
    assert (argued_item["identifications_count"], argued_item["disagreements"]) == (4, 1)
    assert argued_item["community_taxon"] == argued_item["taxon"] == vulpes
    assert (agreed_item["identifications_count"], agreed_item["agreements"], agreed_item["disagreements"]) == (2, 2, 0)
    assert agreed_item["observation"]["grade"] == "needs_id"

    # narrowed to a project, to a taxon below the subscription
    assert ids(queue(client, eva, project="double")) == [fresh, fresher]
    assert ids(queue(client, eva, taxon_id=taxa["Canidae"])) == [fresher, argued, agreed]
    # a second subscription adds birds; an expert who subscribed to nothing has an empty queue
    subscribe(client, eva, taxon_id=taxa["Aves"])
    assert bird in ids(queue(client, eva))
    other = make_person(engine, "Xena", {"wild": "expert"})
    assert queue(client, other) == {"total_results": 0, "page": 1, "per_page": 30, "results": []}


def test_what_the_expert_identified_or_observed_leaves_their_queue(client, engine, taxa, people, photo):
    ana, eva = people["ana"], people["eva"]
    theirs = observe(client, eva, "wild", photo=photo)
    done = observe(client, ana, "wild", photo=photo)
    waiting = observe(client, ana, "wild", photo=photo)
    for obs_id in (theirs, done, waiting):
        suggest(engine, obs_id, taxa["Vulpes vulpes"], "Vulpes vulpes")
    subscribe(client, eva, taxon_id=taxa["Carnivora"])
    assert ids(queue(client, eva)) == [done, waiting]
    identify(client, eva, done, taxa["Vulpes vulpes"])
    assert ids(queue(client, eva)) == [waiting]
    # another expert sees the others, the identified one last
    subscribe(client, people["op"], taxon_id=taxa["Carnivora"])
    assert ids(queue(client, people["op"])) == [theirs, waiting, done]
    # withdrawn, it is hers to do again
    mine = identify(client, eva, waiting, taxa["Vulpes vulpes"])
    assert ids(queue(client, eva)) == []
    withdrawn = client.post(f"{API}/identifications/{mine['id']}/withdraw", headers=eva.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    assert ids(queue(client, eva)) == [waiting]


def test_never_a_private_project_nor_a_private_place_unless_staff(client, engine, taxa, people, photo):
    ana, eva, mod, op = people["ana"], people["eva"], people["mod"], people["op"]
    hidden_project = observe(client, ana, "closed", photo=photo)
    hidden_place = observe(client, ana, "wild", photo=photo, location_privacy="private")
    unpublished = observe(client, ana, "wild", photo=photo)
    shown = observe(client, ana, "wild", photo=photo)
    for obs_id in (hidden_project, hidden_place, unpublished, shown):
        suggest(engine, obs_id, taxa["Felis catus"], "Felis catus")
    moderate = client.post(f"{API}/observations/{unpublished}/moderation", json={"action": "unpublish"},
                           headers=mod.headers)
    assert moderate.status_code == 200, moderate.text

    for person in (eva, mod, op):
        subscribe(client, person, taxon_id=taxa["Animalia"])
    # eva is an expert of closed, not its staff: she may not read others' observations there
    assert ids(queue(client, eva)) == [shown]
    # a box around the private place finds nothing either
    subscribe(client, eva, place={"west": -180, "south": -90, "east": 180, "north": 90})
    assert ids(queue(client, eva)) == [shown]
    # wild's moderator sees wild's private place and unpublished one, exactly, but not closed's
    page = queue(client, mod)
    assert ids(page) == [hidden_place, unpublished, shown]
    assert page["results"][0]["observation"]["location"]["lat"] == 41.39
    assert page["results"][0]["observation"]["contributor_id"] == ana.account_id
    # an operator is staff everywhere
    assert ids(queue(client, op)) == [hidden_project, hidden_place, unpublished, shown]


def test_an_obscured_place_is_matched_shown_and_filtered_at_its_public_cell(client, engine, taxa, people, photo):
    ana, eva, mod = people["ana"], people["eva"], people["mod"]
    # wild's obscured cell has 1 decimal place: 41.3912, 2.1721 is shown as 41.4, 2.2
    obscured = observe(client, ana, "wild", photo=photo, location_privacy="obscured",
                       location={"lat": 41.3912, "lon": 2.1721, "accuracy_m": 5})
    exact_box = {"west": 2.17, "south": 41.39, "east": 2.175, "north": 41.392}
    cell_box = {"west": 2.19, "south": 41.395, "east": 2.21, "north": 41.41}
    subscribe(client, eva, place=exact_box)
    assert queue(client, eva)["results"] == []  # the exact place is not what eva may see
    subscribe(client, eva, place=cell_box)
    [item] = queue(client, eva)["results"]
    assert item["observation"]["id"] == obscured
    assert item["observation"]["location"] == {"lat": 41.4, "lon": 2.2, "accuracy_m": pytest.approx(11100.0),
                                               "obscured": True}
    assert item["suggestion"] is None and item["taxon"] is None
    # a taxon and a place together: both must match
    subscribe(client, eva, taxon_id=taxa["Aves"], place=exact_box)
    assert len(queue(client, eva)["results"]) == 1
    # staff of wild see and match the exact place
    subscribe(client, mod, place=exact_box)
    [staff_item] = queue(client, mod)["results"]
    assert staff_item["observation"]["location"]["lat"] == 41.3912


def test_subscriptions_are_listed_kept_once_and_deleted(client, taxa, people):
    eva = people["eva"]
    box = {"west": 170.0, "south": -50.0, "east": -170.0, "north": -30.0}  # across the antimeridian
    first = subscribe(client, eva, taxon_id=taxa["Aves"])
    assert first["taxon"] == {"id": taxa["Aves"], "name": "Aves", "rank": "class"} and first["place"] is None
    second = subscribe(client, eva, taxon_id=taxa["Felis catus"], place=box)
    assert second["place"] == box
    again = subscribe(client, eva, expect=200, taxon_id=taxa["Aves"])
    assert again["id"] == first["id"]
    listed = client.get(SUBS, headers=eva.headers).json()["items"]
    assert listed == [first, second]  # as answered when made, the time in UTC
    assert client.get(SUBS, headers=people["mod"].headers).json()["items"] == []
    assert client.delete(f"{SUBS}/{first['id']}", headers=people["mod"].headers).status_code == 404
    assert client.delete(f"{SUBS}/{first['id']}", headers=eva.headers).status_code == 204
    assert [s["id"] for s in client.get(SUBS, headers=eva.headers).json()["items"]] == [second["id"]]
    assert client.delete(f"{SUBS}/{first['id']}", headers=eva.headers).status_code == 404


@pytest.mark.parametrize("body, code", [
    ({"taxon_id": 999_999}, "unknown_taxon"),
    ({}, "empty_subscription"),
    ({"taxon_id": None, "place": None}, "empty_subscription"),
    ({"place": {"west": 2, "south": 42, "east": 3, "north": 41}}, "invalid_bbox"),
    ({"place": {"west": 200, "south": 41, "east": 3, "north": 42}}, "invalid_bbox"),
    ({"place": {"west": 2, "south": 41, "east": 3}}, "invalid_request"),
    ({"taxon_id": "Aves"}, "invalid_request"),
    ({"taxon_id": 1, "colour": "red"}, "invalid_request"),
])
def test_a_bad_subscription_is_a_clear_422_and_stores_nothing(client, engine, taxa, people, body, code):
    from plugins.identification.db import expert_subscriptions

    response = client.post(SUBS, json=body, headers=people["eva"].headers)
    assert (response.status_code, response.json()["error"]["code"]) == (422, code), response.text
    assert rows(engine, expert_subscriptions) == []


def test_a_group_with_no_taxa_below_it_is_refused(client, engine, taxa, people):
    from plugins.identification.db import expert_subscriptions

    eva = people["eva"]
    response = client.post(SUBS, json={"taxon_id": taxa["Plantae"]}, headers=eva.headers)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "empty_taxon_group")
    assert "Plantae" in response.json()["error"]["message"]
    refused = client.get(QUEUE, params={"taxon_id": taxa["Plantae"]}, headers=eva.headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "empty_taxon_group")
    # a species has nothing below it, and that is fine
    subscribe(client, eva, taxon_id=taxa["Turdus merula"])
    assert len(rows(engine, expert_subscriptions)) == 1


def test_only_experts_subscribe_and_read_the_queue(client, engine, taxa, people):
    from plugins.identification.db import expert_subscriptions

    for who in ("ana", "out"):
        for method, url, body in (("post", SUBS, {"taxon_id": taxa["Aves"]}), ("get", SUBS, None),
                                  ("get", QUEUE, None)):
            response = client.request(method, url, json=body, headers=people[who].headers)
            assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden"), response.text
    anonymous = client.get(QUEUE)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
    # a moderator of a project with identifications is an expert here
    subscribe(client, people["mod"], taxon_id=taxa["Aves"])
    assert len(rows(engine, expert_subscriptions)) == 1


@pytest.mark.parametrize("params, status, code", [
    ({"per_page": 0}, 422, "invalid_request"),
    ({"per_page": 201}, 422, "invalid_request"),
    ({"page": 0}, 422, "invalid_request"),
    ({"page": 1001}, 422, "invalid_request"),
    ({"taxon_id": 999_999}, 422, "unknown_taxon"),
    ({"taxon_id": "x"}, 422, "invalid_request"),
    ({"project": "nowhere"}, 404, "unknown_project"),
    ({"project": "plain"}, 409, "identifications_off"),
])
def test_bad_queue_parameters_are_clear_errors(client, taxa, people, params, status, code):
    response = client.get(QUEUE, params=params, headers=people["eva"].headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


# -- cost ----------------------------------------------------------------------------------------


def _many(engine: Any, taxa: dict[str, int], count: int) -> None:
    """``count`` published needs_id observations in wild and double, half with a suggestion, some identified."""
    from plugins.identification.db import observation_taxa

    species = [taxa[n] for n in ("Vulpes vulpes", "Canis lupus", "Felis catus", "Turdus merula")]
    start = utcnow() - timedelta(days=1)
    obs = [{"project": ("wild", "double")[i % 2], "content_hash": f"h{i}", "observed_at": start, "lat": 41.39,
            "lon": 2.17, "fields": {"n": i}, "status": "published", "grade": "needs_id",
            "location_privacy": ("open", "obscured", "private")[i % 3], "created_at": start + timedelta(seconds=i),
            "updated_at": start} for i in range(count)]
    with engine.db.begin() as conn:
        conn.execute(Observation.__table__.insert(), obs)
        new = list(conn.scalars(select(Observation.id).order_by(Observation.id)))
        conn.execute(Enrichment.__table__.insert(), [
            {"observation_id": o, "plugin": "species_id", "status": "done", "attempts": 1, "updated_at": start,
             "result": {"best": {"scientific_name": "x", "score": 0.5, "taxon_id": species[o % 4]}}}
            for o in new if o % 2 == 0])
        conn.execute(observation_taxa.insert(), [
            {"observation_id": o, "project": ("wild", "double")[(o - new[0]) % 2], "taxon_id": species[o % 4],
             "community_taxon_id": None, "identifications_count": o % 3, "agreements": 0,
             "disagreements": o % 5 == 0, "updated_at": start} for o in new if o % 2 == 1])


def test_a_page_of_50_costs_the_same_few_queries_whatever_its_size(client, engine, taxa, people):
    eva = people["eva"]
    _many(engine, taxa, 3000)
    subscribe(client, eva, taxon_id=taxa["Mammalia"])
    subscribe(client, eva, place={"west": 2.0, "south": 41.0, "east": 2.5, "north": 42.0})
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.db, "before_cursor_execute", count)
    timings, counted = {}, {}
    try:
        for per_page in (5, 50):
            queue(client, eva, per_page=per_page)  # once to warm caches
            statements.clear()
            started = time.perf_counter()
            page = queue(client, eva, per_page=per_page)
            timings[per_page] = time.perf_counter() - started
            counted[per_page] = len(statements)
            assert len(page["results"]) == per_page
    finally:
        event.remove(engine.db, "before_cursor_execute", count)
    print(f"queue page of 50 over 3000 observations: {timings[50] * 1000:.0f} ms, {counted[50]} statements "
          f"(page of 5: {timings[5] * 1000:.0f} ms, {counted[5]} statements); total {page['total_results']}")
    assert counted[50] == counted[5] <= 12
    assert page["total_results"] == 2000  # private places left out


# -- with the real species_id ----------------------------------------------------------------------


def _species_registry() -> str:
    import yaml

    from plugins.species_id import model_build

    services = yaml.safe_load((Path(__file__).resolve().parents[3] / "registry.yaml").read_text())["services"]
    species = services["species_id"]
    species["config"] = {"default_model": model_build.DEFAULT_MODEL["name"],
                         "models": [{"name": model_build.DEFAULT_MODEL["name"], "builtin": "efficientnet_lite0"}]}
    both = {"species_id": {}, "identification": {}}
    return yaml.safe_dump({"services": {"species_id": species, "identification": services["identification"]},
                           "projects": [
        {"slug": "garden", "name": "Garden", "public": True, "auto_publish": True, "timezone": "Europe/Madrid",
         "services": both},
        {"slug": "street", "name": "Street", "public": True, "auto_publish": True, "timezone": "Europe/Madrid",
         "location_precision": 2, "services": both},
    ]}, sort_keys=False)


def test_a_real_photo_reaches_the_experts_of_its_genus_with_the_machine_suggestion(make_engine, built_model, photos):
    """species_id on a real photo of a cat, the default taxonomy (its label file), two projects."""
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from core.taxonomy import ids_by_name, load_defaults

    engine = make_engine(_species_registry(), plugins="")
    models = Path(engine.settings.data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / built_model.name).symlink_to(built_model)
    load_defaults(engine)
    felis = ids_by_name(engine, ["Felis"])["Felis"]
    ana = make_person(engine, "Ana", {"garden": "contributor", "street": "contributor"})
    eva = make_person(engine, "Eva", {"street": "expert"})
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        cats = [observe(client, ana, project, photo=photos["chelsea.jpg"]) for project in ("garden", "street")]
        observe(client, ana, "garden", photo=photos["coffee.jpg"])  # no organism: in nobody's queue
        subscribe(client, eva, taxon_id=felis)
        page = queue(client, eva)
    assert ids(page) == cats
    first = page["results"][0]
    best = first["observation"]["enrichments"]["species_id"]["result"]["best"]
    assert first["suggestion"]["name"] == best["scientific_name"] == "Felis catus"
    assert first["suggestion"]["taxon_id"] == best["taxon_id"] == first["taxon"]["id"]
    assert first["suggestion"]["score"] == best["score"]
    assert page["results"][1]["observation"]["location"]["lat"] == 41.39  # street's public grid
