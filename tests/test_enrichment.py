"""Failure isolation: a plugin that raises is retried, then recorded as failed; the
observation and the other plugins' results stay intact."""

from __future__ import annotations

from core import lifecycle
from core.db.session import transaction
from core.views import load_observation, observation_dict
from core.worker import recover_once
from tests.conftest import BASE_REGISTRY, draft


def show(engine, obs_id):
    with transaction(engine.sessions) as s:
        return observation_dict(load_observation(s, obs_id))


def test_a_failing_plugin_is_retried_then_succeeds(engine):
    obs = show(engine, lifecycle.submit(engine, "alpha", draft()).observation_id)
    flaky = obs["enrichments"]["flaky"]
    assert flaky["status"] == "done"
    assert flaky["attempts"] == 2
    assert flaky["result"] == {"attempt": 2}


def test_a_plugin_that_always_fails_is_recorded_and_isolated(make_engine):
    engine = make_engine(BASE_REGISTRY.replace("flaky: {failures: 1}", "flaky: {failures: 99}"), enrich_max_attempts=3)
    obs = show(engine, lifecycle.submit(engine, "alpha", draft()).observation_id)
    flaky = obs["enrichments"]["flaky"]
    assert flaky["status"] == "failed"
    assert flaky["attempts"] == 3
    assert "RuntimeError: flaky failure 3" in flaky["error"]
    assert obs["enrichments"]["recorder"]["status"] == "done", "the other plugin's result is intact"
    assert obs["fields"] == {"note": "a fox crossing the path"}
    assert obs["grade"] == "needs_id", "quality and grading still ran"


def test_a_plugin_of_another_project_never_runs(make_engine):
    from tests.support import recorder

    engine = make_engine()
    recorder.CALLS.clear()
    obs = show(engine, lifecycle.submit(engine, "beta", draft()).observation_id)
    assert obs["enrichments"] == {}
    assert all(project != "beta" for _, project in recorder.CALLS), recorder.CALLS
    lifecycle.submit(engine, "alpha", draft())
    hooks = {hook for hook, project in recorder.CALLS if project == "alpha"}
    assert hooks == {"validate_observation", "enrich_observation", "quality_check", "grade_observation"}


def test_recovery_requeues_an_enrichment_whose_worker_died(engine, monkeypatch):
    from sqlalchemy import update

    import core.worker as worker
    from core.db.models import Enrichment, utcnow
    from core.enrichment import run_enrichment

    obs_id = lifecycle.submit(engine, "alpha", draft()).observation_id
    # As if a worker claimed it and then died: running, lease expired.
    with transaction(engine.sessions) as s:
        s.execute(update(Enrichment).where(Enrichment.plugin == "recorder").values(
            status="running", result=None, lease_token="dead", lease_until=utcnow()))
    sent = []
    monkeypatch.setattr(worker, "schedule_enrichment", lambda eng, eid, *a, **k: sent.append(eid))
    assert recover_once(engine, quiet_s=0) == 1
    assert len(sent) == 1
    assert run_enrichment(engine, sent[0]).status == "done"
    assert run_enrichment(engine, sent[0]).status == "skipped", "a second delivery does nothing"
    assert show(engine, obs_id)["enrichments"]["recorder"]["attempts"] == 2


def test_recovery_never_closes_an_enrichment_a_worker_has_just_claimed(make_engine, monkeypatch):
    """The recovery lists stale rows, then handles each; a worker may claim one in between
    (its last attempt, after a killed one). That claim must stand, and its result be stored."""
    from datetime import timedelta

    from sqlalchemy import select, update

    import core.enrichment as enrichment
    import core.worker as worker
    from core.db.models import Enrichment, utcnow
    from core.enrichment import run_enrichment

    engine = make_engine(enrich_max_attempts=2)
    obs_id = lifecycle.submit(engine, "alpha", draft()).observation_id
    with transaction(engine.sessions) as s:
        recorder_id = s.scalar(select(Enrichment.id).where(Enrichment.plugin == "recorder"))
        # the first attempt's worker was killed: running, lease expired
        s.execute(update(Enrichment).where(Enrichment.id == recorder_id).values(
            status="running", attempts=1, result=None, lease_token="dead", lease_until=utcnow() - timedelta(seconds=1)))
    listed = enrichment.stale_enrichments(engine, 0)
    assert listed == [recorder_id]
    claimed = enrichment._claim(engine, recorder_id)  # a worker's second attempt, after the listing
    assert claimed is not None and claimed[3] == 2
    monkeypatch.setattr(enrichment, "stale_enrichments", lambda eng, quiet_s: listed)
    monkeypatch.setattr(worker, "schedule_enrichment", lambda eng, eid, *a, **k: None)
    recover_once(engine, quiet_s=0)
    with transaction(engine.sessions) as s:
        row = s.get(Enrichment, recorder_id)
        assert (row.status, row.lease_token) == ("running", claimed[0]), "the fresh claim is left alone"
    token, _, _, attempts = claimed
    assert enrichment._finish(engine, recorder_id, token, obs_id, attempts, {"ok": True}, None).status == "done"
    assert show(engine, obs_id)["enrichments"]["recorder"]["result"] == {"ok": True}
    assert run_enrichment(engine, recorder_id).status == "skipped"


def test_worker_task_results_name_the_plugin_and_the_observation(engine, monkeypatch):
    """Celery logs 'Task observatory.enrich[...] succeeded in ...: <result>': the result says what
    was done to which observation, not only 'done'."""
    from sqlalchemy import select

    import core.worker as worker
    from core.db.models import Enrichment

    obs_id = lifecycle.submit(engine, "alpha", draft()).observation_id
    with transaction(engine.sessions) as s:
        recorder_id = s.scalar(select(Enrichment.id).where(Enrichment.plugin == "recorder"))
        s.execute(Enrichment.__table__.update().where(Enrichment.id == recorder_id).values(status="pending"))
    monkeypatch.setattr(worker, "_engine", engine)
    assert worker.enrich_task(None, recorder_id) == f"done: recorder on observation {obs_id}"
    assert worker.assess_task(obs_id) == f"observation {obs_id}: graded"
    assert worker.assess_task(obs_id, due_only=True) == f"observation {obs_id}: nothing owed"
