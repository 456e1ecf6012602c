"""Open-data export: CSV and GeoJSON, with no personal data in the public one."""

from __future__ import annotations

import csv
import io

API = "/api/v1"


def test_public_csv_has_published_rows_only_without_identities(make_token, make_observation, client, auth):
    owner = make_token("contributor", "gamma")
    make_observation("gamma", token=owner, location={"lat": 41.387654, "lon": 2.170123})
    response = client.get(f"{API}/projects/gamma/export")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["contributor_id"] == "" and rows[0]["lat"] == "41.39"
    assert rows[0]["media_count"] == "0", "the engine's own export column"
    assert "41.387654" not in response.text


def test_geojson_and_the_staff_only_full_export(make_token, make_observation, client, auth):
    mod = make_token("moderator", "alpha")
    pending = make_observation("alpha", token=mod)
    published = make_observation("alpha", token=mod, status="published", fields={"n": 1})
    public = client.get(f"{API}/projects/alpha/export", params={"format": "geojson"}).json()
    assert [f["properties"]["id"] for f in public["features"]] == [published["id"]]
    assert public["features"][0]["geometry"]["type"] == "Point"
    assert client.get(f"{API}/projects/alpha/export", params={"scope": "all"}).status_code == 401
    full = client.get(f"{API}/projects/alpha/export", params={"scope": "all", "format": "geojson"}, headers=auth(mod))
    assert sorted(f["properties"]["id"] for f in full.json()["features"]) == sorted([pending["id"], published["id"]])
