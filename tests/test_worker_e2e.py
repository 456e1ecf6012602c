"""End to end with a real broker and a separate worker process.

The embedded transport (file system) always runs. Redis and RabbitMQ run when
OBSERVATORY_TEST_BROKERS names them (CI sets ``redis,amqp``); then an unreachable server
fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from core import lifecycle
from core.config import Settings
from core.db.session import transaction
from core.dispatch import make_celery
from core.engine import Engine
from core.views import load_observation, observation_dict
from core.worker import CeleryDispatcher
from tests.conftest import draft
from tests.support.waiting import wait_until

BROKERS = {
    "filesystem": "filesystem://",
    "redis": os.environ.get("OBSERVATORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "amqp": os.environ.get("OBSERVATORY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
WANTED = {"filesystem", *filter(None, os.environ.get("OBSERVATORY_TEST_BROKERS", "").split(","))}

REGISTRY = """
services:
  recorder:
    summary: records
  sleepy:
    summary: sleeps
    config: {timeout_s: 3}
    settings:
      type: object
      properties:
        seconds: {type: number, default: 30}
projects:
  - slug: quick
    name: Quick
    services: {recorder: {}}
  - slug: slow
    name: Slow
    services: {sleepy: {}}
"""

pytestmark = pytest.mark.broker


def _purge(settings: Settings) -> None:
    """Empty the queue of what earlier runs left on a shared server (the file-system broker is in
    this test's own folder). Declared as the workers declare it, so a queue that does not exist
    yet is created empty; any other error fails the test."""
    if settings.broker_url.startswith("filesystem"):
        return
    app = make_celery(settings)
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        app.control.purge(connection=conn)


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    if request.param not in WANTED:
        pytest.skip(f"set OBSERVATORY_TEST_BROKERS={request.param} to run against a real {request.param} server")
    return request.param


class Workers:
    """Start and kill real `observatory worker` processes."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env, self.log_dir, self.procs = env, log_dir, []

    def start(self) -> subprocess.Popen:
        log = (self.log_dir / f"worker-{len(self.procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--concurrency", "1", "--loglevel", "INFO"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def cluster(settings_factory, broker, tmp_path, monkeypatch) -> Iterator[tuple[Engine, Workers]]:
    sleepy_dir = tmp_path / "sleepy"
    sleepy_dir.mkdir()
    monkeypatch.setenv("SLEEPY_DIR", str(sleepy_dir))
    monkeypatch.setenv("SLEEPY_ONCE", "1")
    settings = settings_factory(
        REGISTRY, broker_url=BROKERS[broker], recovery_interval_s=1, lease_grace_s=1, enrich_max_attempts=2,
        enrich_retry_backoff_s=0.5,
    )
    _purge(settings)
    engine = Engine.start(settings, dispatcher=CeleryDispatcher())
    with engine.db.begin() as conn:
        from core.db.models import Base

        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    workers = Workers(dict(os.environ), tmp_path)
    yield engine, workers
    workers.stop_all()
    engine.close()


def wait_for(check: Callable[[], bool], seconds: float, workers: Workers, what: str) -> None:
    wait_until(check, seconds, what, every_s=0.2, details=lambda: f"worker logs:\n{workers.logs()}")


def show(engine: Engine, obs_id: int) -> dict:
    with transaction(engine.sessions) as s:
        return observation_dict(load_observation(s, obs_id))


def test_a_separate_worker_enriches_grades_and_flags(cluster):
    engine, workers = cluster
    workers.start()
    obs_id = lifecycle.submit(engine, "quick", draft()).observation_id
    wait_for(lambda: show(engine, obs_id)["grade"] is not None, 60, workers, "the worker to grade the observation")
    obs = show(engine, obs_id)
    assert obs["enrichments"]["recorder"]["status"] == "done"
    assert obs["enrichments"]["recorder"]["result"] == {"seen": obs_id, "media": 0}
    assert [f["code"] for f in obs["flags"]] == ["recorded"]


@pytest.mark.slow  # over 30 s: once in CI (the PostgreSQL pass)
def test_a_burst_of_submits_goes_out_in_batches_and_every_one_is_enriched(cluster, settings_factory):
    engine, workers = cluster
    engine.settings.dispatch_linger_ms = 200  # wide enough that the burst shares messages
    workers.start()
    ids = [lifecycle.submit(engine, "quick", draft(client_id=f"burst-{i}")).observation_id for i in range(30)]
    assert engine.dispatcher.flush(10.0)
    wait_for(lambda: all(show(engine, i)["enrichments"]["recorder"]["status"] == "done" for i in ids), 90, workers,
             "every observation of the burst to be enriched")
    for obs_id in ids:
        assert show(engine, obs_id)["enrichments"]["recorder"]["result"] == {"seen": obs_id, "media": 0}
    log = "".join(p.read_text() for p in workers.log_dir.glob("worker-*.log"))
    assert "observatory.enrich_batch" in log, "the enrichments travelled in batch messages"


def test_a_worker_killed_mid_task_is_replaced_and_the_task_completes_once(cluster, tmp_path):
    engine, workers = cluster
    first = workers.start()
    obs_id = lifecycle.submit(engine, "slow", draft()).observation_id
    sleepy_dir = tmp_path / "sleepy"
    wait_for(lambda: any(sleepy_dir.glob(f"started-{obs_id}-*")), 60, workers, "the task to start")
    workers.kill(first, signal.SIGKILL)
    assert show(engine, obs_id)["enrichments"]["sleepy"]["status"] == "running"
    workers.start()
    wait_for(lambda: show(engine, obs_id)["enrichments"]["sleepy"]["status"] == "done", 90, workers,
             "the task to be delivered again and complete")
    obs = show(engine, obs_id)
    assert obs["enrichments"]["sleepy"]["attempts"] == 2
    time.sleep(2)  # a late duplicate delivery would complete within this time
    assert (sleepy_dir / "completed").read_text().split() == [str(obs_id)], "completed exactly once"


def test_a_hanging_plugin_is_stopped_by_its_time_limit(cluster, monkeypatch):
    engine, workers = cluster
    monkeypatch.delenv("SLEEPY_ONCE")
    workers.env.pop("SLEEPY_ONCE")
    workers.start()
    obs_id = lifecycle.submit(engine, "slow", draft()).observation_id
    wait_for(lambda: show(engine, obs_id)["enrichments"]["sleepy"]["status"] == "failed", 90, workers,
             "the time limit to stop the plugin")
    sleepy = show(engine, obs_id)["enrichments"]["sleepy"]
    assert sleepy["attempts"] == 2
    assert "timed out after 3 s" in sleepy["error"]
    # grading follows the failure in its own transaction, a moment later
    wait_for(lambda: show(engine, obs_id)["grade"] == "needs_id", 30, workers, "the observation to be graded anyway")
