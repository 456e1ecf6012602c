"""Issue 9, finding 2 (and the type strictness of finding 6): one contributor's field values must not
break lists, exports, the audit log or edits for everyone.

Each refused draft or edit answers 422 with the path of the value in ``details`` and stores nothing;
rows stored before these checks (written here straight into the database) are still listed,
exported, moderated, audited and edited.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.db.models import AuditEntry, Observation, utcnow
from core.engine import Engine
from core.moderation import moderate
from core.tokens import create_token
from tests.api.conftest import API_REGISTRY
from tests.conftest import draft

API = "/api/v1"
HEAD = '{"observed_at":"2026-05-01T09:30:00+02:00","location":{"lat":41.39,"lon":2.17},"fields":'


def nested(levels: int, leaf: Any = "leaf") -> Any:
    """``levels`` objects one inside the other: {"a": {"a": ... leaf}}."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def post_raw(client: TestClient, token: str, project: str, body: str) -> Any:
    return client.post(f"{API}/projects/{project}/observations", content=body.encode("utf-8", "surrogatepass"),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def patch_raw(client: TestClient, token: str, obs_id: int, body: str) -> Any:
    return client.patch(f"{API}/observations/{obs_id}", content=body.encode("utf-8", "surrogatepass"),
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def count(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(Observation.__table__)).scalar_one()


def audit_count(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(AuditEntry.__table__)).scalar_one()


def assert_everything_reads(client: TestClient, token: str, project: str, engine: Engine) -> dict[str, Any]:
    """Every way out of the engine answers, in full: list (staff and public), one observation,
    CSV and GeoJSON (public and all), the audit log; returns the staff list page."""
    page = client.get(f"{API}/projects/{project}/observations", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200, page.text
    assert client.get(f"{API}/projects/{project}/observations").status_code == 200
    for item in page.json()["items"]:
        one = client.get(f"{API}/observations/{item['id']}", headers={"Authorization": f"Bearer {token}"})
        assert one.status_code == 200, one.text
    for scope in ("public", "all"):
        csv_export = client.get(f"{API}/projects/{project}/export?format=csv&scope={scope}",
                                headers={"Authorization": f"Bearer {token}"})
        assert csv_export.status_code == 200
        rows = list(csv.DictReader(io.StringIO(csv_export.content.decode("utf-8"))))
        geo = client.get(f"{API}/projects/{project}/export?format=geojson&scope={scope}",
                         headers={"Authorization": f"Bearer {token}"})
        assert geo.status_code == 200
        features = json.loads(geo.content.decode("utf-8"))["features"]  # the whole document, not a cut one
        assert len(features) == len(rows)
    audit_log = client.get(f"{API}/projects/{project}/audit", headers={"Authorization": f"Bearer {token}"})
    assert audit_log.status_code == 200, audit_log.text
    return page.json()


@pytest.fixture
def operator(make_token: Callable[..., str]) -> str:
    return make_token("operator")


# -- the repro: refused before anything is stored ------------------------------------------

REFUSED = {
    "lone surrogate value": (r'{"x":"\udc00"}', ["fields", "x"], "lone_surrogate"),
    "lone surrogate key": (r'{"\udc00":1}', ["fields", "\\udc00"], "lone_surrogate"),
    "surrogate deep inside": (r'{"x":[1,{"y":"ok\ud800"}]}', ["fields", "x", 1, "y"], "lone_surrogate"),
    "300 levels": (json.dumps({"x": nested(300)}), ["fields", "x"] + ["a"] * 32, "too_deep"),
    "NUL value": (r'{"x":"a\u0000b"}', ["fields", "x"], "nul_character"),
    "NUL key": (r'{"a\u0000":1}', ["fields", "a\\x00"], "nul_character"),
    "overflowing number": ('{"x":1e400}', ["fields", "x"], "not_finite"),
    "huge integer": ('{"x":' + str(2**64) + "}", ["fields", "x"], "integer_out_of_range"),
    "long string": (json.dumps({"x": "é" * (32 * 1024 + 1)}), ["fields", "x"], "field_too_long"),
    "many keys": (json.dumps({f"k{i}": i for i in range(1001)}), ["fields"], "too_many_keys"),
    "large fields": (json.dumps({f"k{i}": "v" * 60_000 for i in range(5)}), ["fields"], "fields_too_large"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_draft_that_cannot_be_read_back_is_refused_and_nothing_is_stored(client, engine, operator, case):
    fields, path, code = REFUSED[case]
    kept = client.post(f"{API}/projects/gamma/observations", json=draft(), headers={"Authorization": f"Bearer {operator}"})
    assert kept.status_code == 201
    before = count(engine)
    response = post_raw(client, operator, "gamma", HEAD + fields + "}")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert {"path": path, "code": code} in [{"path": d["path"], "code": d["code"]} for d in error["details"]]
    assert count(engine) == before
    moderate(engine, kept.json()["id"], "unpublish", actor="test")  # so that the audit log has an entry
    page = assert_everything_reads(client, operator, "gamma", engine)
    assert [item["id"] for item in page["items"]] == [kept.json()["id"]]


@pytest.mark.parametrize("case", ["lone surrogate value", "lone surrogate key", "300 levels", "NUL value",
                                  "overflowing number", "huge integer", "many keys", "large fields"])
def test_an_edit_that_cannot_be_read_back_is_refused_and_changes_nothing(client, engine, operator, case):
    fields, path, code = REFUSED[case]
    obs = client.post(f"{API}/projects/gamma/observations", json=draft(), headers={"Authorization": f"Bearer {operator}"}).json()
    entries = audit_count(engine)
    response = patch_raw(client, operator, obs["id"], '{"fields":' + fields + "}")
    assert response.status_code == 422, response.text
    assert {"path": path, "code": code} in [{"path": d["path"], "code": d["code"]}
                                            for d in response.json()["error"]["details"]]
    assert audit_count(engine) == entries  # no edit was recorded
    again = client.get(f"{API}/observations/{obs['id']}", headers={"Authorization": f"Bearer {operator}"}).json()
    assert again["fields"] == obs["fields"]
    assert_everything_reads(client, operator, "gamma", engine)


def test_nan_in_an_edit_is_refused_with_its_path(client, engine, operator):
    obs = client.post(f"{API}/projects/gamma/observations", json=draft(), headers={"Authorization": f"Bearer {operator}"}).json()
    response = patch_raw(client, operator, obs["id"], '{"fields":{"x":[NaN]}}')
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == ["fields", "x", 0]


def test_the_limits_are_inclusive_and_what_is_accepted_reads_back(client, engine, operator):
    fields = {
        "deep": nested(31, [1]),  # 32 levels: 31 objects and the array
        "long": "é" * (32 * 1024),  # 64 KiB exactly
        "big": 2**53 - 1, "small": -(2**53 - 1), "tiny": 5e-324, "huge": 1.7976931348623157e308,
        "text": "🦊 \u2028 \ufeff \uffff",  # astral, line separator, BOM, a noncharacter: all text
    }
    response = client.post(f"{API}/projects/gamma/observations", json=draft(fields=fields),
                           headers={"Authorization": f"Bearer {operator}"})
    assert response.status_code == 201, response.text
    assert response.json()["fields"] == fields
    page = assert_everything_reads(client, operator, "gamma", engine)
    assert page["items"][0]["fields"] == fields
    geo = client.get(f"{API}/projects/gamma/export?format=geojson").json()
    assert geo["features"][0]["properties"]["fields"] == fields
    one_more = patch_raw(client, operator, response.json()["id"], json.dumps({"fields": {"deep": nested(32, [1])}}))
    assert one_more.status_code == 422
    assert one_more.json()["error"]["details"][0]["code"] == "too_deep"


def test_the_limits_are_settings(make_engine):
    engine = make_engine(API_REGISTRY, max_field_depth=2, max_field_value_bytes=10, max_fields_bytes=100,
                         max_field_keys=3, max_field_integer=1000)
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        token = create_token(engine, "operator", None, "limits").token
        cases = {
            '{"a":{"b":{"c":[1]}}}': "too_deep", '{"a":"12345678901"}': "field_too_long",
            '{"a":1,"b":2,"c":3,"d":4}': "too_many_keys", '{"a":1001}': "integer_out_of_range",
            '{"a":["123456789","123456789","123456789","123456789","123456789","123456789",'
            '"123456789","123456789","123456789","123456789"]}': "fields_too_large",
        }
        for fields, code in cases.items():
            response = post_raw(client, token, "gamma", HEAD + fields + "}")
            assert response.status_code == 422, fields
            assert response.json()["error"]["details"][0]["code"] == code
        accepted = post_raw(client, token, "gamma", HEAD + '{"a":{"b":[1000]},"c":"1234567890"}}')
        assert accepted.status_code == 201, accepted.text
        assert count(engine) == 1


def test_the_same_checks_apply_to_multipart_and_to_the_engine_itself(client, engine, operator):
    from core import lifecycle
    from core.errors import ValidationFailed

    response = client.post(f"{API}/projects/gamma/observations", headers={"Authorization": f"Bearer {operator}"},
                           files={"draft": (None, HEAD + r'{"x":"\udc00"}}')})
    assert response.status_code == 422
    for fields in ({"x": "\udc00"}, {"x": nested(300)}, {"x": (1, 2)}, {1: "a"}, {"x": float("nan")}):
        with pytest.raises(ValidationFailed):
            lifecycle.submit(engine, "gamma", draft(fields=fields))
        with pytest.raises(ValidationFailed):  # the CLI's `submit --edit`
            lifecycle.submit(engine, "gamma", draft(client_id="e1", fields=fields), edit=True)
    assert count(engine) == 0


# -- rows stored before the checks ---------------------------------------------------------------------

def _store_unchecked(engine: Engine, fields: dict[str, Any], project: str = "gamma") -> int:
    """An observation written straight into the database, as older versions let one in."""
    now = utcnow()
    with engine.db.begin() as conn:
        return conn.execute(sa.insert(Observation.__table__).values(
            project=project, content_hash="x", contributor_id=None, kind="generic", observed_at=now,
            lat=41.39, lon=2.17, fields=fields, status="published", created_at=now, updated_at=now,
        )).inserted_primary_key[0]


def test_older_rows_that_the_checks_refuse_now_do_not_break_any_reader(client, engine, operator):
    bad = {"surrogate": "a\udc00b", "\ud800key": 1, "deep": nested(300)}
    if engine.db.dialect.name == "sqlite":  # PostgreSQL's json type never took NaN
        bad["nan"] = float("nan")
    obs_id = _store_unchecked(engine, bad)
    good = client.post(f"{API}/projects/gamma/observations", json=draft(), headers={"Authorization": f"Bearer {operator}"})
    assert good.status_code == 201

    page = assert_everything_reads(client, operator, "gamma", engine)
    shown = next(item for item in page["items"] if item["id"] == obs_id)["fields"]
    assert shown["surrogate"] == "a\ufffdb" and shown["\ufffdkey"] == 1
    assert shown.get("nan", None) is None
    csv_text = client.get(f"{API}/projects/gamma/export?format=csv").content.decode("utf-8")
    assert "a\ufffdb" in csv_text

    # moderation and an edit of that row are audited, and the audit log still answers
    moderate(engine, obs_id, "unpublish", actor="test", reason="bad \udc00 reason")
    keeps_it = patch_raw(client, operator, obs_id, '{"fields":{"note":"x"}}')
    assert keeps_it.status_code == 422  # the stored values are still refused, with their paths: remove them
    assert ["fields", "surrogate"] in [d["path"] for d in keeps_it.json()["error"]["details"]]
    removed = patch_raw(client, operator, obs_id,
                        '{"fields":{"surrogate":null,"\\ud800key":null,"deep":null,"nan":null,"note":"x"}}')
    assert removed.status_code == 200, removed.text
    assert removed.json()["fields"] == {"note": "x"}
    entries = client.get(f"{API}/projects/gamma/audit?observation_id={obs_id}",
                         headers={"Authorization": f"Bearer {operator}"})
    assert entries.status_code == 200
    by_action = {e["action"]: e for e in entries.json()["items"]}
    assert by_action["unpublish"]["after"]["reason"] == "bad \ufffd reason"
    assert by_action["edit"]["before"]["fields"]["surrogate"] == "a\ufffdb"
    assert by_action["edit"]["after"]["fields"] == {"note": "x"}
    assert_everything_reads(client, operator, "gamma", engine)


# -- strict types (finding 6) --------------------------------------------------------------------------

LOOSE = {
    "lat as text": ({"location": {"lat": "41", "lon": 2.17}}, ["location", "lat"]),
    "lat as true": ({"location": {"lat": True, "lon": 2.17}}, ["location", "lat"]),
    "lon as text": ({"location": {"lat": 41.0, "lon": "2.17"}}, ["location", "lon"]),
    "accuracy as false": ({"location": {"lat": 41.0, "lon": 2.17, "accuracy_m": False}}, ["location", "accuracy_m"]),
    "accuracy as text": ({"location": {"lat": 41.0, "lon": 2.17, "accuracy_m": "8"}}, ["location", "accuracy_m"]),
    "observed_at as a number": ({"observed_at": 1777620600}, ["observed_at"]),
    "observed_at as digits": ({"observed_at": "1777620600"}, ["observed_at"]),
    "observed_at as a float": ({"observed_at": 1777620600.5}, ["observed_at"]),
}


@pytest.mark.parametrize("case", LOOSE, ids=list(LOOSE))
def test_types_are_as_strict_as_the_schema_says(client, engine, operator, case):
    parts, path = LOOSE[case]
    response = client.post(f"{API}/projects/alpha/observations", json=draft(**parts),
                           headers={"Authorization": f"Bearer {operator}"})
    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]
    assert count(engine) == 0


def test_what_the_schema_allows_is_still_accepted(client, operator):
    for parts in ({"location": {"lat": 41, "lon": 2, "accuracy_m": 8}},  # integers are numbers
                  {"observed_at": "2026-05-01T09:30:00Z"}, {"observed_at": "2026-05-01T09:30:00"},
                  {"observed_at": "2026-05-01T09:30:00.123+02:00"}):
        response = client.post(f"{API}/projects/alpha/observations", json=draft(**parts),
                               headers={"Authorization": f"Bearer {operator}"})
        assert response.status_code == 201, response.text


# -- the 409 for a client_id (finding 6): nothing about anyone else ---------------------------------

def test_a_client_id_used_by_someone_else_answers_as_ones_own_conflict(client, make_token):
    alice, bob = make_token("contributor", "alpha"), make_token("contributor", "alpha")
    theirs = client.post(f"{API}/projects/alpha/observations", json=draft(client_id="shared"),
                         headers={"Authorization": f"Bearer {alice}"})
    mine = client.post(f"{API}/projects/alpha/observations", json=draft(client_id="mine"),
                       headers={"Authorization": f"Bearer {bob}"})
    assert (theirs.status_code, mine.status_code) == (201, 201)
    other = client.post(f"{API}/projects/alpha/observations", json=draft(client_id="shared"),
                        headers={"Authorization": f"Bearer {bob}"})
    own = client.post(f"{API}/projects/alpha/observations", json=draft(client_id="mine", fields={"n": 2}),
                      headers={"Authorization": f"Bearer {bob}"})
    assert (other.status_code, own.status_code) == (409, 409)
    assert other.json()["error"]["code"] == own.json()["error"]["code"] == "client_id_conflict"
    assert other.json()["error"]["message"].replace("shared", "X") == own.json()["error"]["message"].replace("mine", "X")
    text = other.text.lower()
    assert "another contributor" not in text and "by someone" not in text and str(theirs.json()["id"]) not in text
