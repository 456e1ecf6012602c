"""Feedback on services' results and on the services themselves (core.feedback), on a real
database with a real plugin (``suggester``, below) giving model-versioned results.

This module is also the ``suggester`` test plugin: its ``enrich_observation`` answers a
species suggestion naming its model, the version taken from the draft's ``model_version`` field.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from core import hookimpl
from core.db.models_codesign import ResultFeedback
from core.db.session import transaction
from core.errors import Forbidden, NotFound, ValidationFailed
from core.testing import draft, submit
from core.tokens import authenticate

REGISTRY = """
services:
  suggester:
    summary: suggests a species, naming its model
    settings: {type: object}
projects:
  - slug: alpha
    name: Alpha
    services: {suggester: {}}
  - slug: beta
    name: Beta
    public: false
    services: {}
"""
PLUGINS = "suggester=tests.test_feedback"


@hookimpl
def enrich_observation(observation, project):  # noqa: ANN001, ANN201 (a pluggy hook)
    version = str(observation.fields.get("model_version", "1"))
    return {"model": {"name": "fox-net", "version": version}, "best": {"name": "Vulpes vulpes", "taxon_id": None}}


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    return PLUGINS


def principal(engine, role: str, project: str | None = "alpha"):  # noqa: ANN001, ANN201
    from core.tokens import create_token

    return authenticate(engine, create_token(engine, role, project).token)


def observation(engine, version: str = "1") -> int:  # noqa: ANN001
    return submit(engine, "alpha", draft(fields={"note": "fox", "model_version": version}))["id"]


def given_in(engine, month: str, ids: list[int]) -> None:  # noqa: ANN001
    """Move these verdicts to the 15th of ``month`` (as if given then)."""
    year, mon = (int(x) for x in month.split("-"))
    with transaction(engine.sessions) as session:
        session.execute(update(ResultFeedback).where(ResultFeedback.id.in_(ids))
                        .values(updated_at=datetime(year, mon, 15, 12, tzinfo=timezone.utc)))


def test_acceptance_rate_follows_planted_agreements(engine):
    from core.feedback import acceptance_by_model, acceptance_by_month, give_result_feedback

    people = [principal(engine, "moderator") for _ in range(4)]  # staff read unpublished observations
    planted = {"2026-10": (3, 1), "2026-11": (1, 3)}  # month: (agree, disagree)
    for month, (agree, disagree) in planted.items():
        version = "1" if month == "2026-10" else "2"
        obs_id = observation(engine, version)
        verdicts = ["agree"] * agree + ["disagree"] * disagree
        ids = [give_result_feedback(engine, person, obs_id, "suggester", verdict)["id"]
               for person, verdict in zip(people, verdicts)]
        given_in(engine, month, ids)
    # a person changing their mind replaces their verdict: still 4 verdicts in November
    last = give_result_feedback(engine, people[0], obs_id, "suggester", "disagree", reason="a dog, not a fox")
    given_in(engine, "2026-11", [last["id"]])

    months = acceptance_by_month(engine, "suggester")
    assert months == [{"month": "2026-10", "agree": 3, "disagree": 1, "rate": 0.75},
                      {"month": "2026-11", "agree": 0, "disagree": 4, "rate": 0.0}]
    assert acceptance_by_month(engine, "suggester", "beta") == []
    models = acceptance_by_model(engine, "suggester")
    assert [(m["version"], m["agree"], m["disagree"]) for m in models] == [("1", 3, 1), ("2", 0, 4)]
    assert {m["model"] for m in models} == {"fox-net"}
