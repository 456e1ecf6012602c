"""Participation analytics end to end: observations submitted through the API, read back by
``GET /api/v1/analytics/participation`` and ``observatory analyse participation`` (through
``Observatory.local``); who may ask; bad input refused with a message; no name or id in the answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from core.cli import build_cli
from core.testing import draft, submit
from tests.plugins.identification.conftest import Person, make_person

URL = "/api/v1/analytics/participation"


def _at(day: int, hour: int = 9) -> dict[str, Any]:
    return draft(observed_at=f"2026-05-{day:02d}T{hour:02d}:30:00+02:00")


@pytest.fixture
def people(engine: Any, client: Any) -> dict[str, Person]:
    """In ``survey``: Ana on six days (one observation of them trashed by staff, its day seen twice),
    Ben twice on one day, Eva once; in ``closed``: Ben once. ``mod`` moderates survey only,
    ``both`` is admin of both, ``op`` an operator."""
    from core.moderation import moderate

    people = {"ana": make_person(engine, "Ana Realname", {"survey": "contributor"}),
              "ben": make_person(engine, "Ben Realname", {"survey": "contributor", "closed": "contributor"}),
              "eva": make_person(engine, "Eva Realname", {"survey": "contributor"}),
              "mod": make_person(engine, "Mo", {"survey": "moderator"}),
              "both": make_person(engine, "Bo", {"survey": "admin", "closed": "admin"}),
              "op": make_person(engine, "Op", operator=True)}
    for day in (1, 2, 3, 5, 8, 9):
        submit(client, "survey", _at(day), token=people["ana"].token)
    trashed = submit(client, "survey", _at(20), token=people["ana"].token)["id"]
    moderate(engine, trashed, "trash", actor="test")
    submit(client, "survey", _at(4, 8), token=people["ben"].token)
    submit(client, "survey", _at(4, 20), token=people["ben"].token)
    submit(client, "survey", _at(7), token=people["eva"].token)
    submit(client, "closed", _at(7), token=people["ben"].token)
    return people


def test_staff_get_the_figures_of_what_was_submitted(client: Any, people: dict[str, Person]):
    response = client.get(URL, params={"projects": "survey"}, headers=people["mod"].headers)
    assert response.status_code == 200, response.text
    [survey] = response.json()["projects"]
    assert survey["project"] == "survey" and survey["timezone"] == "Europe/Madrid"
    # the trashed observation does not count: Ana 6, Ben 2, Eva 1
    assert (survey["n_observations"], survey["n_contributors"]) == (9, 3)
    assert survey["one_day_share"] == pytest.approx(2 / 3)
    assert survey["top10_share"] == pytest.approx(6 / 9)
    assert survey["gini"] == pytest.approx((abs(6 - 2) + abs(6 - 1) + abs(2 - 1)) * 2 / (2 * 9 * 3))
    assert survey["median_active_days"] == 1
    assert survey["monthly"] == [{"month": "2026-05", "active": 3, "new": 3, "returning": 0}]
    assert survey["retention"] == [{"cohort": "2026-05", "size": 3, "shares": [1.0]}]
    profiles = survey["profiles"]
    # Ana alone has five active days or more (the registry's default threshold)
    assert (profiles["min_active_days"], profiles["n_profiled"], profiles["n_below_min_active_days"]) == (5, 1, 2)
    assert sum(profiles["counts"].values()) == 1
    assert profiles["centroids"][0]["size"] == 1
    assert profiles["centroids"][0]["activity_ratio"] == pytest.approx(6 / 9)
    for person in ("ana", "ben", "eva"):  # no name and no account id anywhere
        assert "Realname" not in response.text
        assert f'"{people[person].account_id}"' not in response.text
    assert "contributor" not in json.dumps(survey["profiles"])


def test_projects_side_by_side_and_the_threshold_as_asked(client: Any, people: dict[str, Person]):
    response = client.get(URL, params={"projects": "closed,survey", "min_active_days": 2},
                          headers=people["both"].headers)
    assert response.status_code == 200, response.text
    closed, survey = response.json()["projects"]
    assert (closed["project"], survey["project"]) == ("closed", "survey")
    assert (closed["n_observations"], closed["n_contributors"], closed["one_day_share"]) == (1, 1, 1.0)
    assert survey["profiles"]["min_active_days"] == 2 and survey["profiles"]["n_profiled"] == 1
    operator = client.get(URL, params={"projects": "survey,closed"}, headers=people["op"].headers)
    assert [p["project"] for p in operator.json()["projects"]] == ["survey", "closed"]


REFUSALS = [  # (who, projects, status, error code)
    (None, "survey", 401, "unauthorized"),
    ("ana", "survey", 403, "forbidden"),  # a contributor, not staff
    ("mod", "survey,closed", 403, "forbidden"),  # staff of one of the two
    ("op", "survey,nowhere", 404, "unknown_project"),
    ("mod", "nowhere", 404, "unknown_project"),
    ("op", "survey,,closed", 422, None),
    ("op", "Survey!", 422, None),
    ("op", "", 422, None),
    ("op", ",".join(f"p{i}" for i in range(21)), 422, "too_many_projects"),
]


def test_who_may_ask_and_bad_input(client: Any, people: dict[str, Person]):
    for who, query, status, code in REFUSALS:
        headers = people[who].headers if who else {}
        response = client.get(URL, params={"projects": query}, headers=headers)
        assert response.status_code == status, (who, query, response.text)
        error = response.json()["error"]
        assert error["message"]
        if code:
            assert error["code"] == code, (who, query, error)
    assert "'closed'" in client.get(URL, params={"projects": "survey,closed"},
                                    headers=people["mod"].headers).json()["error"]["message"]
    response = client.get(URL, params={"projects": "survey", "min_active_days": 1}, headers=people["op"].headers)
    assert response.status_code == 422
    response = client.get(URL, params={"projects": "survey", "project": "x"}, headers=people["op"].headers)
    assert response.status_code == 422 and "unknown query parameter" in response.json()["error"]["message"]


def test_the_route_is_documented(client: Any):
    document = client.get("/openapi.json").json()
    operation = document["paths"][URL]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"projects", "min_active_days"}
    assert {"200", "401", "403", "404", "422", "429"} <= set(operation["responses"])
    assert operation.get("x-token-required") is True


def _cli(*args: str) -> Any:
    return CliRunner().invoke(build_cli(), ["analyse", "participation", *args], catch_exceptions=False)


def test_the_command_writes_the_table_and_the_json(people: dict[str, Person], tmp_path: Path):
    shown = _cli("--projects", "survey,closed")
    assert shown.exit_code == 0, shown.output
    assert "survey" in shown.stdout and "closed" in shown.stdout and "top10_share" in shown.stdout
    assert "Realname" not in shown.stdout
    table = tmp_path / "side.csv"
    assert _cli("--projects", "survey,closed", "--out", str(table)).exit_code == 0
    side = pd.read_csv(table, index_col="metric")
    assert list(side.columns) == ["survey", "closed"]
    assert float(side.loc["n_observations", "survey"]) == 9 and float(side.loc["n_contributors", "closed"]) == 1
    assert float(side.loc["profile_min_active_days", "survey"]) == 5
    answer = tmp_path / "all.json"
    assert _cli("--projects", "survey", "--out", str(answer), "--min-active-days", "3").exit_code == 0
    [survey] = json.loads(answer.read_text())["projects"]
    assert survey["profiles"]["min_active_days"] == 3 and survey["n_contributors"] == 3


def test_the_command_refuses_bad_input_with_a_message(people: dict[str, Person], tmp_path: Path):
    unknown = _cli("--projects", "survey,nowhere")
    assert unknown.exit_code == 2 and "unknown project 'nowhere'" in unknown.stderr
    wrong = _cli("--projects", "survey", "--out", str(tmp_path / "x.xlsx"))
    assert wrong.exit_code == 2 and ".csv or .json" in wrong.stderr
    empty = _cli("--projects", " , ")
    assert empty.exit_code == 2 and "at least one project" in empty.stderr
    nowhere = _cli("--projects", "survey", "--out", str(tmp_path / "missing" / "x.csv"))
    assert nowhere.exit_code == 2 and "cannot write" in nowhere.stderr
