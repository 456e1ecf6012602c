"""Sending work to the workers: the Celery producer side, and the dispatchers the engine hands
committed work to (``CeleryDispatcher`` queues it on the broker, ``InlineDispatcher`` runs it at
once, in tests and one-off CLI runs).

This module never imports ``core.engine`` or ``core.worker``: the engine chooses a dispatcher
without importing the worker's tasks, and the worker imports this (no import cycle).

Embedded default: a transport on the local file system, so ``observatory serve`` needs no
server. Scale-out: ``OBSERVATORY_BROKER_URL=redis://...`` or ``amqp://...``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from celery import Celery

from core.config import Settings
from core.db.models import Enrichment
from core.enrichment import assess, run_enrichment, timeout_for
from core.send_buffer import SendBuffer

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)
ENRICH_TASK = "observatory.enrich"
ENRICH_BATCH_TASK = "observatory.enrich_batch"
ASSESS_TASK = "observatory.assess"
PLUGIN_TASK = "observatory.task"  # a plugin's background work (core.tasks)


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


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for ``settings``' broker (no tasks: ``core.worker`` adds them)."""
    app = Celery("observatory")
    app.conf.update(celery_config(settings))
    return app


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

    def start_task(self, engine: Engine, name: str, kwargs: dict[str, Any]) -> None:
        """A plugin's background work, sent at once (it is rare, and its caller wants it queued)."""
        send_plugin_task(engine, name, kwargs)


def send_plugin_task(engine: Engine, name: str, kwargs: dict[str, Any]) -> None:
    producer_for(engine.settings).send_task(PLUGIN_TASK, args=[name, kwargs], queue="observatory")


class InlineDispatcher:
    """Runs enrichments in the calling process, at once (tests, one-off CLI runs)."""

    def __init__(self, backoff_cap_s: float = 0.0):
        self.backoff_cap_s = backoff_cap_s
        self._threads: list[threading.Thread] = []

    def enqueue(self, engine: Engine, enrichments: list[tuple[int, str]]) -> None:
        for enrichment_id, _plugin in enrichments:
            outcome = run_enrichment(engine, enrichment_id)
            while outcome.status == "retry":
                time.sleep(min(outcome.retry_in or 0.0, self.backoff_cap_s))
                outcome = run_enrichment(engine, enrichment_id)

    def assess(self, engine: Engine, observation_id: int, *, due_only: bool = False) -> None:
        assess(engine, observation_id, due_only=due_only)

    def start_task(self, engine: Engine, name: str, kwargs: dict[str, Any]) -> None:
        """A plugin's background work in a thread of this process, so that the caller can watch
        its progress and cancel it as with a worker; ``flush`` waits for it."""
        from core.tasks import run_task

        def work() -> None:
            try:
                log.info("%s", run_task(engine, name, kwargs))
            except Exception:
                log.exception("background task %r failed", name)

        thread = threading.Thread(target=work, name=f"observatory-task-{name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the background tasks started here (enrichments and assessments ran at once)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)
