"""The odour plugin over HTTP: reports submitted through the API by distinct contributors,
events, analyses, and the OdourCollect-compatible list as pyodcollect calls it."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.moderation import moderate
from core.secret_keys import forget_cached_keys
from core.tokens import create_token
from plugins.odour import service
from plugins.odour.compat import pseudonymous_user_id
from plugins.odour.simulate import Simulation
from tests.plugins.odour.test_odour_plugin import ODOUR_REGISTRY, odour_draft, planted_groups, simulation

API = "/api/v1"
PNG = b"\x89PNG\r\n\x1a\n"
ROW_KEYS = {"id", "id_odor_type", "id_user", "color", "id_odor_intensity", "id_odor_duration", "id_odor_annoy",
            "published_at", "latitude", "longitude"}


@pytest.fixture
def engine(make_engine):
    return make_engine(ODOUR_REGISTRY)


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine), raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
def operator(engine) -> str:
    return create_token(engine, "operator", None, "operator").token


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulation(seed=21, days=20, episodes=3, noise_reports=6)


@pytest.fixture
def submitted(engine, client, sim) -> dict[str, Any]:
    """The simulation submitted through the API, each person with their own contributor token."""
    tokens = {name: create_token(engine, "contributor", "smells", name)
              for name in sorted({r.contributor for r in sim.reports})}
    ids = {}
    for report in sim.reports:
        response = client.post(f"{API}/projects/smells/observations", json=odour_draft(report),
                               headers=bearer(tokens[report.contributor].token))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["kind"] == "odour" and body["status"] == "published"
        ids[report.id] = body["id"]
    return {"ids": ids, "contributors": {name: t.contributor_id for name, t in tokens.items()}}


# --------------------------------------------------------------------------- submitting


def test_invalid_reports_answer_422_with_field_paths(client, operator):
    body = odour_draft(simulation(episodes=1, noise_reports=0, days=5).reports[0])
    body["fields"].update(subtype=11)
    response = client.post(f"{API}/projects/smells/observations", json=body, headers=bearer(operator))
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == ["fields", "subtype"] and "belongs to category 2" in detail["message"]
    response = client.post(f"{API}/projects/plain/observations", json=odour_draft(
        simulation(episodes=1, noise_reports=0, days=5).reports[0]), headers=bearer(operator))
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == ["kind"] and "unknown observation kind 'odour'" in detail["message"]


def test_the_form_schema_is_offered_with_the_project(client):
    kinds = client.get(f"{API}/projects/smells").json()["kinds"]
    schema = kinds["odour"]["schema"]
    assert schema["properties"]["category"]["x-labels"]["8"] == "Other"
    assert schema["properties"]["category"]["x-labels"]["9"] == "No odour"
    assert "odour" not in client.get(f"{API}/projects/plain").json()["kinds"]


# --------------------------------------------------------------------------- events


def test_events_endpoint_recovers_the_planted_episodes(client, submitted, sim, operator):
    ids = submitted["ids"]
    public = client.get(f"{API}/projects/smells/odour/events")
    assert public.status_code == 200, public.text
    payload = public.json()
    assert payload["scope"] == "public"
    assert {frozenset(e["report_ids"]) for e in payload["events"]} == planted_groups(sim, ids)
    assert {ids[i] for i in sim.noise_ids} <= set(payload["possible"])
    assert all("contributors" not in e and e["n_contributors"] >= 2 for e in payload["events"])
    text = public.text
    assert '"contributor' not in text.replace('"n_contributors', ""), "no contributor identity for the public"

    staff = client.get(f"{API}/projects/smells/odour/events", headers=bearer(operator)).json()
    assert staff["scope"] == "all"
    people = submitted["contributors"]
    for event, episode in zip(staff["events"], sim.episodes):
        assert sorted(event["contributors"]) == sorted(people[c] for c in episode.contributors)
    as_public = client.get(f"{API}/projects/smells/odour/events?scope=public", headers=bearer(operator)).json()
    assert as_public["scope"] == "public" and "contributors" not in as_public["events"][0]

    table = client.get(f"{API}/projects/smells/odour/events?format=csv")
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [int(r["n_reports"]) for r in rows] == [e["n_reports"] for e in payload["events"]]
    assert "contributors" not in rows[0]

    geo = client.get(f"{API}/projects/smells/odour/events?format=geojson")
    assert geo.headers["content-type"].startswith("application/geo+json")
    features = geo.json()["features"]
    assert [f["geometry"]["coordinates"] for f in features] == [
        [e["centroid"]["lon"], e["centroid"]["lat"]] for e in payload["events"]]

    second = sim.episodes[1]
    window = client.get(f"{API}/projects/smells/odour/events",
                        params={"since": second.start.isoformat(), "until": (second.end + timedelta(hours=1)).isoformat()})
    assert [frozenset(e["report_ids"]) for e in window.json()["events"]] == [
        frozenset(ids[i] for i in second.report_ids)]
    other = client.get(f"{API}/projects/smells/odour/events?category=2").json()
    assert other["events"] == [] and other["category"] == 2


def test_events_access_and_errors(client, engine, submitted):
    everything = client.get(f"{API}/projects/smells/odour/events").json()["events"]
    for route in ("events", "analyses/categories"):
        for bad in ("yesterday", "2024-03-01 10:00", "2024-02-30", "2024-03-01T25:00", " 2024-03-01", "2024-03-01\n"):
            refused = client.get(f"{API}/projects/smells/odour/{route}", params={"since": bad})
            assert refused.status_code == 422, (route, bad, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "invalid_datetime" and "since" in error["message"], error
    # the ends of the calendar are valid dates: they bound nothing, as a date far away would
    assert client.get(f"{API}/projects/smells/odour/events?until=9999-12-31").json()["events"] == everything
    early = client.get(f"{API}/projects/smells/odour/events?since=0001-01-01T00:00:00%2B05:00")
    assert early.status_code == 200 and early.json()["events"] == everything
    assert client.get(f"{API}/projects/smells/odour/events?since=9999-12-31T23:00:00-05:00").json()["events"] == []
    assert client.get(f"{API}/projects/smells/odour/events?category=12").status_code == 422
    assert client.get(f"{API}/projects/smells/odour/events?scope=all").status_code == 401
    contributor = create_token(engine, "contributor", "smells", "someone").token
    assert client.get(f"{API}/projects/smells/odour/events?scope=all", headers=bearer(contributor)).status_code == 403
    missing = client.get(f"{API}/projects/plain/odour/events")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "odour_not_enabled"
    assert client.get(f"{API}/projects/nowhere/odour/events").status_code == 404
    assert client.get(f"{API}/projects/closed/odour/events").status_code == 401


def test_public_events_leave_out_unpublished_reports(client, engine, submitted, sim):
    episode = sim.episodes[0]
    for sim_id in episode.report_ids:
        moderate(engine, submitted["ids"][sim_id], "unpublish", actor="test")
    events = client.get(f"{API}/projects/smells/odour/events").json()["events"]
    assert len(events) == len(sim.episodes) - 1


# --------------------------------------------------------------------------- analyses


def test_analyses_of_a_project_with_no_reports(client):
    base = f"{API}/projects/exact/odour/analyses"
    for name in ("hour_weekday", "intensity", "heatmap"):
        response = client.get(f"{base}/{name}")
        assert response.status_code == 200 and response.json()["rows"] == [], name
    categories = client.get(f"{base}/categories").json()["rows"]
    assert len(categories) == 9 and sum(r["n_reports"] for r in categories) == 0
    assert client.get(f"{base}/categories.png").content.startswith(PNG)
    assert client.get(f"{base}/heatmap.png").status_code == 404, "no reports and no zones: nothing to draw"
    assert client.get(f"{API}/projects/exact/odour/events").json()["events"] == []


def test_analyses_as_json_csv_png_and_geojson(client, submitted, sim):
    listed = client.get(f"{API}/projects/smells/odour/analyses").json()
    assert {a["name"] for a in listed} == {"hour_weekday", "categories", "intensity", "heatmap"}
    base = f"{API}/projects/smells/odour/analyses"

    hours = client.get(f"{base}/hour_weekday").json()
    assert sum(r["count"] for r in hours["rows"]) == len(sim.reports) and hours["timezone"] == "Europe/Madrid"
    madrid = ZoneInfo("Europe/Madrid")
    first = sim.reports[0].observed_at.astimezone(madrid)
    assert any(r["count"] and r["hour"] == first.hour and r["weekday"] == first.weekday() for r in hours["rows"])

    categories = client.get(f"{base}/categories").json()["rows"]
    assert sum(r["n_reports"] for r in categories) == len(sim.reports)
    assert next(r for r in categories if r["category"] == 5)["n_reports"] >= sum(
        len(e.report_ids) for e in sim.episodes)

    daily = client.get(f"{base}/intensity?category=5").json()["rows"]
    assert daily and all(0 < r["mean_intensity"] <= 6 for r in daily)

    heat = client.get(f"{base}/heatmap").json()
    assert sum(r["count"] for r in heat["rows"]) + heat["outside"] == len(sim.reports)
    assert heat["cell_m"] == 500
    for name in ("heatmap", "hour_weekday", "categories", "intensity"):
        png = client.get(f"{base}/{name}.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(PNG), name
    geo = client.get(f"{base}/heatmap.geojson")
    assert geo.headers["content-type"].startswith("application/geo+json")
    assert sum(f["properties"]["count"] for f in geo.json()["features"]) == sum(r["count"] for r in heat["rows"])
    assert client.get(f"{base}/heatmap?format=geojson").json() == geo.json()
    table = client.get(f"{base}/categories.csv")
    assert table.headers["content-type"].startswith("text/csv") and "category_name" in table.text
    assert client.get(f"{base}/categories.geojson").status_code == 404
    assert client.get(f"{base}/horoscope").status_code == 404


# --------------------------------------------------------------------------- OdourCollect-compatible list


def pyodcollect_body(**filters: Any) -> dict[str, Any]:
    """What pyodcollect 1.1.0 POSTs: every filter present, unset ones null, 0 meaning all."""
    body = {"type": 0, "subtype": 0, "minAnnoy": None, "maxAnnoy": None, "minIntensity": None,
            "maxIntensity": None, "date_init": None, "date_end": None}
    body.update(filters)
    return body


def test_compat_list_answers_pyodcollect(client, engine, submitted, sim):
    response = client.post("/api/odor/list", json=pyodcollect_body())
    assert response.status_code == 200
    body = response.json()
    content = body["content"]  # what pyodcollect reads: json.loads(r.text)["content"]
    assert body["status_code"] == 200 and body["data"]["content"] == content
    assert body["data"]["message"] == "Successful request."
    assert len(content) == len(sim.reports)
    assert all(set(row) == ROW_KEYS for row in content)

    by_id = {submitted["ids"][r.id]: r for r in sim.reports}
    key = service.pseudonym_key(engine)
    people = submitted["contributors"]
    for row in content:
        report = by_id[row["id"]]
        assert row["id_odor_type"] == report.subtype
        assert row["id_odor_intensity"] == report.intensity + 1
        assert row["id_odor_annoy"] == report.hedonic_tone + 5
        assert row["latitude"] == round(report.lat, 3) and row["longitude"] == round(report.lon, 3)
        assert row["id_user"] == pseudonymous_user_id(people[report.contributor], key)
        assert row["id_user"] not in set(people.values()), "the contributor id never leaks"
        local = report.observed_at.astimezone(ZoneInfo("Europe/Madrid"))
        assert row["published_at"] == local.strftime("%Y-%m-%d %H:%M:%S")
    assert "contributor" not in response.text
    same = {}
    for row in content:
        same.setdefault(by_id[row["id"]].contributor, set()).add(row["id_user"])
    assert all(len(v) == 1 for v in same.values()), "one pseudonym per person"
    assert len({next(iter(v)) for v in same.values()}) == len(same), "different people, different pseudonyms"

    assert client.get("/api/odor/list").json() == body, "GET with no filters answers the same"


def test_compat_list_filters(client, engine, submitted, sim):
    industrial = client.post("/api/odor/list", json=pyodcollect_body(type=5)).json()["content"]
    assert len(industrial) == sum(1 for r in sim.reports if r.category == 5)
    strong = client.get("/api/odor/list", params={"minIntensity": 4, "maxAnnoy": "-2"}).json()["content"]
    assert len(strong) == sum(1 for r in sim.reports if r.intensity >= 4 and r.hedonic_tone <= -2)
    assert all(row["id_odor_intensity"] >= 5 and row["id_odor_annoy"] <= 3 for row in strong)
    subtype = sim.reports[0].subtype
    assert {row["id_odor_type"] for row in client.post(
        "/api/odor/list", json=pyodcollect_body(type=5, subtype=subtype)).json()["content"]} == {subtype}

    # date_end includes the whole end day, in the project's time zone
    madrid = ZoneInfo("Europe/Madrid")
    day = sim.episodes[1].start.astimezone(madrid).date().isoformat()
    on_day = [r for r in sim.reports if r.observed_at.astimezone(madrid).date().isoformat() == day]
    rows = client.post("/api/odor/list", json=pyodcollect_body(date_init=day, date_end=day)).json()
    assert len(rows["content"]) == len(on_day) > 0 and rows["data"]["date_init"] == day
    assert len(client.get("/api/odor/list", params={"date_init": day, "date_end": day}).json()["content"]) == len(
        on_day)

    # published reports only
    hidden = submitted["ids"][on_day[0].id]
    moderate(engine, hidden, "unpublish", actor="test")
    after = client.post("/api/odor/list", json=pyodcollect_body(date_init=day, date_end=day)).json()["content"]
    assert hidden not in {row["id"] for row in after} and len(after) == len(on_day) - 1

    # a project: this one, or another odour project with nothing published
    assert len(client.get("/api/odor/list", params={"project": "smells"}).json()["content"]) == len(sim.reports) - 1
    assert client.get("/api/odor/list", params={"project": "exact"}).json()["content"] == []


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"type": 12}, "type"),
        ({"type": "9" * 5000}, "type"),
        ({"minIntensity": "strong"}, "minIntensity"),
        ({"minIntensity": " 3"}, "minIntensity"),
        ({"date_init": "01/03/2024"}, "date_init"),
        ({"date_end": "docs-assets"}, "date_end"),
        ({"type": "docs-assets"}, "type"),
    ],
)
def test_compat_list_refuses_bad_filters_with_400(client, params, bad):
    for response in (client.get("/api/odor/list", params=params),
                     client.post("/api/odor/list", json=pyodcollect_body(**params))):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["status_code"] == 400 and body["content"] == [] and bad in body["data"]["errors"]
        assert body["error"]["code"] == "invalid_filters"
        assert body["error"]["details"][0]["path"] == [bad]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"minAnnoy": 3, "maxAnnoy": -3}, "minAnnoy"),
        ({"date_init": "2024-03-05", "date_end": "2024-03-01"}, "date_init"),
        ({"type": 5, "subtype": 11}, "subtype"),
        ({"project": "plain"}, "project"),
        ({"project": "closed"}, "project"),
        ({"project": "nowhere"}, "project"),
    ],
)
def test_compat_list_answers_filters_no_report_can_pass_with_an_empty_list(client, submitted, params, bad):
    """Valid one by one (the OpenAPI document accepts each), nothing passes them together: 200
    and no rows, as OdourCollect answered, with the reason (pyodcollect requires a 200)."""
    for response in (client.get("/api/odor/list", params=params),
                     client.post("/api/odor/list", json=pyodcollect_body(**params))):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["content"] == [] and body["data"]["content"] == [] and bad in body["data"]["warnings"]
        assert body["data"]["message"].startswith("No report can pass these filters")


def test_compat_list_refuses_a_body_that_is_not_a_json_object(client):
    for body in (b"[1, 2]", b"null", b"5", b'"type"'):  # the schema says an object
        response = client.post("/api/odor/list", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "body" in response.json()["data"]["errors"], body
    assert client.post("/api/odor/list", content=b"{nope",
                       headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/api/odor/list", data={"type": "5"}).status_code == 200, "a form body, as Laravel took"


def test_compat_list_refuses_a_huge_body_with_413_in_both_shapes(client):
    huge = json.dumps({"type": 5, "description": "x" * 100_000}).encode()
    response = client.post("/api/odor/list", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    body = response.json()
    assert body["status_code"] == 413 and body["content"] == [] and "body" in body["data"]["errors"]
    assert body["error"]["code"] == "request_too_large"
    assert "65536" in body["error"]["message"]
    assert client.post("/api/odor/list", json=pyodcollect_body()).status_code == 200, "a normal body still reads"


def test_the_pseudonym_key_file_is_made_on_first_use(client, engine, submitted):
    path = Path(engine.settings.data_dir) / service.KEY_FILE
    forget_cached_keys()
    path.unlink(missing_ok=True)
    first = client.post("/api/odor/list", json=pyodcollect_body()).json()["content"]
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    forget_cached_keys()
    assert client.post("/api/odor/list", json=pyodcollect_body()).json()["content"] == first, "stable pseudonyms"


NASTY = ["", "0", "-1", "12", "9" * 5000, "1.5", "nan", "a\x00b", "é" * 300, "2024-02-30", "0001-01-01",
         "9999-12-31", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+05:00", "true", "[1]", "null"]


def test_odour_routes_refuse_nasty_input_without_a_server_error(client, operator, submitted):
    """Whatever a parameter holds, the odour routes answer 2xx or 4xx, errors as JSON."""
    routes = [
        ("GET", f"{API}/projects/smells/odour/events", ["since", "until", "category", "format", "scope"]),
        ("GET", f"{API}/projects/smells/odour/analyses/heatmap.png", ["since", "until", "category", "scope"]),
        ("GET", f"{API}/projects/smells/odour/analyses/intensity", ["since", "until", "category", "format"]),
        ("GET", "/api/odor/list", ["type", "subtype", "minIntensity", "maxAnnoy", "date_init", "date_end",
                                   "project"]),
        ("POST", "/api/odor/list", ["type", "subtype", "minIntensity", "maxAnnoy", "date_init", "date_end",
                                    "project"]),
    ]
    for method, url, names in routes:
        for name in names:
            for value in NASTY:
                for headers in ({}, bearer(operator)):
                    if method == "GET":
                        response = client.get(url, params={name: value}, headers=headers)
                    else:
                        as_json = {"": '""', "null": "null"}.get(value) or json.dumps(value)
                        raw = "{" + json.dumps(name) + ": " + as_json + "}"
                        response = client.post(url, content=raw, headers={**headers,
                                                                         "content-type": "application/json"})
                    assert response.status_code < 500, (method, url, name, value, response.text[:300])
                    if response.status_code >= 400:
                        assert response.json()["error"]["code"], (url, name, value)
    for name in ("9" * 5000, "a%00b", "heatmap.exe", "é" * 300):
        assert client.get(f"{API}/projects/smells/odour/analyses/{name}").status_code == 404
