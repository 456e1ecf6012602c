"""What the species_id hooks need beyond their arguments: the engine's settings, the service's
config in registry.yaml, and the database (to find near-duplicate photos in a project).

Hooks get ``(observation, project)`` only; the engine hands itself to the ``startup`` hook,
which keeps it here, and ``current()`` gives the runtime of that engine. Code that holds an
Engine (the HTTP route, the CLI) uses ``Runtime.of(engine)``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from plugins.species_id.catalogue import REGISTRY_FILE, SERVICE, Catalogue, build_catalogue, models_dir_of

_lock = threading.Lock()
_catalogues: dict[tuple[Any, ...], Catalogue] = {}
_of_engine: dict[int, tuple[weakref.ref[Any], "Runtime"]] = {}


def _digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    config: dict[str, Any]
    registry_dir: Path
    sessions: sessionmaker[Session] | None = None
    config_digest: str = field(default="", compare=False)

    @classmethod
    def of(cls, engine: Any) -> "Runtime":
        """The runtime of a started Engine (kept while the engine lives)."""
        with _lock:
            found = _of_engine.get(id(engine))
        if found is not None and found[0]() is engine:
            return found[1]
        spec = engine.registry.services.get(SERVICE)
        config = dict(spec.config) if spec else {}
        made = cls(engine.settings, config, Path(engine.settings.registry_path).resolve().parent, engine.sessions,
                   _digest(config))
        with _lock:
            _of_engine[id(engine)] = (weakref.ref(engine), made)
        return made

    @property
    def models_dir(self) -> Path:
        return models_dir_of(self.settings.data_dir)

    def catalogue(self) -> Catalogue:
        """The models on offer (cached until registry.yaml's config or registry.json changes)."""
        local = self.models_dir / REGISTRY_FILE
        try:
            stamp = local.stat().st_mtime_ns
        except OSError:
            stamp = 0
        key = (self.config_digest or _digest(self.config), str(self.settings.data_dir), str(self.registry_dir), stamp)
        with _lock:
            found = _catalogues.get(key)
        if found is None:
            found = build_catalogue(self.config, self.settings.data_dir, self.registry_dir)
            with _lock:
                if len(_catalogues) > 64:
                    _catalogues.clear()
                _catalogues[key] = found
        return found


_started: list[Any] = []


def set_engine(engine: Any) -> None:
    """Keep the running engine (called from the ``startup`` hook)."""
    with _lock:
        _started[:] = [engine]


def current() -> Runtime:
    """The runtime of the engine this process started (for hooks)."""
    with _lock:
        engine = _started[0] if _started else None
    if engine is None:
        raise RuntimeError("species_id: the engine has not started (the startup hook was not called)")
    return Runtime.of(engine)
