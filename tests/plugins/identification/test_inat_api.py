"""``/inat/v1`` in process: iNaturalist's envelope and fields, its filters, what the public may
not learn (obscured and private places, unpublished observations, projects that are not public or
without the service, people), refusals in iNaturalist's error shape, photo sizes without metadata,
and a page of 200 observations in a fixed number of queries.

pyinaturalist itself reads a running server in test_inat_pyinaturalist.py."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from sqlalchemy import event, insert, update

from core.db.models import Observation, TaxonName
from core.db.session import transaction
from core.taxonomy.names import search_key
from plugins.identification.db import identifications, observation_taxa
from core.secret_keys import forget_cached_keys
from plugins.identification import inat_people
from plugins.identification.inat_people import Handles
from plugins.identification.inat_projects import project_number
from tests.plugins.identification.conftest import Person, identify, observe

INAT = "/inat/v1"


# -- helpers ------------------------------------------------------------------------------------


def inat(client: Any, path: str, expect: int = 200, **params: Any) -> dict[str, Any]:
    response = client.get(f"{INAT}{path}", params=params)
    assert response.status_code == expect, response.text
    return response.json()


def ids_of(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["results"]]


def set_status(engine: Any, obs_id: int, status: str) -> None:
    with transaction(engine.sessions) as session:
        session.execute(update(Observation).where(Observation.id == obs_id).values(status=status))


def name_taxon(engine: Any, taxon_id: int, name: str, lexicon: str) -> None:
    with transaction(engine.sessions) as session:
        session.add(TaxonName(taxon_id=taxon_id, name=name, lexicon=lexicon, search=search_key(name), preferred=True))


def exif_jpeg(jpeg: bytes, orientation: int, text: str) -> bytes:
    """``jpeg`` with an EXIF block: an orientation and an image description (``text``)."""
    described = text.encode() + b"\0"
    ifd = struct.pack("<H", 2) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    ifd += struct.pack("<HHII", 0x010E, 2, len(described), 8 + 2 + 2 * 12 + 4) + struct.pack("<I", 0)
    payload = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd + described
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


@pytest.fixture
def fox(client: Any, people: dict[str, Person], taxa: dict[str, int], photos: dict[str, bytes]) -> int:
    """Ana's fox in ``wild``, with a photo, identified Vulpes vulpes by Ana and Ben: research grade."""
    obs_id = observe(client, people["ana"], photo=photos["chelsea.jpg"], fields={"note": "a fox crossing the path",
                                                                                 "place_guess": "Parc Güell"})
    identify(client, people["ana"], obs_id, taxa["Vulpes vulpes"])
    identify(client, people["ben"], obs_id, taxa["Vulpes vulpes"])
    return obs_id


# -- what is listed, and how ----------------------------------------------------------------------


def test_an_observation_reads_as_inaturalist_shows_it(client: Any, engine: Any, fox: int, taxa: dict[str, int],
                                                      people: dict[str, Person]) -> None:
    page = inat(client, "/observations")
    assert (page["total_results"], page["page"], page["per_page"]) == (1, 1, 30)
    obs = page["results"][0]
    assert obs["id"] == fox and obs["quality_grade"] == "research"
    assert obs["observed_on"] == "2026-05-01" and obs["time_observed_at"] == "2026-05-01T09:30:00+02:00"
    assert obs["location"] == "41.39,2.17" and obs["geojson"] == {"type": "Point", "coordinates": [2.17, 41.39]}
    assert (obs["obscured"], obs["geoprivacy"], obs["mappable"]) == (False, None, True)
    assert obs["positional_accuracy"] == 1110  # the project's grid of 2 decimals, as the core API shows it
    assert obs["place_guess"] == "Parc Güell" and obs["description"] == "a fox crossing the path"
    assert (obs["license_code"], obs["captive"]) == ("cc-by", False)
    taxon = obs["taxon"]
    assert (taxon["id"], taxon["name"], taxon["rank"], taxon["rank_level"]) == \
        (taxa["Vulpes vulpes"], "Vulpes vulpes", "species", 10)
    lineage = ["Animalia", "Chordata", "Mammalia", "Carnivora", "Canidae", "Vulpes"]
    assert taxon["ancestor_ids"] == [taxa[n] for n in lineage]
    assert taxon["ancestry"] == "/".join(str(taxa[n]) for n in lineage)
    assert obs["community_taxon_id"] == taxa["Vulpes vulpes"] and obs["species_guess"] == "Vulpes vulpes"
    assert [(i["category"], i["current"], i["taxon"]["name"]) for i in obs["identifications"]] == \
        [("improving", True, "Vulpes vulpes"), ("supporting", True, "Vulpes vulpes")]
    assert (obs["identifications_count"], obs["num_identification_agreements"],
            obs["num_identification_disagreements"]) == (2, 2, 0)
    assert obs["project_ids"] == [project_number("wild")]
    photo = obs["photos"][0]
    assert photo["url"].endswith(f"/inat/v1/photos/{photo['id']}/square.jpg")
    assert photo["original_dimensions"] == {"width": 451, "height": 300}
    assert photo["attribution"] == f"(c) {obs['user']['login']}, some rights reserved (CC BY)"
    assert obs["observation_photos"] == [{"id": photo["id"], "position": 0, "photo": photo}]
    assert inat(client, f"/observations/{fox}")["results"] == [obs]


def test_people_are_pseudonymous_handles_never_names_emails_or_account_ids(
        client: Any, engine: Any, fox: int, people: dict[str, Person]) -> None:
    text = client.get(f"{INAT}/observations").text
    for person in ("Ana", "Ben"):
        assert person not in text
    assert "@" not in text and "e-mail" not in text
    obs = json.loads(text)["results"][0]
    observer, (first, second) = obs["user"], [i["user"] for i in obs["identifications"]]
    assert observer["login"].startswith("observer-") and first["login"].startswith("identifier-")
    # the observer's own identification is under another handle than their observations: an
    # identification's handle (shown beside a display name in the engine's identification API)
    # never tells who made the observation
    assert observer["id"] != first["id"] and first["id"] != second["id"]
    assert observer["id"] not in (people["ana"].account_id, people["ben"].account_id)
    # stable: the same handles in every answer, and after a restart (the key is kept in the data folder)
    assert inat(client, f"/observations/{fox}")["results"][0]["user"] == observer
    forget_cached_keys()
    assert Handles(inat_people._key(engine)).user("observer", people["ana"].account_id) == observer
    key_file = engine.settings.data_dir / inat_people.KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_project_ids_are_numbers_that_projects_and_filters_take(client: Any, fox: int) -> None:
    number = project_number("wild")
    for value in (number, "wild"):
        project = inat(client, f"/projects/{value}")["results"]
        assert [(p["id"], p["slug"], p["title"]) for p in project] == [(number, "wild", "Wild")]
        assert ids_of(inat(client, "/observations", project_id=value)) == [fox]
    assert ids_of(inat(client, "/observations", project_id=project_number("double"))) == []
    # projects the API does not serve are not there: not public, or without the service
    assert inat(client, "/projects/closed,plain")["results"] == []


# -- privacy --------------------------------------------------------------------------------------


def test_obscured_and_private_places_never_come_out_exact(client: Any, people: dict[str, Person]) -> None:
    where = {"lat": 41.3851, "lon": 2.1734, "accuracy_m": 5}
    obscured = observe(client, people["ana"], location=where, location_privacy="obscured")
    private = observe(client, people["ana"], location=where, location_privacy="private",
                      fields={"place_guess": "my garden, 12 Carrer Gran"})
    found = {o["id"]: o for o in inat(client, "/observations")["results"]}
    assert (found[obscured]["location"], found[obscured]["obscured"], found[obscured]["geoprivacy"]) == \
        ("41.4,2.2", True, "obscured")
    assert found[obscured]["positional_accuracy"] == 11100
    gone = found[private]
    assert (gone["location"], gone["geojson"], gone["positional_accuracy"], gone["place_guess"]) == (None,) * 4
    assert (gone["geoprivacy"], gone["obscured"], gone["mappable"]) == ("private", True, False)
    text = client.get(f"{INAT}/observations").text
    assert "41.385" not in text and "2.173" not in text and "Carrer Gran" not in text

    def boxed(swlat: float, swlng: float, nelat: float, nelng: float) -> list[int]:
        return ids_of(inat(client, "/observations", swlat=swlat, swlng=swlng, nelat=nelat, nelng=nelng))

    # a box around the exact place finds neither (the obscured one shows its cell's centre, 41.4,2.2)
    assert boxed(41.38, 2.17, 41.39, 2.18) == []
    assert boxed(41.35, 2.15, 41.45, 2.25) == [obscured]
    assert ids_of(inat(client, "/observations", geo="false")) == [private]


def test_only_published_observations_of_public_projects_with_the_service(
        client: Any, engine: Any, people: dict[str, Person], photos: dict[str, bytes]) -> None:
    shown = observe(client, people["ana"], photo=photos["coffee.jpg"])
    pending = observe(client, people["ana"], photo=photos["rocket.jpg"])
    set_status(engine, pending, "pending")
    closed = observe(client, people["ana"], "closed", photo=photos["astronaut.jpg"])
    plain = observe(client, people["ana"], "plain")
    page = inat(client, "/observations")
    assert ids_of(page) == [shown] and page["total_results"] == 1
    assert ids_of(inat(client, f"/observations/{pending},{closed},{plain},{shown}")) == [shown]
    for project in ("closed", "plain", "nope"):  # the same refusal: it does not tell which exist
        error = inat(client, "/observations", 422, project_id=project)
        assert error["status"] == 422 and error["error"]["code"] == "invalid_filter_value"
        assert error["error"]["message"] == f"project_id: no project {project!r} here (a number or a slug " \
                                            "/inat/v1/projects gives)"
    with transaction(engine.readers) as session:
        media = {o.id: o.media[0].id for o in session.query(Observation).where(
            Observation.id.in_([shown, pending, closed]))}
    assert client.get(f"{INAT}/photos/{media[shown]}/small.jpg").status_code == 200
    for hidden in (media[pending], media[closed], 999_999):
        response = client.get(f"{INAT}/photos/{hidden}/small.jpg")
        assert response.status_code == 404 and response.json() == {
            "error": {"code": "photo_not_found", "message": f"no photo {hidden}"}, "status": 404}


def test_photo_sizes_are_made_once_without_metadata_and_stand_upright(
        client: Any, engine: Any, people: dict[str, Person], photos: dict[str, bytes]) -> None:
    sent = exif_jpeg(photos["chelsea.jpg"], 6, "secret place 41.3851,2.1734")  # 451x300, turned a quarter
    obs_id = observe(client, people["ana"], photo=sent)
    photo = inat(client, f"/observations/{obs_id}")["results"][0]["photos"][0]
    expected = {"square": (75, 75), "thumb": (67, 100), "small": (160, 240), "medium": (300, 451),
                "large": (300, 451), "original": (300, 451)}
    for size, (width, height) in expected.items():
        response = client.get(photo["url"].replace("http://testserver", "").replace("square", size))
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert b"Exif" not in response.content and b"secret" not in response.content
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert (image.shape[1], image.shape[0]) == (width, height), size
    kept = sorted(p.name for p in (engine.settings.data_dir / "inat-photos").rglob("*.jpg"))
    assert len(kept) == 6
    assert client.get(f"{INAT}/photos/{photo['id']}/huge.jpg").json()["status"] == 422


# -- filters -------------------------------------------------------------------------------------


def test_filters_select_as_inaturalist_does(client: Any, engine: Any, people: dict[str, Person],
                                            taxa: dict[str, int], photos: dict[str, bytes]) -> None:
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    fox = observe(client, ana, observed_at="2026-05-01T00:30:00+02:00", photo=photos["chelsea.jpg"])  # UTC: 30 April
    wolf = observe(client, ben, observed_at="2026-05-03T12:00:00+02:00")
    cat = observe(client, ben, observed_at="2026-05-05T12:00:00+02:00")
    bare = observe(client, ana, observed_at="2026-05-07T12:00:00+02:00")
    for obs_id, name in ((fox, "Vulpes vulpes"), (wolf, "Canis lupus"), (cat, "Felis catus")):
        identify(client, eva, obs_id, taxa[name])
    name_taxon(engine, taxa["Vulpes vulpes"], "Red Fox", "en")
    name_taxon(engine, taxa["Vulpes vulpes"], "Zorro común", "es")

    def found(**params: Any) -> list[int]:
        return sorted(ids_of(inat(client, "/observations", **params)))

    assert found(taxon_id=taxa["Canidae"]) == sorted([fox, wolf])
    assert found(taxon_id=f"{taxa['Felidae']},{taxa['Vulpes']}") == sorted([fox, cat])
    assert found(d1="2026-05-01", d2="2026-05-03") == sorted([fox, wolf])  # the project's day, not UTC's
    assert found(d2="2026-04-30") == []
    assert found(d1="2026-05-04T00:00:00Z") == sorted([cat, bare])
    # without a photo or a sound an observation stays casual; the fox (a photo, one identification) needs an id
    assert found(quality_grade="casual") == sorted([wolf, cat, bare]) and found(quality_grade="needs_id") == [fox]
    assert found(quality_grade="needs_id,research") == [fox]
    assert found(id_above=wolf) == sorted([cat, bare]) and found(id_below=wolf) == [fox]
    assert found(id=f"{fox},{cat}") == sorted([fox, cat])
    assert found(q="vulp") == [fox] and found(q="fox") == [fox] and found(q="zorro comun") == [fox]
    assert found(photos="true") == [fox] and found(photos="false") == sorted([wolf, cat, bare])
    handle = inat(client, f"/observations/{fox}")["results"][0]["user"]
    assert found(user_id=handle["id"]) == sorted([fox, bare]) == found(user_login=handle["login"])
    identifier = inat(client, f"/observations/{fox}")["results"][0]["identifications"][0]["user"]
    assert found(user_login=identifier["login"]) == [] and found(user_id="observer-zzzzzz") == []
    today = datetime.now(ZoneInfo("Europe/Madrid")).date()  # a day means the project's day, for created_d* too
    assert len(found(created_d1=today.isoformat(), created_d2=today.isoformat())) == 4
    assert found(updated_since=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()) == []
    by_date = inat(client, "/observations", order_by="observed_on", order="asc")
    assert ids_of(by_date) == [fox, wolf, cat, bare]
    assert ids_of(inat(client, "/observations", order_by="id", order="desc")) == [bare, cat, wolf, fox]
    first, second = (inat(client, "/observations", per_page=3, page=n, order_by="id", order="asc") for n in (1, 2))
    assert (ids_of(first), ids_of(second), second["total_results"]) == ([fox, wolf, cat], [bare], 4)
    counted = inat(client, "/observations", per_page=0)
    assert (counted["total_results"], counted["results"]) == (4, [])
    common = inat(client, f"/observations/{fox}", locale="es")["results"][0]["taxon"]
    assert common["preferred_common_name"] == "Zorro común"
    # captive: the "wild" quality metric failing (more disagree than agree votes)
    vote = client.put(f"/api/v1/observations/{wolf}/quality/wild", json={"agree": False}, headers=ana.headers)
    assert vote.status_code == 200, vote.text
    assert {o["id"]: o["captive"] for o in inat(client, "/observations")["results"]} == \
        {fox: False, wolf: True, cat: False, bare: False}
    assert client.put(f"/api/v1/observations/{wolf}/quality/wild", json={"agree": True},
                      headers=eva.headers).status_code == 200
    assert inat(client, f"/observations/{wolf}")["results"][0]["captive"] is False  # half agree: it passes


def test_bad_parameters_are_refused_in_inaturalists_shape(client: Any, fox: int, taxa: dict[str, int]) -> None:
    cases = {
        "per_page=201": (422, "invalid_request"), "page=0": (422, "invalid_request"),
        "per_page=abc": (422, "invalid_request"), "d1=2026-02-30": (422, "invalid_filter_value"),
        "d2=yesterday": (422, "invalid_request"), "taxon_id=999999": (422, "invalid_filter_value"),
        "order_by=votes": (422, "invalid_request"), "order_by=location": (422, "invalid_request"),
        "quality_grade=great": (422, "invalid_request"), "swlat=41": (422, "invalid_filter_value"),
        "created_d1=0001-01-01T00:00:00%2B01:00": (422, "invalid_filter_value"),
        "colour=red": (422, "unknown_parameter"), "page=51&per_page=200": (403, "result_window_too_large"),
        "id_above=9223372036854775808": (422, "invalid_request"), "q=a%00b": (422, "invalid_request"),
    }
    for query, (status, code) in cases.items():
        response = client.get(f"{INAT}/observations?{query}")
        body = response.json()
        assert (response.status_code, body["status"], body["error"]["code"]) == (status, status, code), query
        assert body["error"]["message"]
    wrong = client.get(f"{INAT}/observations", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["status"], wrong.json()["error"]["code"]) == (401, 401, "invalid_token")
    assert inat(client, "/taxa", 422, taxon_id=999999)["error"]["code"] == "invalid_filter_value"
    assert inat(client, "/observations/1,x", 422)["status"] == 422
    assert inat(client, "/observations/999999")["results"] == []  # as iNaturalist: nothing, not an error


# -- taxa ------------------------------------------------------------------------------------------


def test_taxa_search_and_details(client: Any, engine: Any, taxa: dict[str, int]) -> None:
    name_taxon(engine, taxa["Vulpes vulpes"], "Red Fox", "en")
    name_taxon(engine, taxa["Vulpes vulpes"], "Guineu", "ca")
    found = inat(client, "/taxa", q="vulpes")
    assert [t["name"] for t in found["results"]] == ["Vulpes", "Vulpes lagopus", "Vulpes vulpes"]
    assert [t["name"] for t in inat(client, "/taxa", q="guin")["results"]] == ["Vulpes vulpes"]
    assert inat(client, "/taxa", q="fox")["results"][0]["preferred_common_name"] == "Red Fox"
    assert inat(client, "/taxa", q="fox", locale="ca")["results"][0]["preferred_common_name"] == "Guineu"
    species = inat(client, "/taxa", taxon_id=taxa["Canidae"], rank="species")
    assert [t["name"] for t in species["results"]] == ["Canis lupus", "Vulpes lagopus", "Vulpes vulpes"]
    assert [t["name"] for t in inat(client, "/taxa", parent_id=taxa["Vulpes"])["results"]] == \
        ["Vulpes lagopus", "Vulpes vulpes"]
    detail = inat(client, f"/taxa/{taxa['Vulpes']},{taxa['Plantae']},999999", all_names="true")
    vulpes, plantae = detail["results"]
    assert [a["name"] for a in vulpes["ancestors"]] == ["Animalia", "Chordata", "Mammalia", "Carnivora", "Canidae"]
    assert [c["name"] for c in vulpes["children"]] == ["Vulpes lagopus", "Vulpes vulpes"]
    assert (plantae["ancestors"], plantae["children"], plantae["names"]) == ([], [], [])
    names = inat(client, f"/taxa/{taxa['Vulpes vulpes']}", all_names="true")["results"][0]["names"]
    assert {(n["name"], n["locale"]) for n in names} == {("Red Fox", "en"), ("Guineu", "ca")}


# -- efficiency ------------------------------------------------------------------------------------


def _many(engine: Any, taxa: dict[str, int], account_id: int, n: int) -> None:
    """``n`` published observations in ``wild``, each with three identifications (direct inserts)."""
    now = datetime.now(timezone.utc)
    with engine.db.begin() as conn:
        for k in range(n):
            obs_id = conn.execute(insert(Observation.__table__).values(
                project="wild", content_hash=f"h{k}", contributor_id=account_id, observed_at=now, lat=41.0, lon=2.0,
                fields={"note": f"n{k}"}, status="published", grade="needs_id", created_at=now, updated_at=now,
                location_privacy="open", comments_locked=False)).inserted_primary_key[0]
            for j, name in enumerate(("Vulpes vulpes", "Vulpes", "Canis lupus")):
                conn.execute(insert(identifications).values(
                    uuid=f"{obs_id}-{j}", observation_id=obs_id, project="wild", account_id=account_id,
                    taxon_id=taxa[name], current=True, created_at=now, updated_at=now))
            conn.execute(insert(observation_taxa).values(observation_id=obs_id, project="wild",
                                                         taxon_id=taxa["Vulpes"], updated_at=now))


def test_a_page_of_200_takes_as_many_reads_as_a_page_of_10_and_counts_as_a_download(client: Any, engine: Any, taxa: dict[str, int],
                                                             people: dict[str, Person]) -> None:
    _many(engine, taxa, people["ana"].account_id, 210)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("SELECT"):  # not SQLite's BEGIN
            statements.append(statement)

    event.listen(engine.db, "before_cursor_execute", seen)
    try:
        counts = {}
        for per_page in (10, 99, 200):
            statements.clear()
            page = inat(client, "/observations", per_page=per_page)
            assert len(page["results"]) == per_page and page["total_results"] == 210
            assert all(len(o["identifications"]) == 3 for o in page["results"])
            counts[per_page] = len(statements)
    finally:
        event.remove(engine.db, "before_cursor_execute", seen)
    # the page (its "wild" votes counted in it), its count, its media, its identifications, their taxa
    assert counts[10] == counts[99] == 5, (counts, [s[:60] for s in statements])
    # a page of 100 or more is also a download (core.data_use): two reads more, whatever its length
    assert counts[200] == counts[10] + 2, (counts, [s[:60] for s in statements])
