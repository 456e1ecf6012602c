"""The map's open-data download (no browser): refused without the licence accepted or the CSRF
token (nothing counted, nothing sent), counted per project, licence and day (never who), and the
file is the public export: no contributor, private places left out, obscured ones coarsened."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from core import accounts
from core.engine import Engine
from tests.web.conftest import make_staff
from tests.web.test_map import EXACT, MAP_REGISTRY, add


@pytest.fixture
def registry() -> str:
    return MAP_REGISTRY


@pytest.fixture
def plugins() -> str:
    return "birdsong=tests.support.birdsong"


def csrf_of(client: Any) -> str:
    page = client.get("/map/alpha")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the map page has no download form"
    return found.group(1)


def acceptance_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.text("SELECT * FROM licence_acceptances"))]


def test_a_download_without_acceptance_or_token_is_refused_and_counts_nothing(client: Any, engine: Engine) -> None:
    add(engine, 41.1, 2.1)
    token = csrf_of(client)
    refused = client.post("/map/alpha/download", data={"csrf": token, "format": "csv"})
    assert refused.status_code == 400
    assert "only be downloaded after accepting its licence" in refused.text
    forged = client.post("/map/alpha/download", data={"csrf": "forged", "accept": "yes", "format": "csv"})
    assert forged.status_code == 403
    odd = client.post("/map/alpha/download", data={"csrf": token, "accept": "yes", "format": "xlsx"})
    assert odd.status_code == 400 and "CSV or GeoJSON" in odd.text
    private = client.post("/map/beta/download", data={"csrf": token, "accept": "yes", "format": "csv"})
    assert private.status_code == 404
    assert acceptance_rows(engine) == []


def test_an_accepted_download_is_the_public_export_and_is_counted_without_anyone(client: Any, engine: Engine) -> None:
    person = accounts.create_account(engine, "Ada Lovelace", email="ada@example.org").id
    open_id = add(engine, 41.38123, 2.17456, contributor=person)
    obscured_id = add(engine, *EXACT, privacy="obscured", contributor=person)
    private_id = add(engine, 41.39999, 2.15555, privacy="private", contributor=person)
    add(engine, 41.2, 2.2, status="unpublished", contributor=person)
    token = csrf_of(client)

    response = client.post("/map/alpha/download", data={"csrf": token, "accept": "yes", "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="alpha-open-data.csv"'
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(response.text))}
    assert set(rows) == {open_id, obscured_id, private_id}
    assert "contributor_id" not in next(iter(rows.values()))
    assert "Ada" not in response.text and "ada@" not in response.text
    assert (rows[open_id]["lat"], rows[open_id]["lon"]) == ("41.381", "2.175")
    assert (rows[obscured_id]["lat"], rows[obscured_id]["lon"]) == ("41.4", "2.2")
    assert rows[private_id]["lat"] == rows[private_id]["lon"] == ""

    geojson = client.post("/map/alpha/download", data={"csrf": token, "accept": "yes", "format": "geojson"})
    features = {f["properties"]["id"]: f for f in json.loads(geojson.text)["features"]}
    assert features[private_id]["geometry"] is None
    assert features[obscured_id]["geometry"]["coordinates"] == [2.2, 41.4]

    stored = acceptance_rows(engine)
    assert [(r["project"], r["licence"], r["count"]) for r in stored] == [("alpha", "CC-BY-4.0", 2)]
    assert set(stored[0]) == {"id", "project", "licence", "day", "count"}  # no person, address or cookie


def test_staff_see_the_counts_and_the_public_does_not(client: Any, engine: Engine) -> None:
    token = csrf_of(client)
    for _ in range(3):
        assert client.post("/map/alpha/download", data={"csrf": token, "accept": "yes"}).status_code == 200
    anonymous = client.get("/map/alpha/acceptances", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/sign-in")

    staff = make_staff(engine, "Mo Derator", "mod@example.org", project="alpha", role="moderator")
    signed = client.post("/console/sign-in", data={"email": staff.email, "password": staff.password, "csrf": token},
                         follow_redirects=False)
    assert signed.status_code == 303, signed.text
    counts = client.get("/map/alpha/acceptances").json()
    assert counts["total"] == 3 and counts["days"][0]["licence"] == "CC-BY-4.0"
    assert set(counts["days"][0]) == {"day", "licence", "count"}


def test_a_download_says_what_it_is_for_and_the_observations_count_it(client: Any, engine: Engine) -> None:
    from core import data_use

    person = accounts.create_account(engine, "Ada Lovelace", email="ada@example.org").id
    shown = add(engine, 41.38123, 2.17456, contributor=person)
    hidden = add(engine, 41.2, 2.2, status="unpublished", contributor=person)
    page = client.get("/map/alpha")
    assert 'name="purpose"' in page.text and "never by whom" in page.text
    token = csrf_of(client)
    for purpose in ("research", "research", "education"):
        answer = client.post("/map/alpha/download", data={"csrf": token, "accept": "yes", "format": "csv",
                                                          "purpose": purpose})
        assert answer.status_code == 200
    assert data_use.observation_summary(engine, shown)["purposes"] == {"research": 2, "education": 1}
    assert data_use.observation_summary(engine, hidden)["downloads"] == 0  # not in the open data
    assert "your observations were used in 3 downloads this month: 2 research, 1 education" == \
        data_use.contributor_summary(engine, person)["text"]
    odd = client.post("/map/alpha/download", data={"csrf": token, "accept": "yes", "format": "csv", "purpose": "spam"})
    assert odd.status_code == 422 and "unknown purpose" in odd.text
    assert data_use.observation_summary(engine, shown)["downloads"] == 3


def test_a_project_that_requires_a_purpose_refuses_a_download_without_one(make_engine: Any) -> None:
    from fastapi.testclient import TestClient

    from core import data_use
    from core.api.app import create_app

    engine = make_engine(MAP_REGISTRY.replace("    location_precision: 3\n",
                                              "    location_precision: 3\n    download_purpose: required\n"),
                         plugins="birdsong=tests.support.birdsong")
    shown = add(engine, 41.38123, 2.17456)
    with TestClient(create_app(engine)) as client:
        assert " required" in client.get("/map/alpha").text.split('id="purpose"', 1)[1].split(">", 1)[0]
        token = csrf_of(client)
        refused = client.post("/map/alpha/download", data={"csrf": token, "accept": "yes", "format": "csv"})
        assert refused.status_code == 422 and "choose a purpose" in refused.text
        assert data_use.observation_summary(engine, shown)["downloads"] == 0
        done = client.post("/map/alpha/download", data={"csrf": token, "accept": "yes", "format": "csv",
                                                        "purpose": "policy"})
        assert done.status_code == 200
    assert data_use.observation_summary(engine, shown)["purposes"] == {"policy": 1}
