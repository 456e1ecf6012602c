"""`observatory show` says so when an observation's enrichments wait for a worker that never
came: submitted on the real (file system) broker with no worker running."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from core.cli import build_cli
from core.db.models import Observation
from core.engine import Engine
from tests.conftest import draft

REMEDY = "no worker has taken them; start one with `observatory worker` (or check OBSERVATORY_BROKER_URL)"


def show(observation_id: int) -> Result:
    result = CliRunner().invoke(build_cli(), ["show", str(observation_id)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == observation_id, "standard output stays the observation's JSON"
    return result


def age(engine: Engine, observation_id: int, seconds: float) -> datetime:
    """Make the observation stored (and last changed) ``seconds`` ago."""
    then = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    with engine.db.begin() as conn:
        conn.execute(update(Observation).where(Observation.id == observation_id)
                     .values(created_at=then, updated_at=then))
    return then


@pytest.fixture
def queued(make_engine) -> Iterator[Engine]:
    """An engine that queues enrichments on its broker, as `observatory serve` does; no worker runs."""
    engine = Engine.start(make_engine().settings)  # the same settings and emptied tables, the default dispatcher
    yield engine
    engine.close()


def submit(engine: Engine) -> int:
    from core import lifecycle

    result = lifecycle.submit(engine, "alpha", draft(), actor="cli")
    assert engine.dispatcher.flush(30.0), "the enrichments reached the broker"
    return result.observation_id


def test_show_says_when_no_worker_took_the_enrichments(queued):
    obs_id = submit(queued)
    fresh = show(obs_id)
    assert json.loads(fresh.stdout)["enrichments"]["recorder"] == {
        "status": "pending", "attempts": 0, "result": None, "error": None, "finished_at": None}
    assert fresh.stderr == "", "just submitted: a worker may be about to take them"

    then = age(queued, obs_id, 5 * 60)
    stale = show(obs_id)
    assert stale.stderr == (f"note: enrichments pending since {then:%Y-%m-%d %H:%M:%S} UTC (flaky, recorder): "
                            f"{REMEDY}\n")


def test_show_says_nothing_under_a_minute(queued):
    obs_id = submit(queued)
    age(queued, obs_id, 30)
    assert show(obs_id).stderr == ""


def test_show_says_nothing_once_a_worker_ran_them(make_engine):
    from core import lifecycle

    engine = make_engine()  # runs enrichments inline, as a worker would
    obs_id = lifecycle.submit(engine, "alpha", draft(), actor="cli").observation_id
    age(engine, obs_id, 5 * 60)
    result = show(obs_id)
    assert {e["status"] for e in json.loads(result.stdout)["enrichments"].values()} == {"done"}
    assert result.stderr == ""
