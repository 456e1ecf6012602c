"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from core.api.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _broker_ok(engine: EngineDep) -> str | None:
    settings = engine.settings
    if settings.broker_url.startswith("filesystem"):
        folder = settings.broker_folder / "in"
        return None if folder.is_dir() else f"broker folder {folder} is missing"
    from core.dispatch import producer_for

    try:
        with producer_for(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker unreachable: {type(exc).__name__}"
    return None


@router.get("/readyz", summary="The database and the broker are reachable",
            responses={503: {"description": "a dependency is down"}})
def readyz(engine: EngineDep) -> JSONResponse:
    problems = {}
    try:
        with engine.db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        problems["database"] = f"database unreachable: {type(exc).__name__}"
    broker = _broker_ok(engine)
    if broker:
        problems["broker"] = broker
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok"})
