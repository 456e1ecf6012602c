"""Downloads over HTTP: CSV and GeoJSON (public and staff, filtered, for Excel) and the Darwin Core
Archive, with no personal data or private place in what the public gets."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Callable

import pytest
import sqlalchemy as sa

from core.db.models import AuditEntry
from core.engine import Engine
from tests.api.conftest import API_REGISTRY

API = "/api/v1"
REGISTRY = API_REGISTRY + """
  - slug: delta
    name: Delta
    description: Plants of the valley.
    auto_publish: true
    location_precision: 2
    obscured_precision: 1
    services: {}
    dataset:
      publisher: {name: Valley Trust}
      contacts: [{name: Ana Contact, email: ana@valley.example}]
      creators: [{name: Bo Creator}]
"""


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    """API_REGISTRY's projects, and delta: public, auto-published, with its dataset metadata."""
    return make_engine(REGISTRY)


def rows_of(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def exports_audited(engine: Engine) -> list[AuditEntry]:
    with engine.readers() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export")))


def test_public_csv_has_published_rows_places_by_privacy_and_no_identity(make_token, make_observation, client):
    owner = make_token("contributor", "gamma")
    open_ = make_observation("gamma", token=owner, location={"lat": 41.387654, "lon": 2.170123},
                             client_id="phone-1", fields={"note": "fox", "mail": "x"})
    obscured = make_observation("gamma", token=owner, location={"lat": 41.456789, "lon": 2.234567},
                                location_privacy="obscured")
    private = make_observation("gamma", token=owner, location={"lat": 41.512345, "lon": 2.298765},
                               location_privacy="private")
    response = client.get(f"{API}/projects/gamma/export")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = {int(r["id"]): r for r in rows_of(response.text)}
    assert set(rows) == {open_["id"], obscured["id"], private["id"]}
    header = next(csv.reader(io.StringIO(response.text)))
    assert not {"contributor_id", "source_contributor", "client_id", "email", "fields"} & set(header)
    assert {"fields_other", "media_count", "licence", "licence_uri", "gbif_eligible", "location_privacy",
            "location_generalised", "coordinate_uncertainty_m"} <= set(header)
    assert (rows[open_["id"]]["lat"], rows[open_["id"]]["lon"]) == ("41.39", "2.17")
    assert rows[open_["id"]]["location_generalised"] == "true"
    assert (rows[obscured["id"]]["lat"], rows[obscured["id"]]["lon"]) == ("41.5", "2.2")
    assert float(rows[obscured["id"]]["coordinate_uncertainty_m"]) >= 11_000
    assert rows[private["id"]]["lat"] == rows[private["id"]]["lon"] == "" and \
        rows[private["id"]]["location_privacy"] == "private"
    assert rows[open_["id"]]["licence"] == "CC-BY-4.0" and rows[open_["id"]]["gbif_eligible"] == "true"
    assert rows[open_["id"]]["licence_uri"] == "http://creativecommons.org/licenses/by/4.0/legalcode"
    assert rows[open_["id"]]["fields_other"] == '{"mail": "x", "note": "fox"}', "no schema names them: one cell"
    for secret in ("41.387654", "2.170123", "41.456789", "41.512345", "2.298765", "phone-1"):
        assert secret not in response.text
    assert exports_audited(client.app.state.engine) == [], "a public export is not audited"


def test_geojson_has_null_geometry_for_a_private_place(make_token, make_observation, client):
    owner = make_token("contributor", "gamma")
    private = make_observation("gamma", token=owner, location={"lat": 41.512345, "lon": 2.298765},
                               location_privacy="private")
    shown = make_observation("gamma", token=owner)
    features = {f["properties"]["id"]: f for f in
                client.get(f"{API}/projects/gamma/export", params={"format": "geojson"}).json()["features"]}
    assert features[private["id"]]["geometry"] is None
    assert features[shown["id"]]["geometry"] == {"type": "Point", "coordinates": [2.17, 41.39]}
    assert "contributor_id" not in features[shown["id"]]["properties"]
    assert features[shown["id"]]["properties"]["fields"] == shown["fields"]


def test_the_staff_export_has_everything_and_is_audited(make_token, make_observation, client, auth, engine):
    mod = make_token("moderator", "alpha")
    author = make_token("contributor", "alpha")
    pending = make_observation("alpha", token=author, location={"lat": 41.512345, "lon": 2.298765},
                               location_privacy="private")
    published = make_observation("alpha", token=author, status="published", fields={"n": 1})
    public = client.get(f"{API}/projects/alpha/export", params={"format": "geojson"}).json()
    assert [f["properties"]["id"] for f in public["features"]] == [published["id"]]
    assert client.get(f"{API}/projects/alpha/export", params={"scope": "all"}).status_code == 401
    assert client.get(f"{API}/projects/alpha/export", params={"scope": "all"}, headers=auth(author)).status_code == 403
    assert exports_audited(engine) == []

    full = client.get(f"{API}/projects/alpha/export", params={"scope": "all", "kind": "generic"}, headers=auth(mod))
    assert full.status_code == 200
    rows = {int(r["id"]): r for r in rows_of(full.text)}
    assert set(rows) == {pending["id"], published["id"]}
    assert rows[pending["id"]]["lat"] == "41.512345", "staff see the exact place, private or not"
    assert rows[pending["id"]]["contributor_id"] == str(pending["contributor_id"])
    (entry,) = exports_audited(engine)
    assert entry.project == "alpha" and entry.observation_id is None and entry.actor.startswith("account:")
    assert entry.after == {"format": "csv", "scope": "all", "filters": {"kind": "generic"}, "gbif_only": False,
                           "rows": 2, "complete": True}
    one = client.get(f"{API}/projects/alpha/export", params={"scope": "all", "contributor": pending["contributor_id"]},
                     headers=auth(mod))
    assert len(rows_of(one.text)) == 2
    # an account id is kept as one, under the key that erasing that person nulls (core.gdpr)
    assert exports_audited(engine)[-1].after["filters"] == {"contributor_id": pending["contributor_id"]}


def test_filters_of_the_list_narrow_the_export(make_token, make_observation, client, auth):
    owner = make_token("contributor", "gamma")
    early = make_observation("gamma", token=owner, observed_at="2026-04-01T10:00:00+02:00")
    late = make_observation("gamma", token=owner, observed_at="2026-05-02T10:00:00+02:00")
    answer = client.get(f"{API}/projects/gamma/export", params={"since": "2026-05-01T00:00:00Z"})
    assert [int(r["id"]) for r in rows_of(answer.text)] == [late["id"]]
    answer = client.get(f"{API}/projects/gamma/export", params={"until": "2026-05-01T00:00:00Z", "format": "geojson"})
    assert [f["properties"]["id"] for f in answer.json()["features"]] == [early["id"]]
    assert client.get(f"{API}/projects/gamma/export?stauts=published").json()["error"]["code"] == "unknown_parameter"
    unknown_field = client.get(f"{API}/projects/gamma/export?field.colour=red")
    assert unknown_field.status_code == 422 and "colour" in unknown_field.json()["error"]["message"]
    # whose observations these are is personal, even when each one is public
    other = client.get(f"{API}/projects/gamma/export", params={"contributor": early["contributor_id"]})
    assert other.status_code == 401
    mine = client.get(f"{API}/projects/gamma/export", params={"contributor": early["contributor_id"]},
                      headers=auth(owner))
    assert mine.status_code == 200 and len(rows_of(mine.text)) == 2


def test_the_excel_export_has_a_bom_semicolons_and_no_formulas(make_token, make_observation, client):
    owner = make_token("contributor", "gamma")
    made = make_observation("gamma", token=owner, fields={"note": "=HYPERLINK(\"http://evil\")", "n": -3})
    answer = client.get(f"{API}/projects/gamma/export", params={"excel": "true"})
    assert answer.content.startswith(b"\xef\xbb\xbf")
    text = answer.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("id;kind;observed_at;lat;lon")
    (row,) = rows_of(text, ";")
    assert row["id"] == str(made["id"]) and row["lat"] == "41.39"
    assert row["fields_other"].startswith("{"), "a JSON cell is no formula"
    assert "=HYPERLINK" in row["fields_other"]


def test_an_anonymous_caller_cannot_export_a_project_that_is_not_public(client, make_token, auth):
    assert client.get(f"{API}/projects/beta/export").status_code == 401
    assert client.get(f"{API}/projects/beta/export/dwca").status_code == 401
    assert client.get(f"{API}/projects/nowhere/export").status_code == 404


def test_the_darwin_core_archive_over_http(make_token, make_observation, client, auth, engine, tmp_path):
    from dwca.read import DwCAReader

    owner = make_token("contributor", "delta")
    shown = make_observation("delta", token=owner, fields={"scientific_name": "Quercus ilex"})
    hidden = make_observation("delta", token=owner, location={"lat": 41.512345, "lon": 2.298765},
                              location_privacy="private")
    answer = client.get(f"{API}/projects/delta/export/dwca")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert set(zipfile.ZipFile(io.BytesIO(answer.content)).namelist()) == {"meta.xml", "eml.xml", "occurrence.txt",
                                                                           "multimedia.txt"}
    path = tmp_path / "delta.zip"
    path.write_bytes(answer.content)
    with DwCAReader(str(path)) as reader:
        rows = {row.id: row.data for row in reader}
    base = engine.settings.base_url
    assert rows[f"{base}/api/v1/observations/{shown['id']}"]["http://rs.tdwg.org/dwc/terms/scientificName"] == \
        "Quercus ilex"
    assert rows[f"{base}/api/v1/observations/{hidden['id']}"]["http://rs.tdwg.org/dwc/terms/decimalLatitude"] == ""
    assert b"41.512345" not in answer.content

    incomplete = client.get(f"{API}/projects/alpha/export/dwca")
    assert incomplete.status_code == 409 and incomplete.json()["error"]["code"] == "dataset_incomplete"
    assert "projects[alpha].dataset.publisher" in incomplete.json()["error"]["message"]

    mod = make_token("moderator", "delta")
    assert client.get(f"{API}/projects/delta/export/dwca", params={"scope": "all"},
                      headers=auth(owner)).status_code == 403
    staff = client.get(f"{API}/projects/delta/export/dwca", params={"scope": "all", "gbif_only": "true"},
                       headers=auth(mod))
    assert staff.status_code == 200 and b"41.512345" not in staff.content
    (entry,) = exports_audited(engine)
    assert entry.after["format"] == "dwca" and entry.after["gbif_only"] is True and entry.after["rows"] == 2
