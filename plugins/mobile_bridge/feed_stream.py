"""The feed as Server-Sent Events: ``GET /api/v1/mobile/feed/stream``.

Each entry is an event: ``id:`` the entry id, ``event:`` its type, ``data:`` the entry as JSON
(as ``GET /feed`` shows it). A client that reconnects with ``Last-Event-ID`` (or ``?cursor=``)
gets every entry after it, from the table, then the new ones as they come; without either it
gets only entries made after it connected. New entries are found by polling the table every
``POLL_S`` (entries written by a worker process) and at once when this process wrote them
(``notify``). A comment line every ``HEARTBEAT_S`` keeps proxies from closing an idle stream;
the stream ends when the client goes away or its token is revoked.

The route is left out of the OpenAPI document: an endless ``text/event-stream`` is no JSON
operation a schema-driven client or fuzzer can call (docs/mobile.md documents it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from contextlib import contextmanager
from typing import Annotated, Any, AsyncIterator, Iterator

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from core.api.deps import MAX_ID, EngineDep, PrincipalDep, deny
from core.db.models import ApiToken, utcnow
from core.db.session import transaction
from core.engine import Engine
from plugins.mobile_bridge import feed_store

router = APIRouter()

POLL_S = 1.0
HEARTBEAT_S = 15.0
BATCH = 100
RETRY_MS = 3000


class Notifier:
    """Wakes this process's open streams (on any event loop) when new entries are written."""

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed
                pass

    def listeners(self) -> int:
        """How many streams are open now."""
        with self._lock:
            return len(self._waiters)

    @contextmanager
    def listening(self) -> Iterator[asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def notifier(engine: Engine) -> Notifier:
    return engine.state("mobile_bridge.feed_notifier", Notifier)


def notify(engine: Engine) -> None:
    """New entries are committed: wake the streams of this process."""
    notifier(engine).notify()


def event_text(entry: dict[str, Any]) -> str:
    return f"id: {entry['id']}\nevent: {entry['type']}\ndata: {json.dumps(entry, separators=(',', ':'))}\n\n"


def _token_alive(engine: Engine, token_id: int | None) -> bool:
    if token_id is None:
        return True
    with transaction(engine.readers) as session:
        token = session.execute(select(ApiToken.revoked_at, ApiToken.expires_at).where(ApiToken.id == token_id)).first()
    return token is not None and token.revoked_at is None and (token.expires_at is None or token.expires_at > utcnow())


async def _events(request: Request, engine: Engine, account_id: int, token_id: int | None,
                  cursor: int) -> AsyncIterator[str]:
    with notifier(engine).listening() as woken:
        yield f"retry: {RETRY_MS}\n\n"
        quiet_since = time.monotonic()
        while True:
            woken.clear()  # before reading: an entry committed during the read wakes the next wait
            entries = await run_in_threadpool(feed_store.entries_after, engine, account_id, cursor, BATCH)
            for entry in entries:
                yield event_text(entry)
                cursor = entry["id"]
            if entries:
                quiet_since = time.monotonic()
                if len(entries) == BATCH:
                    continue
            if await request.is_disconnected():
                return
            idle = time.monotonic() - quiet_since
            try:
                await asyncio.wait_for(woken.wait(), timeout=max(0.0, min(POLL_S, HEARTBEAT_S - idle)))
            except TimeoutError:
                pass
            if time.monotonic() - quiet_since >= HEARTBEAT_S:
                if not await run_in_threadpool(_token_alive, engine, token_id):
                    return
                yield ": heartbeat\n\n"
                quiet_since = time.monotonic()


@router.get("/feed/stream", include_in_schema=False)
async def stream_feed(
    request: Request, engine: EngineDep, principal: PrincipalDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,10}$")] = None,
    cursor: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> StreamingResponse:
    """Your feed as Server-Sent Events, from ``Last-Event-ID`` (or ``cursor``) on."""
    if principal.account_id is None:
        raise deny(principal, "the feed stream")
    start = int(last_event_id) if last_event_id is not None else cursor
    if start is None:
        start = await run_in_threadpool(feed_store.last_id, engine, principal.account_id)
    return StreamingResponse(
        _events(request, engine, principal.account_id, principal.token_id, start), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
