"""The Celery app and the engine's own tasks.

Tasks take ids, load what they need, and call the plain functions of ``core.enrichment``.
Every task is idempotent (enrichments are claimed with a lease in the database), so late
acknowledgement and re-delivery are safe. A recovery loop in each worker re-queues work that a
dead worker or a lost message left behind: the database, not the broker, is the truth.

Embedded default: a transport on the local file system, so ``observatory serve`` needs no
server. Scale-out: ``OBSERVATORY_BROKER_URL=redis://...`` or ``amqp://...``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from celery import Celery, signals

from core.config import Settings, get_settings
from core.engine import Engine
from core.send_buffer import SendBuffer

log = logging.getLogger(__name__)

ENRICH_TASK = "observatory.enrich"
ENRICH_BATCH_TASK = "observatory.enrich_batch"
ASSESS_TASK = "observatory.assess"


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": "observatory",
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
    if settings.broker_url.startswith("filesystem"):
        folder = settings.broker_folder
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "in"),
            "data_folder_out": str(folder / "in"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            # kombu writes its broadcast exchange table here ("control" in the working folder otherwise)
            "control_folder": str(folder / "control"),
        }
        config["worker_enable_remote_control"] = False
    elif settings.broker_url.startswith("redis"):
        config["broker_transport_options"] = {"visibility_timeout": 3600}
    return config


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("observatory")
    app.conf.update(celery_config(settings))
    return app


app = make_celery()
_engine: Engine | None = None


def worker_engine() -> Engine:
    """The engine of this worker process, started on first use."""
    global _engine
    if _engine is None:
        _engine = Engine.start(get_settings(), dispatcher=CeleryDispatcher())
    return _engine


@signals.worker_process_init.connect
def _fresh_engine_per_process(**_: Any) -> None:
    # A forked child must not share the parent's database connections.
    global _engine
    if _engine is not None:
        _engine.db.dispose(close=False)
    _engine = None


@app.task(name=ENRICH_TASK, bind=True, acks_late=True, ignore_result=True)
def enrich_task(self: Any, enrichment_id: int) -> str:
    from core.enrichment import run_enrichment

    engine = worker_engine()
    outcome = run_enrichment(engine, enrichment_id)
    if outcome.status == "retry" and outcome.retry_in is not None:
        schedule_enrichment(engine, enrichment_id, countdown=outcome.retry_in)
    return outcome.status


@app.task(name=ENRICH_BATCH_TASK, acks_late=True, ignore_result=True)
def enrich_batch_task(enrichments: list[list[Any]]) -> int:
    """Fan a batch gathered by an API process out into one task per enrichment (each with its
    plugin's time limit). Delivered twice, it queues them twice: the leases make that harmless."""
    send_enrichments(worker_engine(), [(int(enrichment_id), str(plugin)) for enrichment_id, plugin in enrichments])
    return len(enrichments)


@app.task(name=ASSESS_TASK, acks_late=True, ignore_result=True)
def assess_task(observation_id: int, due_only: bool = False) -> None:
    """Quality checks and grading. ``due_only`` (after a commit, and from the recovery loop): only
    if still owed, so a message delivered late or twice does nothing."""
    from core.enrichment import assess

    assess(worker_engine(), observation_id, due_only=due_only)


_producers: dict[str, Celery] = {}


def producer_for(settings: Settings) -> Celery:
    """A Celery app that only sends, configured for ``settings``' broker (one per broker URL)."""
    key = settings.broker_url + str(settings.broker_folder)
    if key not in _producers:
        _producers[key] = make_celery(settings)
    return _producers[key]


def schedule_enrichment(
    engine: Engine, enrichment_id: int, plugin: str | None = None, countdown: float | None = None
) -> None:
    """Queue one enrichment, with its plugin's time limit."""
    send_enrichments(engine, [(enrichment_id, plugin)], countdown)


def send_enrichments(
    engine: Engine, enrichments: list[tuple[int, str | None]], countdown: float | None = None
) -> None:
    """Queue enrichments (id, plugin name or None to look it up), on one broker connection."""
    from core.db.models import Enrichment
    from core.enrichment import timeout_for

    producer_app = producer_for(engine.settings)
    with producer_app.producer_or_acquire() as producer:
        for enrichment_id, plugin in enrichments:
            if plugin is None:
                with engine.sessions() as session:
                    row = session.get(Enrichment, enrichment_id)
                    plugin = row.plugin if row else ""
            limit = timeout_for(engine, plugin)
            producer_app.send_task(
                ENRICH_TASK, args=[enrichment_id], countdown=countdown, soft_time_limit=limit,
                time_limit=limit + 5, queue="observatory", producer=producer,
            )


def send_assessments(engine: Engine, observations: list[tuple[int, bool]]) -> None:
    """Queue assessments, given as (observation id, due_only), on one broker connection."""
    producer_app = producer_for(engine.settings)
    with producer_app.producer_or_acquire() as producer:
        for observation_id, due_only in observations:
            producer_app.send_task(ASSESS_TASK, args=[observation_id], kwargs={"due_only": due_only},
                                   queue="observatory", producer=producer)


def send_batch(engine: Engine, enrichments: list[tuple[int, str]]) -> None:
    """Queue enrichments as one message (a worker fans it out), or one task if there is one."""
    if len(enrichments) == 1:
        send_enrichments(engine, enrichments)
    else:
        # argsrepr: a short summary for logs and monitors; Celery's own repr of a long list costs a
        # third of the send
        producer_for(engine.settings).send_task(
            ENRICH_BATCH_TASK, args=[enrichments], queue="observatory",
            argsrepr=f"[{len(enrichments)} enrichments, ids {enrichments[0][0]}..{enrichments[-1][0]}]")


class CeleryDispatcher:
    """Queues enrichments and assessments on the broker after the commit.

    With ``dispatch_linger_ms`` above 0 (the default), the request thread hands them to a
    ``SendBuffer`` and a sender thread sends what arrives within that time as one message
    (assessments: on one connection); with 0, each is sent in the request's own thread before
    ``enqueue`` or ``assess`` returns. Either way a broker that is down is the recovery loop's
    business: the buffer logs and drops, ``Engine.after_commit`` logs what a direct send raised.
    """

    def __init__(self) -> None:
        self._buffers: dict[int, SendBuffer[tuple[int, str]]] = {}
        self._assessments: dict[int, SendBuffer[tuple[int, bool]]] = {}
        self._lock = threading.Lock()

    def _buffer(self, engine: Engine) -> SendBuffer[tuple[int, str]]:
        return self._buffer_in(self._buffers, engine, lambda batch: send_batch(engine, batch), "observatory-dispatch")

    def _assess_buffer(self, engine: Engine) -> SendBuffer[tuple[int, bool]]:
        return self._buffer_in(self._assessments, engine, lambda batch: send_assessments(engine, batch),
                               "observatory-assess")

    def _buffer_in(self, buffers: dict[int, SendBuffer[Any]], engine: Engine, send: Callable[[list[Any]], None],
                   name: str) -> SendBuffer[Any]:
        """The send buffer of ``engine`` in ``buffers``, made on first use."""
        buffer = buffers.get(id(engine))
        if buffer is None:
            with self._lock:
                buffer = buffers.setdefault(id(engine), SendBuffer(
                    send, linger_s=engine.settings.dispatch_linger_ms / 1000, name=name))
        return buffer

    def enqueue(self, engine: Engine, enrichments: list[tuple[int, str]]) -> None:
        if engine.settings.dispatch_linger_ms <= 0:
            send_enrichments(engine, list(enrichments))
        else:
            self._buffer(engine).add(enrichments)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every enrichment queued so far is on the broker."""
        deadline = time.monotonic() + timeout
        buffers: list[SendBuffer[Any]] = [*self._buffers.values(), *self._assessments.values()]
        return all(buffer.flush(max(0.0, deadline - time.monotonic())) for buffer in buffers)

    def assess(self, engine: Engine, observation_id: int, *, due_only: bool = False) -> None:
        if engine.settings.dispatch_linger_ms <= 0:
            send_assessments(engine, [(observation_id, due_only)])
        else:
            self._assess_buffer(engine).add([(observation_id, due_only)])


class InlineDispatcher:
    """Runs enrichments in the calling process, at once (tests, one-off CLI runs)."""

    def __init__(self, backoff_cap_s: float = 0.0):
        self.backoff_cap_s = backoff_cap_s

    def enqueue(self, engine: Engine, enrichments: list[tuple[int, str]]) -> None:
        from core.enrichment import run_enrichment

        for enrichment_id, _plugin in enrichments:
            outcome = run_enrichment(engine, enrichment_id)
            while outcome.status == "retry":
                time.sleep(min(outcome.retry_in or 0.0, self.backoff_cap_s))
                outcome = run_enrichment(engine, enrichment_id)

    def assess(self, engine: Engine, observation_id: int, *, due_only: bool = False) -> None:
        from core.enrichment import assess

        assess(engine, observation_id, due_only=due_only)

    def flush(self, timeout: float = 10.0) -> bool:
        return True


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
    from sqlalchemy import update

    from core.db.models import Enrichment, utcnow
    from core.db.session import transaction
    from core.enrichment import assess_if_complete, stale_enrichments

    count = 0
    for enrichment_id in stale_enrichments(engine, quiet_s):
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
            assess_if_complete(engine, obs_id)
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
    from core.enrichment import due_assessments

    due = due_assessments(engine, quiet_s, limit)
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
        except Exception:  # keep the loop alive through a database blip
            log.exception("recovery loop failed; trying again in %s s", interval_s)
        time.sleep(interval_s)


_recovery_started = threading.Event()


@signals.worker_ready.connect
def _start_recovery(**_: Any) -> None:
    # worker_ready comes again when the consumer reconnects to a broker that was down: one loop
    # per process is enough
    interval = get_settings().recovery_interval_s
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
