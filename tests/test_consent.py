"""Consent: a person's answers (newest holds, history kept), the current version only, and the
administrators' export of who agreed, through the core, the API and the command line."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from core import consent
from core.db.models import Account, AuditEntry
from core.engine import Engine
from core.tokens import NewToken, create_token
from tests.api.conftest import app, client  # noqa: F401  (fixtures, on this module's engine)
from tests.conftest import BASE_REGISTRY

REGISTRY = BASE_REGISTRY + """
  - slug: delta
    name: Delta
    licence_version: "2"
    consent_choices:
      - {name: newsletter, text: "Send me the project's newsletter", version: "3"}
    services: {}
"""
API = "/api/v1"


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY)


@pytest.fixture
def person(engine: Engine) -> Callable[..., NewToken]:
    def make(role: str, project: str, name: str, email: str | None = None) -> NewToken:
        new = create_token(engine, role, project, name)
        if email:
            with engine.sessions.begin() as session:
                session.execute(update(Account).where(Account.id == new.account_id).values(email=email))
        return new

    return make


def bearer(new: NewToken | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {new.token}"} if new else {}


def answer(client: TestClient, who: NewToken | None, **body: Any) -> Any:
    return client.post(f"{API}/me/consents", json=body, headers=bearer(who))


def test_the_newest_answer_holds_and_the_history_is_kept(engine, person):
    ann, bob = person("contributor", "delta", "Ann"), person("contributor", "delta", "Bob")
    delta = engine.registry.project("delta")
    consent.record(engine, ann.account_id, delta, "newsletter", "3", True)
    consent.record(engine, bob.account_id, delta, "newsletter", "3", True)
    consent.record(engine, bob.account_id, delta, "newsletter", "3", False)
    consent.record(engine, ann.account_id, delta, consent.ATTRIBUTION, "1", True)
    assert consent.agreed(engine, "delta", "newsletter") == {ann.account_id}
    assert consent.agreed(engine, "delta", consent.ATTRIBUTION) == {ann.account_id}
    assert consent.agreed(engine, "alpha", consent.ATTRIBUTION) == set()
    consent.record(engine, bob.account_id, delta, "newsletter", "3", True)
    assert consent.agreed(engine, "delta", "newsletter") == {ann.account_id, bob.account_id}
    mine = consent.answers_of(engine, bob.account_id)
    assert [(a["choice"], a["agreed"]) for a in mine["current"]] == [("newsletter", True)]
    assert [a["agreed"] for a in mine["history"]] == [True, False, True]


def test_a_person_records_answers_through_the_api(client, person):
    ann = person("contributor", "delta", "Ann")
    made = answer(client, ann, project="delta", choice="licence", version="2", agreed=True)
    assert made.status_code == 201, made.text
    assert made.json() | {"at": None} == {"project": "delta", "choice": "licence", "version": "2", "agreed": True,
                                          "at": None, "current_version": "2", "outdated": False}
    assert answer(client, ann, project="delta", choice="newsletter", version="3", agreed=False).status_code == 201
    assert answer(client, ann, project="delta", choice="newsletter", version="3", agreed=True).status_code == 201
    # a public project the person is no member of: agreeing to its newsletter is theirs to do
    assert answer(client, ann, project="alpha", choice="attribution", version="1", agreed=True).status_code == 201
    mine = client.get(f"{API}/me/consents", headers=bearer(ann)).json()
    assert [(a["project"], a["choice"], a["agreed"]) for a in mine["current"]] == [
        ("alpha", "attribution", True), ("delta", "licence", True), ("delta", "newsletter", True)]
    assert len(mine["history"]) == 4
    only_delta = client.get(f"{API}/me/consents", params={"project": "delta"}, headers=bearer(ann)).json()
    assert {a["project"] for a in only_delta["history"]} == {"delta"}


def test_an_answer_to_an_old_text_or_an_unknown_choice_is_refused(client, person):
    ann = person("contributor", "delta", "Ann")
    old = answer(client, ann, project="delta", choice="licence", version="1", agreed=True)
    assert old.status_code == 422
    assert old.json()["error"]["code"] == "consent_version_outdated" and "'2'" in old.json()["error"]["message"]
    unknown = answer(client, ann, project="delta", choice="lottery", version="1", agreed=True)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_choice"
    assert "newsletter" in unknown.json()["error"]["message"]
    assert answer(client, None, project="delta", choice="licence", version="2", agreed=True).status_code == 401
    # beta is not public: to an outsider it is as unknown as a project that does not exist
    hidden = answer(client, ann, project="beta", choice="licence", version="1", agreed=True)
    missing = answer(client, ann, project="nowhere", choice="licence", version="1", agreed=True)
    assert hidden.status_code == missing.status_code == 404
    assert client.get(f"{API}/me/consents", headers=bearer(ann)).json() == {"current": [], "history": []}


def test_admins_export_who_agreed_and_nothing_else(client, engine, person):
    admin = person("admin", "delta", "Ada Admin")
    ann = person("contributor", "delta", "Ann", "ann@example.org")
    bob = person("contributor", "delta", "Bob", "bob@example.org")
    cid = person("contributor", "delta", "Cid", "cid@example.org")
    answer(client, ann, project="delta", choice="newsletter", version="3", agreed=True)
    answer(client, bob, project="delta", choice="newsletter", version="3", agreed=True)
    answer(client, bob, project="delta", choice="newsletter", version="3", agreed=False)
    answer(client, cid, project="delta", choice="licence", version="2", agreed=True)
    url = f"{API}/projects/delta/consents/newsletter/accounts"
    response = client.get(url, headers=bearer(admin))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["account_id"], r["display_name"], r["email"], r["version"]) for r in rows] == [
        (str(ann.account_id), "Ann", "ann@example.org", "3")]
    assert list(rows[0]) == ["account_id", "display_name", "email", "agreed_at", "version"]
    as_json = client.get(url, params={"format": "json"}, headers=bearer(admin)).json()
    assert [r["email"] for r in as_json] == ["ann@example.org"]

    moderator = person("moderator", "delta", "Mo")
    assert client.get(url, headers=bearer(moderator)).status_code == 403
    assert client.get(url, headers=bearer(ann)).status_code == 403
    assert client.get(url, headers=bearer(None)).status_code == 401
    assert client.get(f"{API}/projects/delta/consents/lottery/accounts", headers=bearer(admin)).status_code == 422
    other_admin = person("admin", "alpha", "Al")
    assert client.get(url, headers=bearer(other_admin)).status_code == 403

    with engine.sessions() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "export_consents")))
    assert [(e.project, e.after) for e in entries] == [("delta", {"choice": "newsletter", "accounts": 1})] * 2
    assert "ann@example.org" not in str([(e.actor, e.before, e.after) for e in entries])


def test_the_command_line_exports_who_agreed(engine, person, tmp_path):
    from core.cli import build_cli

    ann = person("contributor", "delta", "Ann", "ann@example.org")
    consent.record(engine, ann.account_id, engine.registry.project("delta"), "newsletter", "3", True)
    out = tmp_path / "newsletter.csv"
    runner = CliRunner()
    result = runner.invoke(build_cli(), ["consents", "export", "delta", "newsletter", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ann@example.org" in out.read_text()
    result = runner.invoke(build_cli(), ["consents", "export", "delta", "newsletter", "--format", "json"])
    assert [r["display_name"] for r in json.loads(result.stdout)] == ["Ann"]
    result = runner.invoke(build_cli(), ["consents", "export", "delta", "lottery"])
    assert result.exit_code == 2 and "newsletter" in result.stderr
