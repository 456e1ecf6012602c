"""Plugins' background work (``register_tasks``): started from a request or a command, run by
a worker (``observatory.task``), started again by the workers' recovery loop (``recover_work``).

The engine only carries the work to a worker; the plugin keeps its state (progress, checkpoint,
lease, cancellation) in its own tables, so a job outlives the message that started it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.errors import EngineError

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)


class UnknownTask(EngineError):
    code = "unknown_task"
    http_status = 500


def start_task(engine: Engine, name: str, **kwargs: Any) -> None:
    """Hand ``name``'s work to a worker (or, with the inline dispatcher, to a thread of this
    process). ``kwargs`` must be JSON-able. Returns at once."""
    if name not in engine.host.tasks:
        raise UnknownTask(f"no background task {name!r} is registered (register_tasks)")
    engine.dispatcher.start_task(engine, name, kwargs)


def run_task(engine: Engine, name: str, kwargs: dict[str, Any]) -> str:
    """Do ``name``'s work here (a worker's ``observatory.task``); returns the line for the log."""
    task = engine.host.tasks.get(name)
    if task is None:
        raise UnknownTask(f"no background task {name!r} is registered in this worker (register_tasks)")
    said = task.run(engine, **kwargs)
    return f"{name}: {said}" if said else f"{name}: done"


def recover_work(engine: Engine) -> int:
    """Every installed plugin's ``recover_work``, one at a time; a failure is logged. Returns how
    much work was started again."""
    started = 0
    for called in engine.host.call_each("recover_work", None, None, engine=engine):
        if called.error is not None:
            log.error("recover_work of plugin %r failed: %s: %s", called.plugin, type(called.error).__name__,
                      called.error)
        elif called.result:
            started += sum(int(n or 0) for n in called.result)
    return started
