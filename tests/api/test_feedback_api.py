"""Feedback through the HTTP API: a contributor marks a species suggestion wrong with the right
taxon, staff read verdicts and acceptance; people send services' maintainers ratings, comments
and requests, maintainers filter, export and mark them, and the sender follows the state. Nobody
who may not see it learns who wrote what."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from core.db.models import AuditEntry, Taxon
from core.db.session import transaction
from core.testing import API, bearer, draft, submit
from core.tokens import create_token

REGISTRY = """
services:
  suggester:
    summary: suggests a species, naming its model
    settings: {type: object}
projects:
  - slug: alpha
    name: Alpha
    auto_publish: true
    services: {suggester: {}}
  - slug: beta
    name: Beta
    public: false
    services: {suggester: {}}
  - slug: gamma
    name: Gamma
    auto_publish: true
    services: {}
"""


@pytest.fixture
def plugins() -> str:
    return "suggester=tests.test_feedback"


@pytest.fixture
def engine(make_engine):  # noqa: ANN001, ANN201 (this module's registry, not tests/api's)
    return make_engine(REGISTRY)


def person(engine, role: str, project: str | None, name: str) -> tuple[str, int]:  # noqa: ANN001
    made = create_token(engine, role, project, name)
    return made.token, made.account_id


def taxon(engine) -> int:  # noqa: ANN001
    with transaction(engine.sessions) as session:
        row = Taxon(scientific_name="Vulpes vulpes", rank="species", rank_level=10, source="test", source_id="1")
        session.add(row)
        session.flush()
        return row.id


def problem_code(response) -> str:  # noqa: ANN001
    body = response.json()["error"]
    return body["details"][0]["code"] if body.get("details") else body["code"]


def test_verdicts_on_results(client, engine):
    fox = taxon(engine)
    ana, _ = person(engine, "contributor", "alpha", "Ana Observer")
    ben, _ = person(engine, "contributor", "alpha", "Ben Reader")
    mod, _ = person(engine, "moderator", "alpha", "Mo Derator")
    op, _ = person(engine, "operator", None, "Op")
    obs = submit(client, "alpha", draft(fields={"model_version": "3"}), token=ana)["id"]
    url = f"{API}/observations/{obs}/feedback"

    said = client.post(url, json={"service": "suggester", "verdict": "disagree", "correction": {"taxon_id": fox},
                                  "reason": "a fox, not a dog"}, headers=bearer(ana))
    assert said.status_code == 200, said.text
    assert said.json()["model"] == {"name": "fox-net", "version": "3"}
    assert said.json()["correction_taxon_id"] == fox and "account_id" not in said.json()
    assert client.post(url, json={"service": "suggester", "verdict": "agree"}, headers=bearer(ben)).status_code == 200

    seen = client.get(url, headers=bearer(ben)).json()
    assert seen["counts"] == {"suggester": {"agree": 1, "disagree": 1}}
    assert [m["verdict"] for m in seen["mine"]] == ["agree"]  # Ben sees his own verdict, not Ana's
    anonymous = client.get(url)
    assert anonymous.status_code == 200 and anonymous.json()["mine"] == []

    # Ana changes her mind: her verdict is replaced, not added
    client.post(url, json={"service": "suggester", "verdict": "agree"}, headers=bearer(ana))
    assert client.get(url).json()["counts"] == {"suggester": {"agree": 2, "disagree": 0}}

    # staff list verdicts; only an operator sees who gave them
    listed = client.get(f"{API}/projects/alpha/feedback/results", headers=bearer(mod))
    assert listed.status_code == 200 and len(listed.json()["results"]) == 2
    assert all("account_id" not in r for r in listed.json()["results"])
    assert "Ana" not in listed.text and "Ben" not in listed.text
    as_operator = client.get(f"{API}/projects/alpha/feedback/results", headers=bearer(op)).json()["results"]
    assert all(r["account_id"] for r in as_operator)
    assert client.get(f"{API}/projects/alpha/feedback/results", headers=bearer(ben)).status_code == 403

    # acceptance: anyone who sees the project; every project at once for operators only
    accepted = client.get(f"{API}/services/suggester/acceptance", params={"project": "alpha"})
    assert accepted.status_code == 200
    assert [(m["agree"], m["disagree"], m["rate"]) for m in accepted.json()["by_month"]] == [(2, 0, 1.0)]
    assert accepted.json()["by_model"][0]["version"] == "3"
    assert client.get(f"{API}/services/suggester/acceptance").status_code == 401
    assert client.get(f"{API}/services/suggester/acceptance", params={"project": "beta"}).status_code == 404
    assert client.get(f"{API}/services/suggester/acceptance", headers=bearer(op)).status_code == 200

    # refusals, each with its reason, and nothing stored
    bad = [({"service": "nope", "verdict": "agree"}, ana, 422, "unknown_service"),
           ({"service": "suggester", "verdict": "maybe"}, ana, 422, None),
           ({"service": "suggester", "verdict": "disagree", "correction": {"taxon_id": 999999}}, ana, 422,
            "unknown_taxon"),
           ({"service": "suggester", "verdict": "agree", "correction": {"label": "a dog"}}, ana, 422,
            "correction_with_agree"),
           ({"service": "suggester", "verdict": "agree"}, None, 401, None)]
    for body, token, status, code in bad:
        answer = client.post(url, json=body, headers=bearer(token))
        assert answer.status_code == status, (body, answer.text)
        if code:
            assert problem_code(answer) == code, answer.text
    plain = submit(client, "gamma", draft(), token=person(engine, "contributor", "gamma", "G")[0])["id"]
    answer = client.post(f"{API}/observations/{plain}/feedback", json={"service": "suggester", "verdict": "agree"},
                         headers=bearer(ben))
    assert answer.status_code == 404 and problem_code(answer) == "no_result"  # gamma does not use the suggester
    hidden = submit(client, "beta", draft(), token=person(engine, "contributor", "beta", "C")[0])["id"]
    answer = client.post(f"{API}/observations/{hidden}/feedback", json={"service": "suggester", "verdict": "agree"},
                         headers=bearer(ben))
    assert answer.status_code == 404  # Ben may not read it: the same 404 as a missing observation
    assert client.get(url).json()["counts"] == {"suggester": {"agree": 2, "disagree": 0}}


def test_feedback_on_services_reaches_maintainers_without_names(client, engine):
    zoe, _ = person(engine, "contributor", "alpha", "Zoë Contributor")
    adm, _ = person(engine, "admin", "alpha", "Adele Admin")
    beta_admin, _ = person(engine, "admin", "beta", "Bert Admin")
    op, _ = person(engine, "operator", None, "Olga Operator")
    send = f"{API}/services/suggester/feedback"

    rated = client.post(send, json={"kind": "rating", "rating": 4, "body": "=HYPERLINK(\"x\") good on foxes",
                                    "project": "alpha"}, headers=bearer(zoe))
    assert rated.status_code == 201, rated.text
    assert rated.json()["role"] == "contributor" and rated.json()["state"] == "new"
    asked = client.post(send, json={"kind": "feature_request", "body": "Suggest the genus when unsure",
                                    "project": "alpha"}, headers=bearer(adm))
    assert asked.json()["role"] == "moderator"  # an admin's role, from the membership
    loose = client.post(send, json={"kind": "comment", "body": "works well"}, headers=bearer(op))
    assert loose.json()["role"] == "operator"

    for body, token, status, code in [
            ({"kind": "rating", "rating": 6}, zoe, 422, None),
            ({"kind": "rating"}, zoe, 422, "rating_out_of_range"),
            ({"kind": "comment"}, zoe, 422, "body_empty"),
            ({"kind": "comment", "body": "x", "rating": 3}, zoe, 422, "rating_not_expected"),
            ({"kind": "praise", "body": "x"}, zoe, 422, None),
            ({"kind": "comment", "body": "x", "project": "beta"}, zoe, 404, "unknown_project"),
            ({"kind": "comment", "body": "x"}, None, 401, None)]:
        answer = client.post(send, json=body, headers=bearer(token))
        assert answer.status_code == status, (body, answer.text)
        if code:
            assert problem_code(answer) == code
    unknown = client.post(f"{API}/services/nope/feedback", json={"kind": "comment", "body": "x"}, headers=bearer(zoe))
    assert unknown.status_code == 404 and problem_code(unknown) == "unknown_service"

    # the project's admin sees its two items, with roles and without names; beta's admin none
    listed = client.get(f"{API}/feedback", headers=bearer(adm))
    assert listed.status_code == 200
    assert [(r["kind"], r["role"]) for r in listed.json()["results"]] == [("feature_request", "moderator"),
                                                                           ("rating", "contributor")]
    assert "Zoë" not in listed.text and all("account_id" not in r for r in listed.json()["results"])
    assert client.get(f"{API}/feedback", headers=bearer(beta_admin)).json()["results"] == []
    assert client.get(f"{API}/feedback", headers=bearer(zoe)).status_code == 403
    assert client.get(f"{API}/feedback").status_code == 401
    everything = client.get(f"{API}/feedback", headers=bearer(op)).json()["results"]
    assert {r["author"] for r in everything} == {"Zoë Contributor", "Adele Admin", "Olga Operator"}
    assert [r["kind"] for r in client.get(f"{API}/feedback", params={"role": "contributor"},
                                          headers=bearer(adm)).json()["results"]] == ["rating"]
    assert client.get(f"{API}/feedback", params={"since": "2999-01-01T00:00:00Z"},
                      headers=bearer(op)).json()["results"] == []
    assert client.get(f"{API}/feedback", params={"kind": "praise"}, headers=bearer(op)).status_code == 422

    # the CSV for a co-design session: roles, no names or ids; a formula is defused
    exported = client.get(f"{API}/feedback/export", headers=bearer(adm))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["role"] for r in rows] == ["contributor", "moderator"]
    assert "author" not in rows[0] and "account_id" not in rows[0] and "Zoë" not in exported.text
    assert rows[0]["body"].startswith("'=HYPERLINK") and rows[0]["rating"] == "4"
    assert "author" in next(csv.DictReader(io.StringIO(client.get(f"{API}/feedback/export",
                                                                  headers=bearer(op)).text)))

    # marking: audited; the sender sees state and note; not the admin's to mark an item outside alpha
    item = rated.json()["id"]
    marked = client.put(f"{API}/feedback/{item}/state", json={"state": "planned", "note": "in spring"},
                        headers=bearer(adm))
    assert marked.status_code == 200 and marked.json()["state"] == "planned"
    assert client.put(f"{API}/feedback/{loose.json()['id']}/state", json={"state": "done"},
                      headers=bearer(adm)).status_code == 404
    assert client.put(f"{API}/feedback/{item}/state", json={"state": "maybe"}, headers=bearer(adm)).status_code == 422
    assert client.put(f"{API}/feedback/{item}/state", json={"state": "done"}, headers=bearer(zoe)).status_code == 403
    mine = client.get(f"{API}/me/feedback", headers=bearer(zoe))
    assert mine.status_code == 200
    assert [(s["state"], s["state_note"]) for s in mine.json()["services"]] == [("planned", "in spring")]
    assert "account_id" not in mine.json()["services"][0] and mine.json()["results"] == []
    assert client.get(f"{API}/me/feedback").status_code == 401
    with transaction(engine.readers) as session:
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "feedback_state")).one()
    assert entry.project == "alpha" and entry.before["state"] == "new" and entry.after["state"] == "planned"
    assert client.get(f"{API}/feedback", params={"state": "planned"},
                      headers=bearer(adm)).json()["results"][0]["id"] == item
