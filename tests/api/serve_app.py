"""The API as a uvicorn factory, configured from the environment (``OBSERVATORY_*`` settings).

    python -m uvicorn --factory tests.api.serve_app:create --host 127.0.0.1 --port 8123

``OBSERVATORY_SERVE_DISPATCHER`` picks how enrichments run after a commit: ``celery`` (the
default, as ``observatory serve`` does: queued on the configured broker, the file-system one by
default, for a worker to run) or ``inline`` (run in the request, as the tests' engines do).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from core.api.app import create_app
from core.config import get_settings
from core.engine import Engine
from core.worker import CeleryDispatcher, InlineDispatcher

DISPATCHERS = {"celery": CeleryDispatcher, "inline": InlineDispatcher}


def create() -> FastAPI:
    name = os.environ.get("OBSERVATORY_SERVE_DISPATCHER", "celery")
    if name not in DISPATCHERS:
        raise SystemExit(f"OBSERVATORY_SERVE_DISPATCHER must be one of {', '.join(DISPATCHERS)}, not {name!r}")
    return create_app(Engine.start(get_settings(), dispatcher=DISPATCHERS[name]()))
