"""Errors as JSON with a stable machine code: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from core.errors import EngineError, ValidationFailed
from core.media import MediaError

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "validation_failed",
              429: "rate_limited", 503: "unavailable"}

DATABASE_UNAVAILABLE = ("the database could not be reached, or lost the connection, while handling this request; "
                        "the change was not confirmed: send it again (a submit with the same client_id is stored once)")


class ApiError(Exception):
    """An error a route raises on purpose."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


def _validation_status(exc: ValidationFailed) -> int:
    codes = {p.code for p in exc.problems}
    return 413 if "media_too_large" in codes else 422


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=exc.headers)

    @app.exception_handler(ValidationFailed)
    async def _invalid(_: Request, exc: ValidationFailed) -> JSONResponse:
        details = [{"path": list(p.path), "message": p.message, "code": p.code} for p in exc.problems]
        return JSONResponse(error_body(exc.code, exc.message, details), _validation_status(exc))

    @app.exception_handler(MediaError)
    async def _media(_: Request, exc: MediaError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc)), 413 if exc.code == "media_too_large" else 422)

    @app.exception_handler(EngineError)
    async def _engine(_: Request, exc: EngineError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), exc.http_status)

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        # a restarted database, a connection killed mid-request (the pool replaces it: the next
        # request succeeds), or SQLite still locked after its busy timeout; any other database
        # error is a bug and stays a 500
        if not (exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))):
            raise exc
        return database_unavailable()

    @app.exception_handler(PoolTimeout)
    async def _pool(_: Request, exc: PoolTimeout) -> JSONResponse:
        return database_unavailable()

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"path": list(e["loc"][1:] if e["loc"] and e["loc"][0] == "body" else e["loc"]), "message": e["msg"],
             "code": e["type"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(map(str, d['path']))}: {d['message']}" for d in details)
        return JSONResponse(error_body("invalid_request", f"the request is invalid: {summary}", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route found
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers or None)


def database_unavailable() -> JSONResponse:
    """503 with a short Retry-After: the database is away for now, not the request at fault."""
    return JSONResponse(error_body("database_unavailable", DATABASE_UNAVAILABLE), 503, headers={"Retry-After": "1"})


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """Every method some route serves at the path of ``scope`` (for a 405's ``Allow`` header)."""
    methods: set[str] = set()
    for route in app.router.routes:
        route_methods = getattr(route, "methods", None)
        # PARTIAL: the path matches and only the method does not
        if route_methods and route.matches({**scope, "type": "http"})[0] != Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)
