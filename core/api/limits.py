"""A limit on every request body, enforced while it streams in (413 past it)."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request

from core.api.errors import ApiError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes``, by header or by counting."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": {"code": "request_too_large",
                                     "message": f"the request body is over the limit of {self.max_bytes} bytes"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 past ``limit``; kept so ``request.form()`` can parse it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "request_too_large", f"the request body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "request_too_large", f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # let request.form() parse what was already read
    return body


async def read_form(request: Request, *, max_files: int, max_fields: int) -> FormData:
    """The multipart form of a body already read by ``read_body``; 400 if it is malformed."""
    try:
        return await request.form(max_files=max_files, max_fields=max_fields)
    except Exception as exc:  # starlette raises several kinds on a broken multipart body
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be read: {exc}") from None
