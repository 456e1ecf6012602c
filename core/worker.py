"""The worker: the engine's Celery tasks and the recovery loop.

Tasks take ids, load what they need, and call the plain functions of ``core.enrichment``.
Every task is idempotent (enrichments are claimed with a lease in the database), so late
acknowledgement and re-delivery are safe. A recovery loop in each worker re-queues work that a
dead worker or a lost message left behind: the database, not the broker, is the truth.

The Celery app is made from the settings of the engine that starts the worker
(``worker_app``), never from global settings at import. Sending work is ``core.dispatch``'s.
Each task's log lines name the plugin and the observation it works on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery, signals
from sqlalchemy import update

from core.config import Settings
from core.db.models import Enrichment, utcnow
from core.db.session import transaction
from core.dispatch import (
    ASSESS_TASK,
    ENRICH_BATCH_TASK,
    ENRICH_TASK,
    PLUGIN_TASK,
    CeleryDispatcher,
    InlineDispatcher,
    make_celery,
    schedule_enrichment,
    send_assessments,
    send_enrichments,
)
from core.engine import Engine
from core import enrichment
from core.tasks import recover_work, run_task

log = logging.getLogger(__name__)

__all__ = ["CeleryDispatcher", "InlineDispatcher", "recover_once", "worker_app", "worker_argv"]

_settings: Settings | None = None
_engine: Engine | None = None


def worker_engine() -> Engine:
    """The engine of this worker process, started on first use from the worker's settings."""
    global _engine
    if _engine is None:
        if _settings is None:
            raise RuntimeError("no worker app: start workers with `observatory worker` (core.worker.worker_app)")
        _engine = Engine.start(_settings, dispatcher=CeleryDispatcher())
    return _engine


@signals.worker_process_init.connect
def _fresh_engine_per_process(**_: Any) -> None:
    # A forked child must not share the parent's database connections.
    global _engine
    if _engine is not None:
        _engine.db.dispose(close=False)
    _engine = None


def enrich_task(self: Any, enrichment_id: int) -> str:
    engine = worker_engine()
    outcome = enrichment.run_enrichment(engine, enrichment_id)
    if outcome.status == "retry" and outcome.retry_in is not None:
        schedule_enrichment(engine, enrichment_id, countdown=outcome.retry_in)
    # Celery logs "Task observatory.enrich[id] succeeded in ...: <this>": say what was done to what
    return f"{outcome.status}: {outcome.plugin or '?'} on observation {outcome.observation_id or '?'}" + (
        f" (retry in {outcome.retry_in:g} s)" if outcome.status == "retry" and outcome.retry_in is not None else "")


def enrich_batch_task(enrichments: list[list[Any]]) -> str:
    """Fan a batch gathered by an API process out into one task per enrichment (each with its
    plugin's time limit). Delivered twice, it queues them twice: the leases make that harmless."""
    send_enrichments(worker_engine(), [(int(enrichment_id), str(plugin)) for enrichment_id, plugin in enrichments])
    plugins = sorted({str(plugin) for _, plugin in enrichments})
    return f"queued {len(enrichments)} enrichments ({', '.join(plugins)})"


def assess_task(observation_id: int, due_only: bool = False) -> str:
    """Quality checks and grading. ``due_only`` (after a commit, and from the recovery loop): only
    if still owed, so a message delivered late or twice does nothing."""
    stored = enrichment.assess(worker_engine(), observation_id, due_only=due_only)
    return f"observation {observation_id}: " + ("graded" if stored else "nothing owed")


def plugin_task(name: str, kwargs: dict[str, Any]) -> str:
    """A plugin's background work (``register_tasks``); its state is the plugin's business."""
    return run_task(worker_engine(), name, kwargs)


def worker_app(settings: Settings) -> Celery:
    """The Celery app of a worker for ``settings``, with the engine's tasks on it."""
    global _settings
    _settings = settings
    app = make_celery(settings)
    app.task(name=ENRICH_TASK, bind=True, acks_late=True, ignore_result=True)(enrich_task)
    app.task(name=ENRICH_BATCH_TASK, acks_late=True, ignore_result=True)(enrich_batch_task)
    app.task(name=ASSESS_TASK, acks_late=True, ignore_result=True)(assess_task)
    app.task(name=PLUGIN_TASK, acks_late=True, ignore_result=True)(plugin_task)
    return app


class _Requeued:
    """What this process's recovery loop queued lately, keyed by the row's state when it did.

    A row still listed a moment later is, most likely, a message waiting behind a backlog on the
    broker, not a lost one: queued again on every round, duplicates would grow the backlog
    faster than the workers drain it. Keyed by the state (attempts, update time, marker), a
    row that changed is never held back."""

    def __init__(self) -> None:
        self._at: dict[tuple[Any, ...], float] = {}
        self._lock = threading.Lock()

    def fresh(self, keys: list[tuple[Any, ...]], window_s: float) -> set[tuple[Any, ...]]:
        """The keys not queued within the last ``window_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            for key, at in list(self._at.items()):
                if now - at > window_s:
                    del self._at[key]
            return {key for key in keys if key not in self._at}

    def mark(self, keys: list[tuple[Any, ...]]) -> None:
        now = time.monotonic()
        with self._lock:
            self._at.update((key, now) for key in keys)


_requeued = _Requeued()


def _requeue_window(quiet_s: float) -> float:
    return max(3 * quiet_s, 1.0)


def recover_once(engine: Engine, quiet_s: float = 30.0) -> int:
    """Re-queue enrichments left behind, mark failed those out of attempts, and queue the
    assessments still owed (``recover_assessments``). A row queued by this process is queued
    again only after ``3 * quiet_s`` unless it changed (see ``_Requeued``). Returns how many."""
    count = 0
    for enrichment_id in enrichment.stale_enrichments(engine, quiet_s):
        with transaction(engine.sessions) as session:
            row = session.get(Enrichment, enrichment_id)
            now = utcnow()
            key = ("enrichment", enrichment_id, None if row is None else (row.status, row.attempts, row.updated_at))
            exhausted = (row is not None and row.status == "running" and row.lease_until is not None
                         and row.lease_until < now and row.attempts >= engine.settings.enrich_max_attempts)
            if exhausted:
                # only if nobody has claimed it since it was read: a worker may have, a moment ago
                exhausted = session.execute(
                    update(Enrichment)
                    .where(Enrichment.id == enrichment_id, Enrichment.lease_token == row.lease_token,
                           Enrichment.status == "running")
                    .values(status="failed", finished_at=now, lease_token=None, lease_until=None, updated_at=now,
                            error=(row.error or "") + f" the worker stopped during attempt {row.attempts} "
                            "(killed or past its time limit)")
                    .execution_options(synchronize_session=False)
                ).rowcount == 1
                obs_id = row.observation_id
        if exhausted:
            enrichment.assess_if_complete(engine, obs_id)
        elif _requeued.fresh([key], _requeue_window(quiet_s)):
            schedule_enrichment(engine, enrichment_id)
            _requeued.mark([key])
        else:
            continue
        count += 1
    if count:
        log.info("recovery: re-queued or closed %d enrichment(s)", count)
    return count + recover_assessments(engine, quiet_s)


def recover_assessments(engine: Engine, quiet_s: float = 30.0, limit: int = 500) -> int:
    """Queue the assessment of observations that still owe one although their enrichments have
    ended (``core.enrichment.due_assessments``): the message after the commit, or the grading
    after the last enrichment, was lost to a broker outage, a database restart or a killed
    worker. Each is queued with ``due_only``, so several workers' loops and the original
    message, arriving late, grade it once in effect; one queued by this process is queued again
    only after ``3 * quiet_s`` unless edited since. Returns how many were queued; raises if the
    broker cannot take them (the loop tries again on its next round)."""
    due = enrichment.due_assessments(engine, quiet_s, limit)
    if not isinstance(engine.dispatcher, CeleryDispatcher):  # work run in-process (tests, one-off CLI runs)
        for obs_id, _ in due:
            engine.dispatcher.assess(engine, obs_id, due_only=True)
        return len(due)
    keys = [("assess", obs_id, due_at) for obs_id, due_at in due]
    fresh = _requeued.fresh(keys, _requeue_window(quiet_s))
    keys = [key for key in keys if key in fresh]
    if not keys:
        return 0
    send_assessments(engine, [(obs_id, True) for _, obs_id, _ in keys])  # straight to the broker: failures show
    _requeued.mark(keys)
    log.info("recovery: queued the assessment of %d observation(s) still owed one", len(keys))
    return len(keys)


def _recovery_loop(interval_s: float) -> None:
    while True:
        try:
            recover_once(worker_engine(), quiet_s=max(interval_s * 2, 5.0))
            recover_work(worker_engine())
        except Exception:  # keep the loop alive through a database blip
            log.exception("recovery loop failed; trying again in %s s", interval_s)
        time.sleep(interval_s)


_recovery_started = threading.Event()


@signals.worker_ready.connect
def _start_recovery(**_: Any) -> None:
    # worker_ready comes again when the consumer reconnects to a broker that was down: one loop
    # per process is enough
    interval = _settings.recovery_interval_s if _settings is not None else 0
    if interval > 0 and not _recovery_started.is_set():
        _recovery_started.set()
        threading.Thread(target=_recovery_loop, args=(interval,), name="observatory-recovery", daemon=True).start()


def worker_argv(settings: Settings, concurrency: int | None = None, loglevel: str = "INFO") -> list[str]:
    argv = ["worker", f"--loglevel={loglevel}", "-Q", "observatory"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if settings.broker_url.startswith("filesystem"):
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return argv
