"""The observation list's filters through HTTP: each narrows the list, ``field.*`` reaches the
filter routes only, 422s name what is wrong, and place filters tell a caller nothing beyond what
the list shows them. The ``survey`` kind is the test plugin of ``tests/test_filters.py``.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.api.ratelimit import RateLimiter
from core.engine import Engine
from tests.api.conftest import API, API_REGISTRY
from tests.support.odour import odour_service
from tests.test_filters import PLUGINS, SERVICE

REGISTRY = API_REGISTRY.replace("services:\n", "services:" + SERVICE + odour_service("filters"), 1) + """
  - slug: field
    name: Field
    auto_publish: true
    location_precision: 2
    licences: [CC-BY-4.0, CC0-1.0]
    services: {survey: {}}
  - slug: smells
    name: Smells
    auto_publish: true
    services: {odour: {}}
"""
LIST = f"{API}/projects/field/observations"
EXACT = (41.3912340, 2.1712340)  # shown to the public as 41.39, 2.17
SAME_CELL = (41.3860010, 2.1660010)  # shown as 41.39, 2.17 too


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY, plugin_modules=PLUGINS)


@pytest.fixture(autouse=True)
def _no_rate_limit(app: FastAPI) -> None:
    app.state.rate_limiter = RateLimiter(0)


def listed(client: TestClient, params: dict[str, str] | str, token: str | None = None,
           url: str = LIST) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if isinstance(params, str):  # a query string as a user types it
        response = client.get(f"{url}?{params}", headers=headers)
    else:
        response = client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return sorted(o["id"] for o in response.json()["items"])


def error_of(client: TestClient, params: dict[str, str] | str, token: str | None = None,
             url: str = LIST) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get(f"{url}?{params}" if isinstance(params, str) else url,
                          params=None if isinstance(params, str) else params, headers=headers)
    assert response.status_code == 422, response.text
    return response.json()["error"]


def test_field_filters_as_a_user_types_them(client, make_observation):
    counts = {n: make_observation("field", kind="survey", fields={"count": n, "sex": sex, "alive": n > 2})["id"]
              for n, sex in ((1, "female"), (3, "male"), (5, "unknown"))}
    make_observation("field", fields={"count": "lots"})  # a free field of the generic kind
    assert listed(client, "field.count>=3") == [counts[3], counts[5]]
    assert listed(client, "field.count%3E=3") == [counts[3], counts[5]]  # the same, percent-encoded
    assert listed(client, {"field.count>": "3"}) == [counts[3], counts[5]]
    assert listed(client, "field.count<=3") == [counts[1], counts[3]]
    assert listed(client, "field.count=gt:1&field.count<=4") == [counts[3]]  # a range
    error = error_of(client, "field.count=gt:1&field.count=lt:5")  # which one counts is not guessed
    assert error["code"] == "invalid_filter_value" and "'field.count' is given twice" in error["message"]
    assert listed(client, "field.count=3") == [counts[3]]
    assert listed(client, "field.count=in:1,5") == [counts[1], counts[5]]
    assert listed(client, "field.sex=in:female,male") == [counts[1], counts[3]]
    assert listed(client, "field.sex=unknown") == [counts[5]]
    assert listed(client, "field.alive=true") == [counts[3], counts[5]]
    assert listed(client, "field.alive=false&kind=survey") == [counts[1]]


def test_a_plugins_kind_filters_as_the_docs_show(client, make_observation):
    """The example of docs/filters.md: odour reports of intensity 3 or more, categories in a list."""
    reports = {i: make_observation("smells", kind="odour", fields={"category": 5, "subtype": 53, "intensity": i,
                                                                    "hedonic_tone": -2})["id"] for i in (1, 3, 5)}
    url = f"{API}/projects/smells/observations"
    assert listed(client, "kind=odour&field.intensity>=3", url=url) == [reports[3], reports[5]]
    assert listed(client, "field.category=in:1,5&field.intensity<=3", url=url) == [reports[1], reports[3]]
    assert listed(client, "field.category=in:1,2", url=url) == []
    error = error_of(client, "field.intensity=9", url=url)
    assert error["code"] == "invalid_filter_value" and "field.intensity" in error["message"]


def test_field_422s_name_the_field(client, make_observation):
    error = error_of(client, "field.colour=red")
    assert error["code"] == "unknown_field" and "'colour'" in error["message"] and "count" in error["message"]
    error = error_of(client, "field.count>=three")
    assert error["code"] == "invalid_filter_value"
    assert "field.count" in error["message"] and "'three'" in error["message"] and "integer" in error["message"]
    error = error_of(client, "field.sex=dog")
    assert error["code"] == "invalid_filter_value" and "female" in error["message"]
    error = error_of(client, "field.note=x", url=f"{API}/projects/alpha/observations")  # generic kinds only
    assert error["code"] == "unknown_field" and "'note'" in error["message"]


def test_field_params_reach_the_filter_routes_only(client, make_observation):
    obs = make_observation("field", kind="survey", fields={"count": 2})
    error = error_of(client, "field.count=2", url=f"{API}/observations/{obs['id']}")
    assert error["code"] == "unknown_parameter" and "'field.count'" in error["message"]
    error = error_of(client, "field.count=2", url=f"{API}/projects/field")
    assert error["code"] == "unknown_parameter"
    response = client.post(f"{LIST}?field.count=2", json={})
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_parameter"
    error = error_of(client, "stauts=pending")  # a misspelt core filter is still refused
    assert error["code"] == "unknown_parameter" and "field.NAME" in error["message"]


def test_core_filters_narrow_the_list(client, make_token, make_observation, small_png):
    me = make_token("contributor", "field")
    moderator = make_token("moderator", "field")
    photo = make_observation("field", token=me, files=[("a.png", small_png, "image/png")],
                             observed_at="2026-05-02T10:00:00+00:00", licence="CC0-1.0")["id"]
    survey = make_observation("field", kind="survey", fields={"count": 4},
                              observed_at="2026-05-03T10:00:00+00:00")["id"]
    pending = make_observation("field", observed_at="2026-05-04T10:00:00+00:00", status="unpublished",
                               location={"lat": -10, "lon": 179.5})["id"]
    everything = sorted([photo, survey, pending])
    assert listed(client, {}, moderator) == everything
    assert listed(client, {}) == sorted([photo, survey])  # the public: published only
    assert listed(client, {"has_media": "true"}) == [photo]
    assert listed(client, {"has_media": "false"}, moderator) == sorted([survey, pending])
    assert listed(client, {"licence": "CC0-1.0"}) == [photo]
    assert listed(client, {"licence": "CC-BY-4.0"}) == [survey]  # the project's default licence
    assert listed(client, {"kind": "survey"}) == [survey]
    assert listed(client, {"status": "unpublished"}, moderator) == [pending]
    assert listed(client, {"status": "unpublished"}) == []  # filters never widen what a caller sees
    assert listed(client, {"since": "2026-05-03T00:00:00Z", "until": "2026-05-04T00:00:00Z"}) == [survey]
    assert listed(client, {"created_since": "2000-01-01T00:00:00Z"}, moderator) == everything
    assert listed(client, {"created_until": "2000-01-01T00:00:00Z"}, moderator) == []
    assert listed(client, {"updated_since": "2999-01-01T00:00:00Z"}, moderator) == []
    assert listed(client, {"bbox": "170,-20,-170,20"}, moderator) == [pending]  # across the antimeridian
    me_id = client.get(f"{API}/observations/{photo}", headers={"Authorization": f"Bearer {me}"}).json()["contributor_id"]
    assert listed(client, {"contributor": str(me_id)}, me) == [photo]
    assert listed(client, {"contributor": str(me_id)}, moderator) == [photo]
    other = client.get(LIST, params={"contributor": str(me_id)},
                       headers={"Authorization": f"Bearer {make_token('contributor', 'field')}"})
    assert other.status_code == 403  # another contributor's observations: staff only


@pytest.mark.parametrize(("params", "name"), [
    ({"has_media": "maybe"}, "has_media"),
    ({"licence": "GPL"}, "licence"),
    ({"created_since": "yesterday"}, "created_since"),
    ({"polygon": '{"type": "Point", "coordinates": [1, 2]}'}, "polygon"),
    ({"polygon": "[[0, 0]]"}, "polygon"),
])
def test_core_422s_name_the_parameter(client, params, name):
    error = error_of(client, params)
    assert name in json.dumps(error), error


def test_polygon_through_the_api(client, make_observation):
    inside = make_observation("field", location={"lat": 2.5, "lon": 0.5})["id"]
    notch = make_observation("field", location={"lat": 2.5, "lon": 1.5})["id"]
    u_shape = {"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3],
                                                   [0, 3], [0, 0]]]}
    assert listed(client, {"polygon": json.dumps(u_shape)}) == [inside]
    square = {"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]]]}
    assert listed(client, {"polygon": json.dumps(square)}) == sorted([inside, notch])


def test_place_filters_tell_the_public_no_more_than_the_grid(client, make_token, make_observation):
    """Two observations in one public cell answer every polygon and box alike for an anonymous
    caller or another contributor; the owner filters on the exact place; a private place is
    matched by no place filter of the public, although the observation is listed without one."""
    owner = make_token("contributor", "field")
    stranger = make_token("contributor", "field")
    first = make_observation("field", token=owner, location={"lat": EXACT[0], "lon": EXACT[1]})["id"]
    second = make_observation("field", token=owner, location={"lat": SAME_CELL[0], "lon": SAME_CELL[1]})["id"]
    around_first = {"type": "Polygon", "coordinates": [[[2.1712, 41.3912], [2.1713, 41.3912], [2.1712, 41.3913],
                                                        [2.1712, 41.3912]]]}
    around_cell = {"type": "Polygon", "coordinates": [[[2.169, 41.389], [2.171, 41.389], [2.17, 41.391],
                                                       [2.169, 41.389]]]}
    box_second = "2.1659,41.3859,2.1661,41.3861"
    for token in (None, stranger):
        for params in ({"polygon": json.dumps(around_first)}, {"bbox": box_second},
                       {"polygon": json.dumps(around_cell)}):
            assert listed(client, params, token) in ([], sorted([first, second])), (token, params)
        assert listed(client, {"polygon": json.dumps(around_first)}, token) == []
        assert listed(client, {"polygon": json.dumps(around_cell)}, token) == sorted([first, second])
    assert listed(client, {"polygon": json.dumps(around_first)}, owner) == [first]
    assert listed(client, {"bbox": box_second}, owner) == [second]

    hidden = make_observation("field", token=owner, location={"lat": 10, "lon": 10},
                              location_privacy="private")["id"]
    world = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}
    assert hidden in listed(client, {})
    assert hidden not in listed(client, {"polygon": json.dumps(world)})
    assert hidden not in listed(client, {"bbox": "-180,-90,180,90"})
    assert hidden in listed(client, {"polygon": json.dumps(world)}, owner)


def test_openapi_documents_the_filters(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/projects/{slug}/observations"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"status", "grade", "kind", "contributor", "since", "until", "created_since", "created_until",
            "updated_since", "bbox", "polygon", "has_media", "licence"} <= names
    assert "field." in operation["description"]
