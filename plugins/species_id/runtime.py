"""What the species_id hooks need beyond their arguments: the engine's settings, the service's
config in registry.yaml, and the database (to find near-duplicate photos in a project).

Hooks, the HTTP route and the CLI are given the engine and use ``Runtime.of(engine)``, kept
with the engine (``Engine.state``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from plugins.species_id.catalogue import REGISTRY_FILE, SERVICE, Catalogue, build_catalogue, models_dir_of

_lock = threading.Lock()
_catalogues: dict[tuple[Any, ...], Catalogue] = {}


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
        def make() -> "Runtime":
            spec = engine.registry.services.get(SERVICE)
            config = dict(spec.config) if spec else {}
            return cls(engine.settings, config, Path(engine.settings.registry_path).resolve().parent, engine.sessions,
                       _digest(config))

        return engine.state(f"{SERVICE}.runtime", make)  # type: ignore[no-any-return]

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
