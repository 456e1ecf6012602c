"""The console's project page: services as registry.yaml gives them, contributors with their
counts, the consents export (admins), and erasure on request with a confirmation that says what
the project's policy does; who may do what."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core import accounts, consent
from core.db.models import Account, AuditEntry, Observation
from core.db.session import transaction
from core.engine import Engine
from core.testing import draft, submit
from core.tokens import create_account_token
from tests.web.test_console_comments import csrf_of, member, signed_client

REGISTRY = """
services:
  recorder:
    summary: records which observations it saw
    version: 2.1.0
    settings: {type: object, properties: {depth: {type: integer, default: 3}}}
projects:
  - slug: alpha
    name: Alpha
    timezone: Europe/Madrid
    erasure: delete
    consent_choices: [{name: newsletter, text: Send me the newsletter, version: "2"}]
    services: {recorder: {depth: 5}}
  - slug: beta
    name: Beta
    services: {}
"""


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    return "recorder=tests.support.recorder"


def _observations(api: TestClient, engine: Engine, account_id: int, project: str, n: int) -> list[int]:
    """``n`` observations of ``project`` sent through the API by the account."""
    token = create_account_token(engine, account_id).token
    return [submit(api, project, draft(), token=token)["id"] for _ in range(n)]


@pytest.fixture
def people(engine: Engine, client: TestClient) -> dict[str, int]:
    ids = {
        "admin": member(engine, "Ada Admin", "ada@example.org", "alpha", "admin"),
        "moderator": member(engine, "Mo Moderator", "mo@example.org", "alpha", "moderator"),
        "dora": member(engine, "Dora Delete-me", "dora@example.org", "alpha", "contributor"),
        "both": member(engine, "Bo Both", "bo@example.org", "alpha", "contributor"),
    }
    accounts.grant(engine, ids["both"], "beta", "contributor")
    _observations(client, engine, ids["dora"], "alpha", 3)
    _observations(client, engine, ids["both"], "alpha", 1)
    alpha = engine.registry.project("alpha")
    consent.record(engine, ids["dora"], alpha, "newsletter", "2", True)
    consent.record(engine, ids["both"], alpha, "newsletter", "2", False)
    return ids


def test_the_project_page_shows_services_and_contributors(app: FastAPI, people: dict[str, int]) -> None:
    with signed_client(app, people["moderator"]) as console:
        page = console.get("/console/projects/alpha/project")
    assert page.status_code == 200
    text = page.text
    assert "records which observations it saw" in text and "2.1.0" in text and "&#34;depth&#34;: 5" in text
    rows = text.split("<tbody>")[2].split("</tbody>")[0]
    assert rows.index("Dora Delete-me") < rows.index("Bo Both")  # most observations first
    assert "<td>3</td>" in rows
    assert "Download CSV" not in text and "Erase on request" not in text  # admins only


def test_admins_download_who_agreed_to_a_choice(app: FastAPI, people: dict[str, int]) -> None:
    with signed_client(app, people["admin"]) as console:
        page = console.get("/console/projects/alpha/project")
        answer = console.post("/console/projects/alpha/project/consents",
                              data={"csrf": csrf_of(page.text), "choice": "newsletter"})
        assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [(r["display_name"], r["email"], r["version"]) for r in rows] == \
            [("Dora Delete-me", "dora@example.org", "2")]
        unknown = console.post("/console/projects/alpha/project/consents",
                               data={"csrf": csrf_of(page.text), "choice": "nope"})
        assert unknown.status_code == 422 and "newsletter" in unknown.text
    with signed_client(app, people["moderator"]) as console:
        page = console.get("/console/projects/alpha/project")
        assert console.post("/console/projects/alpha/project/consents",
                            data={"csrf": csrf_of(page.text), "choice": "newsletter"}).status_code == 403


def test_erasure_says_what_the_policy_does_then_erases(app: FastAPI, people: dict[str, int]) -> None:
    engine = app.state.engine
    dora = people["dora"]
    with signed_client(app, people["admin"]) as console:
        confirm = console.get(f"/console/projects/alpha/project/erase/{dora}")
        assert confirm.status_code == 200
        assert "policy is to delete" in confirm.text and "3 observations here are deleted" in confirm.text
        assert "cannot be undone" in confirm.text
        unticked = console.post(f"/console/projects/alpha/project/erase/{dora}", data={"csrf": csrf_of(confirm.text)})
        assert unticked.status_code == 422
        with transaction(engine.readers) as session:
            assert session.get(Account, dora) is not None  # nothing happened without the box ticked
        done = console.post(f"/console/projects/alpha/project/erase/{dora}",
                            data={"csrf": csrf_of(confirm.text), "confirm": "yes"})
        assert done.status_code == 200 and "has been erased" in done.text
        assert "<dt>Observations deleted</dt><dd>3</dd>" in done.text
    with transaction(engine.readers) as session:
        assert session.get(Account, dora) is None
        assert session.query(Observation).filter(Observation.project == "alpha").count() == 1
        entry = session.query(AuditEntry).filter(AuditEntry.action == "erase_account").one()
        assert entry.actor.startswith(f"account:{people['admin']}")


def test_a_person_of_other_projects_is_for_an_operator(app: FastAPI, people: dict[str, int]) -> None:
    with signed_client(app, people["admin"]) as console:
        page = console.get(f"/console/projects/alpha/project/erase/{people['both']}")
        assert "only an operator may do it" in page.text and "Erase this person" not in page.text
        refused = console.post(f"/console/projects/alpha/project/erase/{people['both']}",
                               data={"csrf": csrf_of(page.text), "confirm": "yes"})
        assert refused.status_code == 403
        own = console.get(f"/console/projects/alpha/project/erase/{people['admin']}")
        assert "your own account" in own.text
    operator = member(app.state.engine, "Olga Operator", "olga@example.org", operator=True)
    with signed_client(app, operator) as console:
        page = console.get(f"/console/projects/alpha/project/erase/{people['both']}")
        assert "Erase this person" in page.text and "policy is to delete" in page.text


def test_who_may_open_the_project_page_and_erase(app: FastAPI, people: dict[str, int]) -> None:
    dora = people["dora"]
    with signed_client(app, people["moderator"]) as console:
        assert console.get("/console/projects/alpha/project").status_code == 200
        assert console.get(f"/console/projects/alpha/project/erase/{dora}").status_code == 403
        page = console.get("/console/projects/alpha/project")
        refused = console.post(f"/console/projects/alpha/project/erase/{dora}",
                               data={"csrf": csrf_of(page.text), "confirm": "yes"})
        assert refused.status_code == 403
    with signed_client(app, dora) as contributor:
        assert contributor.get("/console/projects/alpha/project").status_code == 403
    beta_admin = member(app.state.engine, "Bea Beta", "bea@example.org", "beta", "admin")
    with signed_client(app, beta_admin) as console:
        assert console.get("/console/projects/alpha/project").status_code == 403
        # alpha's contributor is not in beta: not found there
        assert console.get(f"/console/projects/beta/project/erase/{dora}").status_code == 404
    with signed_client(app, people["admin"]) as console:
        assert console.post(f"/console/projects/alpha/project/erase/{dora}", data={"confirm": "yes"}).status_code == 403
        assert console.post("/console/projects/alpha/project/consents", data={"choice": "licence"}).status_code == 403
    with transaction(app.state.engine.readers) as session:
        assert session.get(Account, dora) is not None
