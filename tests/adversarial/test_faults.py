"""Broker and database faults: what is committed answers success and ends graded, once.

- A broker that cannot be reached (a real Redis URL with nothing listening, then a real Redis
  server the test starts, stops mid-load and starts again on the same port): submits and edits
  still answer 2xx, and the workers' recovery loop assesses and grades what the lost messages
  would have, from the database state alone.
- Concurrent and late assessments (two workers' recovery loops, the original message arriving
  late): flags and grades are stored once.
- A database restart (PostgreSQL: the test terminates the engine's connections mid-load): the
  API answers 503 with a JSON error for what could not commit, never a 500, and everything
  committed ends graded.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.api.ratelimit import RateLimiter
from core.db.models import AuditEntry, Enrichment, Observation, QualityFlag
from core.db.session import make_sessionmaker, transaction
from core.engine import Engine
from core.enrichment import assess, run_enrichment
from core.tokens import create_token
from core.worker import CeleryDispatcher, InlineDispatcher, recover_once
from tests.api.conftest import API_REGISTRY
from tests.conftest import draft
from tests.support.serving import api_server, free_port

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

# `plain` has no enriching service: grading follows the commit directly (the path that lost
# grades); `enriched` has one. A location accurate to 20 km gives every observation one core
# flag, so a flag written twice shows.
FAULTS_REGISTRY = """
services:
  recorder:
    summary: records which observations it saw
    settings: {type: object}
projects:
  - slug: plain
    name: Plain
    services: {}
  - slug: enriched
    name: Enriched
    services: {recorder: {}}
"""
FLAGS = {"plain": ["low_location_accuracy"], "enriched": ["low_location_accuracy", "recorded"]}


def fault_draft(client_id: str, note: str = "a fox") -> dict[str, Any]:
    return draft(client_id=client_id, location={"lat": 41.39, "lon": 2.17, "accuracy_m": 20000},
                 fields={"note": note})


def snapshot(engine: Engine) -> dict[int, dict[str, Any]]:
    """Every observation with what grading and enrichment stored for it."""
    with transaction(engine.sessions) as s:
        rows = s.execute(sa.select(Observation.id, Observation.project, Observation.client_id, Observation.grade,
                                   Observation.assess_due_at, Observation.fields)).all()
        flags = s.execute(sa.select(QualityFlag.observation_id, QualityFlag.code)).all()
        enrichments = s.execute(sa.select(Enrichment.observation_id, Enrichment.plugin, Enrichment.status)).all()
        edits = s.execute(sa.select(AuditEntry.observation_id).where(AuditEntry.action == "edit")).all()
    out = {r.id: {"project": r.project, "client_id": r.client_id, "grade": r.grade, "due": r.assess_due_at,
                  "fields": r.fields, "flags": [], "enrichments": [], "edits": 0} for r in rows}
    for obs_id, code in flags:
        out[obs_id]["flags"].append(code)
    for obs_id, plugin, status in enrichments:
        out[obs_id]["enrichments"].append((plugin, status))
    for (obs_id,) in edits:
        out[obs_id]["edits"] += 1
    for obs in out.values():
        obs["flags"].sort()
        obs["enrichments"].sort()
    return out


def settled(obs: dict[str, Any]) -> bool:
    return obs["grade"] is not None and obs["due"] is None and all(st == "done" for _, st in obs["enrichments"])


def assert_graded_once(obs_id: int, obs: dict[str, Any]) -> None:
    assert settled(obs), f"observation {obs_id} is not graded: {obs}"
    assert sorted(obs["flags"]) == FLAGS[obs["project"]], f"observation {obs_id}: flags {obs['flags']}"
    expected = [("recorder", "done")] if obs["project"] == "enriched" else []
    assert obs["enrichments"] == expected, f"observation {obs_id}: enrichments {obs['enrichments']}"


# -- unit level: a broker that cannot be reached -----------------------------------------


@pytest.fixture
def unreachable_broker_engine(make_engine: Callable[..., Engine]) -> Engine:
    """The API's engine with the real Celery dispatcher on a Redis URL where nothing listens,
    each message sent in the request's own thread (so its failure is the request's)."""
    engine = make_engine(API_REGISTRY, broker_url=f"redis://127.0.0.1:{free_port()}/0", dispatch_linger_ms=0)
    engine.dispatcher = CeleryDispatcher()
    return engine


def test_submit_and_edit_answer_success_when_the_broker_is_down_and_recovery_grades_them(
    unreachable_broker_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = unreachable_broker_engine
    app = create_app(engine)
    app.state.rate_limiter = RateLimiter(0)
    beta = create_token(engine, "contributor", "beta", "beta phone").token
    alpha = create_token(engine, "contributor", "alpha", "alpha phone").token
    with TestClient(app, raise_server_exceptions=False) as client:
        plain = client.post(f"{API}/projects/beta/observations", json=fault_draft("b-1"),
                            headers={"Authorization": f"Bearer {beta}"})
        assert plain.status_code == 201, plain.text
        enriched = client.post(f"{API}/projects/alpha/observations", json=fault_draft("a-1"),
                               headers={"Authorization": f"Bearer {alpha}"})
        assert enriched.status_code == 201, enriched.text
        for obs, token in ((plain.json(), beta), (enriched.json(), alpha)):
            edited = client.patch(f"{API}/observations/{obs['id']}", json={"fields": {"note": "edited"}},
                                  headers={"Authorization": f"Bearer {token}"})
            assert edited.status_code == 200, edited.text
            assert edited.json()["fields"]["note"] == "edited"
    plain_id, enriched_id = plain.json()["id"], enriched.json()["id"]
    before = snapshot(engine)
    assert before[plain_id]["grade"] is None and before[plain_id]["due"] is not None, "not graded yet, and owed"
    assert before[enriched_id]["enrichments"] == [("flaky", "pending"), ("recorder", "pending")]

    # The broker is back: the workers' recovery loop re-queues the enrichments (delivered here
    # at once) and assesses what is owed.
    engine.dispatcher = InlineDispatcher()
    import core.worker as worker

    monkeypatch.setattr(worker, "schedule_enrichment", lambda eng, eid, *a, **k: run_enrichment(eng, eid))
    # flaky fails its first attempt: a later round, once its back-off has passed, runs it again
    for _ in range(50):
        recover_once(engine, quiet_s=0)
        after = snapshot(engine)
        if after[plain_id]["due"] is None and after[enriched_id]["due"] is None:
            break
        time.sleep(0.05)
    assert after[plain_id]["grade"] == "needs_id" and after[plain_id]["due"] is None
    assert after[plain_id]["flags"] == ["low_location_accuracy"]
    assert after[plain_id]["fields"] == {"note": "edited"}
    assert after[enriched_id]["grade"] == "needs_id" and after[enriched_id]["due"] is None
    assert sorted(after[enriched_id]["flags"]) == ["low_location_accuracy", "recorded"]
    assert [e[1] for e in after[enriched_id]["enrichments"]] == ["done", "done"]
    assert after[plain_id]["edits"] == after[enriched_id]["edits"] == 1

    # the original message, delivered late, and a second round of recovery change nothing
    assert assess(engine, plain_id, due_only=True) is False
    assert recover_once(engine, quiet_s=0) == 0
    assert snapshot(engine) == after


def test_concurrent_assessments_of_one_observation_store_its_flags_once(make_engine: Callable[..., Engine]) -> None:
    """Two workers' recovery loops and a late original message assess the same observation at the
    same moment: one grading transaction stores flags and grade, the others store nothing."""
    from core import lifecycle

    engine = make_engine(FAULTS_REGISTRY)
    engine.dispatcher = _Silent()  # the messages are lost: the test plays the workers
    ids = [lifecycle.submit(engine, "plain", fault_draft(f"c-{i}")).observation_id for i in range(4)]
    for obs_id in ids:
        start = threading.Barrier(6)

        def worker(_: int, obs_id: int = obs_id, start: threading.Barrier = start) -> bool:
            start.wait()
            return assess(engine, obs_id, due_only=True)

        with ThreadPoolExecutor(6) as pool:
            stored = list(pool.map(worker, range(6)))
        assert stored.count(True) == 1, f"observation {obs_id}: {stored}"
    # an observation already graded, assessed again by several at once (a plugin re-assessing a
    # neighbour): the flags are replaced, never doubled
    start = threading.Barrier(6)

    def again(_: int) -> bool:
        start.wait()
        return assess(engine, ids[0])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(again, range(6)))
    for obs_id, obs in snapshot(engine).items():
        assert obs["flags"] == ["low_location_accuracy"] and obs["grade"] == "needs_id" and obs["due"] is None, obs


def test_an_edit_during_an_assessment_is_not_lost(make_engine: Callable[..., Engine]) -> None:
    """An assessment that read the observation before an edit stores nothing; the edit's own
    assessment (here: the recovery loop's) grades the newer version."""
    from core import lifecycle
    from core.enrichment import due_assessments

    engine = make_engine(FAULTS_REGISTRY)
    engine.dispatcher = _Silent()
    obs_id = lifecycle.submit(engine, "plain", fault_draft("e-1")).observation_id
    with transaction(engine.readers) as s:
        seen = s.scalar(sa.select(Observation.assess_due_at).where(Observation.id == obs_id))
    time.sleep(0.002)
    lifecycle.update_fields(engine, obs_id, {"note": "edited"}, actor="test")
    with transaction(engine.sessions) as s:  # the stale assessment's conditional update
        stale = s.execute(sa.update(Observation).where(Observation.id == obs_id, Observation.assess_due_at == seen)
                          .values(assess_due_at=None)).rowcount
    assert stale == 0, "the marker of the newer version is not cleared by the older one's grading"
    assert [i for i, _ in due_assessments(engine, 0)] == [obs_id]
    engine.dispatcher = InlineDispatcher()
    assert recover_once(engine, quiet_s=0) == 1
    assert settled(snapshot(engine)[obs_id])


class _Silent:
    """A dispatcher whose messages are lost (a broker that took them, then died)."""

    def enqueue(self, engine: Engine, enrichments: list[tuple[int, str]]) -> None:
        pass

    def assess(self, engine: Engine, observation_id: int, *, due_only: bool = False) -> None:
        pass

    def flush(self, timeout: float = 10.0) -> bool:
        return True


def test_rows_stored_before_the_upgrade_count_as_assessed(tmp_path: Path) -> None:
    """Migration 0003 leaves existing observations as assessed: no storm of assessments (and no
    full scan: the recovery loop reads a partial index) after the upgrade."""
    from core.db.migrate import upgrade
    from core.db.session import make_engine as make_db
    from core.enrichment import due_assessments

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")
    db = make_db(url)
    with db.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO observations (project, content_hash, observed_at, lat, lon, fields, status, created_at, "
            "updated_at) VALUES ('plain', 'x', '2026-05-01 07:30:00', 41.39, 2.17, '{}', 'pending', "
            "'2026-05-01 07:30:00', '2026-05-01 07:30:00')")
    db.dispose()
    upgrade(url)
    db = make_db(url)
    try:
        with db.connect() as conn:
            assert conn.exec_driver_sql("SELECT assess_due_at FROM observations").all() == [(None,)]
            plan = " ".join(str(r) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM observations WHERE assess_due_at IS NOT NULL "
                "AND assess_due_at < '2030-01-01' ORDER BY assess_due_at").all())
            assert "ix_observation_assess_due" in plan, plan
        fake = type("E", (), {"readers": make_sessionmaker(db, readonly=True)})()
        assert due_assessments(fake, 0) == []  # type: ignore[arg-type]
    finally:
        db.dispose()


# -- end to end: real servers, a real Redis stopped and started mid-load --------------------


class Redis:
    """A redis-server of the test's own, on its own port, without persistence."""

    def __init__(self, folder: Path):
        self.port, self.folder, self.proc = free_port(), folder, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("a")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # as a crash: what it held in memory is gone
            self.proc.wait(timeout=10)


class Worker:
    """A real `observatory worker` process."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self.log_path = folder / "worker.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--concurrency", "2", "--loglevel", "INFO"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if " ready." in self.log_path.read_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"the worker did not start:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@contextmanager
def cluster(folder: Path, env: dict[str, str]) -> Iterator[tuple[str, Worker]]:
    """The API (uvicorn, Celery dispatcher) and one worker process, on this process's settings."""
    env = {**env, "OBSERVATORY_SERVE_DISPATCHER": "celery", "OBSERVATORY_RATE_LIMIT_PER_MINUTE": "0"}
    worker = Worker(folder, env)
    try:
        with api_server(folder, ROOT, env) as base:
            worker.wait_ready()
            yield base, worker
    finally:
        worker.stop()


FAST_RECOVERY = {"recovery_interval_s": 1, "lease_grace_s": 1, "enrich_timeout_s": 5, "enrich_retry_backoff_s": 0.5}


class Load:
    """Submissions (and a few edits) sent concurrently, with every answer kept."""

    def __init__(self, base: str, tokens: dict[str, str]):
        self.base, self.tokens = base, tokens
        self.answers: list[tuple[str, str, int, dict[str, Any] | str]] = []
        self.lock = threading.Lock()
        self.http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=32))

    def _keep(self, what: str, key: str, response: httpx.Response) -> httpx.Response:
        try:
            body: dict[str, Any] | str = response.json()
        except ValueError:
            body = response.text[:500]
        with self.lock:
            self.answers.append((what, key, response.status_code, body))
        return response

    def submit(self, project: str, client_id: str) -> httpx.Response:
        return self._keep("submit", client_id, self.http.post(
            f"{self.base}{API}/projects/{project}/observations", json=fault_draft(client_id),
            headers={"Authorization": f"Bearer {self.tokens[project]}"}))

    def patch(self, project: str, obs_id: int, note: str) -> httpx.Response:
        return self._keep("patch", str(obs_id), self.http.patch(
            f"{self.base}{API}/observations/{obs_id}", json={"fields": {"note": note}},
            headers={"Authorization": f"Bearer {self.tokens[project]}"}))

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for _, _, status, _ in self.answers:
            counts[status] = counts.get(status, 0) + 1
        return counts

    def errors(self, at_least: int = 500) -> list[tuple[str, str, int, Any]]:
        return [a for a in self.answers if a[2] >= at_least]


def wait_settled(engine: Engine, seconds: float, logs: Callable[[], str]) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        state = snapshot(engine)
        if state and all(settled(o) for o in state.values()):
            return state
        if time.monotonic() > deadline:
            stuck = {i: o for i, o in state.items() if not settled(o)}
            pytest.fail(f"{len(stuck)} of {len(state)} observations not graded after {seconds:g} s, e.g. "
                        f"{list(stuck.items())[:3]}\nworker log:\n{logs()}")
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="needs redis-server (the test starts its own)")
def test_a_redis_outage_mid_load_loses_no_grade_and_answers_no_5xx(make_engine, tmp_path: Path) -> None:
    redis = Redis(tmp_path)
    redis.start()
    engine = make_engine(FAULTS_REGISTRY, broker_url=redis.url, **FAST_RECOVERY)
    tokens = {p: create_token(engine, "contributor", p, f"{p} phone").token for p in ("plain", "enriched")}
    try:
        with cluster(tmp_path, {}) as (base, worker):
            load = Load(base, tokens)
            # a few observations to edit during the outage
            early = {p: load.submit(p, f"{p}-early").json()["id"] for p in ("plain", "enriched")}
            outage = threading.Event()

            def one(i: int) -> None:
                time.sleep(i * 0.1)  # 160 submissions over 16 s; Redis is away from 3 s to 15 s
                project = "plain" if i % 2 else "enriched"
                load.submit(project, f"{project}-{i}")
                if outage.is_set() and i % 20 in (5, 10):
                    load.patch(project, early[project], f"edited during the outage {i}")

            with ThreadPoolExecutor(24) as pool:
                futures = [pool.submit(one, i) for i in range(160)]
                time.sleep(3)
                redis.stop()
                outage.set()
                time.sleep(12)
                redis.start()
                outage.clear()
                for future in futures:
                    future.result()
            load.patch("plain", early["plain"], "edited after the outage")
            print(f"answers during the Redis outage test: {load.statuses()}")
            assert not load.errors(), f"5xx answers: {load.errors()[:5]} (all: {load.statuses()})"
            assert any(a[0] == "patch" for a in load.answers[:-1]), "an edit was sent during the outage"
            state = wait_settled(engine, 150, worker.logs)
    finally:
        redis.stop()
    acknowledged = {body["id"] for what, _, status, body in load.answers if what == "submit"}
    assert set(state) == acknowledged, "every observation stored is one the API acknowledged"
    assert len(state) == 162 and {o["client_id"] for o in state.values()} == {a[1] for a in load.answers
                                                                               if a[0] == "submit"}
    for obs_id, obs in state.items():
        assert_graded_once(obs_id, obs)
    patches = [a for a in load.answers if a[0] == "patch"]
    assert all(status == 200 for _, _, status, _ in patches), patches
    assert state[early["plain"]]["fields"] == {"note": "edited after the outage"}
    assert sum(o["edits"] for o in state.values()) == len(patches), "each edit audited once"


# -- end to end: the database's connections terminated mid-load -----------------------------


@pytest.mark.slow
def test_terminated_database_connections_mid_load_answer_503_and_lose_no_grade(
    make_engine, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("terminating the engine's connections needs PostgreSQL (SQLite has no server to restart)")
    engine = make_engine(FAULTS_REGISTRY, broker_url="filesystem://", **FAST_RECOVERY)
    tokens = {p: create_token(engine, "contributor", p, f"{p} phone").token for p in ("plain", "enriched")}
    admin = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    terminated = 0

    def terminate() -> int:
        with admin.connect() as conn:
            return len(conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()").all())

    try:
        with cluster(tmp_path, {}) as (base, worker):
            load = Load(base, tokens)
            early = load.submit("plain", "plain-early").json()["id"]

            def one(i: int) -> None:
                time.sleep(i * 0.05)
                project = "plain" if i % 2 else "enriched"
                load.submit(project, f"{project}-{i}")
                if i % 15 == 7:
                    load.patch("plain", early, f"edit {i}")

            with ThreadPoolExecutor(24) as pool:
                futures = [pool.submit(one, i) for i in range(120)]
                for _ in range(5):
                    time.sleep(1 + random.random())
                    terminated += terminate()
                for future in futures:
                    future.result()
            assert terminated > 0
            print(f"{terminated} connections terminated; answers: {load.statuses()}")
            unexpected = [a for a in load.errors(500) if a[2] != 503]
            assert not unexpected, f"answers other than 503: {unexpected[:5]} (all: {load.statuses()})"
            for _, _, _, body in load.errors(500):
                assert body["error"]["code"] == "database_unavailable", body
            # the API reconnected by itself
            assert load.submit("plain", "plain-after").status_code == 201
            state = wait_settled(engine, 120, worker.logs)
    finally:
        admin.dispose()
    acknowledged = {body["id"] for what, _, status, body in load.answers if what == "submit" and status < 300}
    assert acknowledged <= set(state), "every acknowledged observation is stored"
    for obs_id, obs in state.items():
        assert_graded_once(obs_id, obs)
