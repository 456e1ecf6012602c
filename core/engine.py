"""The engine in one object: settings, registry, plugins, database, media and task queue.

Built once per process (``Engine.start``); every entry point (API, CLI, worker) uses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
import threading
from typing import Any, Callable, Protocol, TypeVar

from sqlalchemy import Engine as DBEngine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db.session import make_engine, make_sessionmaker
from core.dispatch import CeleryDispatcher
from core.media import MediaStore
from core.plugins import PluginHost, build_host, call_startup
from core.registry import Registry, load_registry

log = logging.getLogger(__name__)
T = TypeVar("T")


class Dispatcher(Protocol):
    """Runs enrichment work after a commit: queued to Celery, or inline."""

    def enqueue(self, engine: "Engine", enrichments: list[tuple[int, str]]) -> None:
        """Run or queue these enrichments, given as (id, plugin name)."""

    def assess(self, engine: "Engine", observation_id: int, *, due_only: bool = False) -> None:
        """Run or queue quality checks and grading of one observation. ``due_only``: only if it is
        still owed (``Observation.assess_due_at`` set), so a late or repeated message does nothing."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far has left this process."""
        ...

    def start_task(self, engine: "Engine", name: str, kwargs: dict[str, Any]) -> None:
        """Run or queue a plugin's background work (``core.tasks``)."""


@dataclass
class Engine:
    settings: Settings
    registry: Registry
    host: PluginHost
    db: DBEngine
    sessions: sessionmaker[Session]
    media: MediaStore
    dispatcher: Dispatcher = field(default=None)  # type: ignore[assignment]
    readers: sessionmaker[Session] = field(default=None)  # type: ignore[assignment]
    """Sessions for reading only (on SQLite they read beside a writer instead of waiting)."""

    _state: dict[str, Any] = field(default_factory=dict, repr=False)
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.readers is None:
            self.readers = make_sessionmaker(self.db, readonly=True)

    def state(self, key: str, make: Callable[[], T]) -> T:
        """What a plugin keeps for this engine (a loaded model, a cache), made by ``make`` on first
        use and kept as long as the engine: a plugin needs no module globals, and several engines
        in one process (tests, the test kit) never share one. ``key``: the plugin's name first,
        e.g. ``"odour.event_indexes"``."""
        with self._state_lock:
            if key not in self._state:
                self._state[key] = make()
            return self._state[key]  # type: ignore[no-any-return]

    @classmethod
    def start(cls, settings: Settings, dispatcher: Dispatcher | None = None) -> "Engine":
        """Load and check the registry and the plugins, and open the database.

        Raises RegistryError or PluginError with a message naming the key or plugin.
        """
        settings.ensure_dirs()
        registry = load_registry(settings.registry_path)
        host = build_host(registry, settings.plugin_modules, trace=settings.trace_plugins,
                          load=settings.load_plugins)
        db = make_engine(settings.database_url)
        assert settings.media_dir is not None
        engine = cls(settings, registry, host, db, make_sessionmaker(db), MediaStore(settings.media_dir),
                     dispatcher or CeleryDispatcher())
        call_startup(host, engine)
        from core.taxonomy.defaults import load_defaults_if_empty

        load_defaults_if_empty(engine)  # a fresh engine has taxa (plugins' register_taxa); logged, never fatal
        return engine

    def after_commit(self, observation_id: int, enrichments: list[tuple[int, str]]) -> None:
        """Hand what follows a committed submit or edit to the dispatcher: the enrichments, or the
        assessment when there are none.

        Never raises: the work is already committed, and what it still owes is recorded in the
        database (pending enrichments, ``assess_due_at``), which the workers' recovery loop reads
        (``core.worker.recover_once``). A broker that is down costs a delay, not the request.
        """
        try:
            if enrichments:
                self.dispatcher.enqueue(self, enrichments)
            else:
                self.dispatcher.assess(self, observation_id, due_only=True)
        except Exception as exc:  # noqa: BLE001 (the request has committed; recovery does the rest)
            broker = type(exc).__module__.split(".")[0] in ("kombu", "amqp", "redis", "celery")
            log.warning("observation %s is stored, but its %s could not be queued or run (%s: %s); the workers' "
                        "recovery loop will do it", observation_id, "enrichments" if enrichments else "assessment",
                        type(exc).__name__, exc, exc_info=not broker)  # a broker that is down needs no traceback

    def close(self) -> None:
        self.dispatcher.flush(5.0)  # what is still gathered for the broker leaves first
        self.db.dispose()
