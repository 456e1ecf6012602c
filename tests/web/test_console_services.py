"""The console's services page: the catalogue with last week's health as the account may see it,
and for maintainers the feedback people sent, marked planned (the sender reads it) and exported as
CSV with roles, never names."""

from __future__ import annotations

import csv
import io

from fastapi import FastAPI

from core import feedback
from core.engine import Engine
from core.testing import draft, submit
from tests.web.test_console_comments import csrf_of, member, principal_of, signed_client


def test_an_operator_reads_health_marks_feedback_and_exports_it(app: FastAPI, engine: Engine) -> None:
    for _ in range(3):
        submit(engine, "alpha", draft())  # the recorder service runs on each
    operator = member(engine, "Olga Operator", "olga@example.org", operator=True)
    sender = member(engine, "Carla Contributor", "carla@example.org", "alpha", "contributor")
    sent = feedback.send_service_feedback(engine, principal_of(engine, sender), "recorder", "feature_request",
                                          body="Show the model's confidence", project="alpha")
    with signed_client(app, operator) as console:
        page = console.get("/console/services")
        assert page.status_code == 200
        row = page.text.split("<th scope=\"row\">recorder", 1)[1].split("</tr>", 1)[0]
        assert "3 run, 0 failed, 0 timed out, 0 retried" in row
        assert "Show the model&#39;s confidence" in page.text and "contributor" in page.text
        assert "Carla" not in page.text  # the list says the sender's role, not who
        refused = console.post(f"/console/services/feedback/{sent['id']}/mark", data={"state": "planned"})
        assert refused.status_code == 403  # no CSRF token: nothing changes
        done = console.post(f"/console/services/feedback/{sent['id']}/mark",
                            data={"csrf": csrf_of(page.text), "state": "planned", "note": "in the spring release"},
                            follow_redirects=False)
        assert done.status_code == 303
        exported = console.get("/console/services/feedback.csv")
        assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
        [line] = list(csv.DictReader(io.StringIO(exported.text)))
        assert (line["role"], line["state"], line["body"]) == ("contributor", "planned", "Show the model's confidence")
    [mine] = feedback.mine(engine, principal_of(engine, sender))
    assert (mine["state"], mine["state_note"]) == ("planned", "in the spring release")


def test_a_moderator_sees_the_catalogue_but_not_the_feedback_and_a_visitor_signs_in_first(
        app: FastAPI, engine: Engine) -> None:
    from fastapi.testclient import TestClient

    moderator = member(engine, "Mo Moderator", "mo@example.org", "alpha", "moderator")
    with signed_client(app, moderator) as console:
        page = console.get("/console/services")
        assert page.status_code == 200 and "recorder" in page.text
        assert "Feedback on the services" not in page.text
        assert console.get("/console/services/feedback.csv").status_code == 403
    with TestClient(app) as visitor:
        answer = visitor.get("/console/services", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")


def test_the_page_is_in_spanish(app: FastAPI, engine: Engine) -> None:
    operator = member(engine, "Olga Operator", "olga@example.org", operator=True)
    with signed_client(app, operator) as console:
        page = console.get("/console/services", headers={"Accept-Language": "es"})
        assert "El catálogo de servicios" in page.text and "Madurez" in page.text
