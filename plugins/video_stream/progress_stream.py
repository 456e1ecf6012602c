"""A job's progress as Server-Sent Events: ``GET /api/v1/video/jobs/{id}/events``.

The stream opens with the job as it stands (``event: progress``), then sends an event each time
its progress, state or gaps change (the job's row is read every ``POLL_S``: the work runs in a
worker process), a comment every ``HEARTBEAT_S`` while nothing changes (proxies keep the
connection), and ``event: end`` with the final job when it is done, failed or cancelled; then
it closes. ``data:`` is the job as ``GET /api/v1/video/jobs/{id}`` shows it; ``id:`` counts the
events. A client that goes away, or whose token is revoked, ends the stream.

Left out of the OpenAPI document, as the mobile bridge's feed stream is: an endless
``text/event-stream`` is no JSON operation (docs/video_stream.md documents it).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from core.api.deps import MAX_ID, EngineDep, PrincipalDep, deny
from core.db.models import ApiToken, utcnow
from core.engine import Engine
from core.tokens import Principal

router = APIRouter()

POLL_S = 0.5
HEARTBEAT_S = 15.0
RETRY_MS = 2000
ENDED = ("done", "failed", "cancelled")


def event_text(number: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {number}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def _what_changes(job: dict[str, Any]) -> tuple[Any, ...]:
    """What a listener is told about: a new value of any of these is an event."""
    progress = job["progress"]
    return (job["state"], job["cancel_requested"], progress["frames_done"], progress["frames_total"],
            job["gaps_total"], job["events"], job["observations"], bool(job["outputs"]))


def _token_alive(engine: Engine, token_id: int | None) -> bool:
    if token_id is None:
        return True
    with engine.db.connect() as conn:
        token = conn.execute(select(ApiToken.revoked_at, ApiToken.expires_at).where(ApiToken.id == token_id)).first()
    return token is not None and token.revoked_at is None and (token.expires_at is None or token.expires_at > utcnow())


def _read(engine: Engine, principal: Principal, job_id: int) -> dict[str, Any] | None:
    """The job as the API shows it, or None once the caller may no longer see it."""
    from core.errors import NotFound
    from plugins.video_stream import routes, submission

    try:
        return routes.job_out(engine, submission.job_of(engine, principal, job_id))
    except NotFound:
        return None


async def job_events(request: Request, engine: Engine, principal: Principal,
                     first: dict[str, Any]) -> AsyncIterator[str]:
    """The events of one job, from ``first`` (the job when the stream opened) to its end."""
    yield f"retry: {RETRY_MS}\n\n"
    number, job, told = 1, first, None
    quiet_since = checked_at = time.monotonic()
    while True:
        if job is None:  # deleted, or the caller's rights are gone
            return
        seen = _what_changes(job)
        if job["state"] in ENDED:
            yield event_text(number, "end", job)
            return
        if seen != told:
            yield event_text(number, "progress", job)
            number, told, quiet_since = number + 1, seen, time.monotonic()
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_S)
        if time.monotonic() - checked_at >= HEARTBEAT_S:  # a revoked token ends the stream, busy or not
            if not await run_in_threadpool(_token_alive, engine, principal.token_id):
                return
            checked_at = time.monotonic()
        if time.monotonic() - quiet_since >= HEARTBEAT_S:
            yield ": heartbeat\n\n"
            quiet_since = time.monotonic()
        job = await run_in_threadpool(_read, engine, principal, first["id"])


@router.get("/video/jobs/{job_id}/events", include_in_schema=False)
async def stream_job(request: Request, job_id: Annotated[int, Path(ge=1, le=MAX_ID)], engine: EngineDep,
                     principal: PrincipalDep) -> StreamingResponse:
    """The job's progress as Server-Sent Events until it ends."""
    if principal.anonymous:
        raise deny(principal, "following a video job")
    from plugins.video_stream import routes, submission

    first = await run_in_threadpool(lambda: routes.job_out(engine, submission.job_of(engine, principal, job_id)))
    return StreamingResponse(job_events(request, engine, principal, first), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
