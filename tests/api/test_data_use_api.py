"""Data use through the HTTP API: downloads (CSV, GeoJSON, Darwin Core Archive) with a purpose,
required where the project says so; the funders' page and an observation's counts; refusals with
their reason and nothing counted; nothing names a downloader."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from core.db.models_codesign import DataDownload, ObservationUse
from core.db.session import transaction
from core.testing import API, bearer, draft, submit
from core.tokens import create_token

PERSON = "{name: Rita Recorder, email: rita@example.org}"
ROOT = Path(__file__).resolve().parents[2]
IDENTIFICATION = json.dumps(yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]["identification"])
REGISTRY = f"""
services: {{identification: {IDENTIFICATION}}}
projects:
  - slug: open
    name: Open
    description: Foxes of the city
    auto_publish: true
    dataset: {{publisher: {PERSON}, contacts: [{PERSON}], creators: [{PERSON}]}}
  - slug: strict
    name: Strict
    auto_publish: true
    download_purpose: required
  - slug: hidden
    name: Hidden
    public: false
    auto_publish: true
  - slug: naturalist
    name: Naturalist
    auto_publish: true
    services: {{identification: {{}}}}
"""


@pytest.fixture
def engine(make_engine):  # noqa: ANN001, ANN201 (this module's registry, not tests/api's)
    return make_engine(REGISTRY)


def error(response) -> tuple[int, str]:  # noqa: ANN001
    body = response.json()["error"]
    return response.status_code, body["details"][0]["code"] if body.get("details") else body["code"]


def downloads(engine) -> list[DataDownload]:  # noqa: ANN001
    with transaction(engine.readers) as session:
        return list(session.scalars(sa.select(DataDownload).order_by(DataDownload.id)))


def test_downloads_with_purposes_are_counted_for_funders(client, engine):
    contributor = create_token(engine, "contributor", "open")
    ids = [submit(client, "open", draft(), token=contributor.token)["id"] for _ in range(3)]
    admin = create_token(engine, "admin", "open", "Adam Admin")

    csv = client.get(f"{API}/projects/open/export", params={"purpose": "research", "purpose_text": "fox density"})
    assert csv.status_code == 200 and csv.text.count("\n") == 4
    geo = client.get(f"{API}/projects/open/export", params={"format": "geojson", "purpose": "education"})
    assert geo.status_code == 200 and len(geo.json()["features"]) == 3
    dwca = client.get(f"{API}/projects/open/export/dwca", params={"purpose": "policy"}, headers=bearer(admin.token))
    assert dwca.status_code == 200 and "occurrence.txt" in zipfile.ZipFile(io.BytesIO(dwca.content)).namelist()
    assert client.get(f"{API}/projects/open/export").status_code == 200  # optional here: counted as unstated

    stored = downloads(engine)
    assert [(d.channel, d.purpose, d.rows) for d in stored] == [("export", "research", 3), ("export", "education", 3),
                                                                ("dwca", "policy", 3), ("export", "unstated", 3)]
    assert stored[0].text == "fox density"

    page = client.get(f"{API}/projects/open/data-use")  # public: counts only
    assert page.status_code == 200
    [month] = page.json()["months"]
    assert (month["downloads"], month["observations"]) == (4, 12)
    assert month["purposes"] == {"education": 1, "policy": 1, "research": 1, "unstated": 1}
    assert "fox density" not in page.text and "Adam" not in page.text and page.json()["download_purpose"] == "optional"
    one = client.get(f"{API}/observations/{ids[0]}/data-use")
    assert one.status_code == 200 and one.json()["downloads"] == 4
    assert client.get(f"{API}/projects/hidden/data-use").status_code == 404
    member = create_token(engine, "contributor", "hidden")
    assert client.get(f"{API}/projects/hidden/data-use", headers=bearer(member.token)).status_code == 200


def test_refused_downloads_say_why_and_count_nothing(client, engine):
    obs = submit(client, "strict", draft(), token=create_token(engine, "contributor", "strict").token)["id"]
    assert error(client.get(f"{API}/projects/strict/export")) == (422, "purpose_required")
    assert "research" in client.get(f"{API}/projects/strict/export").json()["error"]["message"]
    assert client.get(f"{API}/projects/strict/export", params={"purpose": "curiosity"}).status_code == 422
    assert client.get(f"{API}/projects/strict/export", params={"purpose": "other",
                                                               "purpose_text": "x" * 501}).status_code == 422
    assert downloads(engine) == []
    assert client.get(f"{API}/observations/{obs}/data-use").json()["downloads"] == 0

    assert client.get(f"{API}/projects/strict/export", params={"purpose": "commercial"}).status_code == 200
    assert client.get(f"{API}/projects/strict/export", params={"purpose_text": "an art project"}).status_code == 200
    assert client.get(f"{API}/observations/{obs}/data-use").json()["purposes"] == {"commercial": 1, "other": 1}
    with transaction(engine.readers) as session:
        assert session.scalar(sa.select(sa.func.sum(ObservationUse.count))
                              .where(ObservationUse.observation_id == obs)) == 2
    assert client.get(f"{API}/observations/999999/data-use").status_code == 404
    assert client.get(f"{API}/me/data-use").status_code == 401


def test_large_inaturalist_api_pages_count_as_downloads(client, engine):
    contributor = create_token(engine, "contributor", "naturalist")
    for _ in range(3):
        submit(client, "naturalist", draft(), token=contributor.token)
    small = client.get("/inat/v1/observations", params={"per_page": 30, "purpose": "research"})
    assert small.status_code == 200 and small.json()["total_results"] == 3
    assert downloads(engine) == []  # a page under 100 rows is browsing, not a download
    large = client.get("/inat/v1/observations", params={"per_page": 200, "purpose": "education"})
    assert large.status_code == 200 and len(large.json()["results"]) == 3
    assert [(d.channel, d.purpose, d.rows, d.project) for d in downloads(engine)] == \
        [("inat_api", "education", 3, "naturalist")]
    assert client.get("/inat/v1/observations", params={"per_page": 200, "purpose": "fun"}).status_code == 422
    summary = client.get(f"{API}/me/data-use", headers=bearer(contributor.token)).json()
    assert summary["text"] == "your observations were used in 1 download this month: 1 education"
