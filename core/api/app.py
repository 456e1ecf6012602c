"""The FastAPI application: routes under /api/v1, plugins' routers, JSON errors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from core import __version__
from core.api.contract import document_security, reject_unknown_query
from core.api.docs_page import install_docs_page
from core.api.errors import install_error_handlers
from core.api.limits import BodySizeLimit
from core.api.ratelimit import RateLimiter
from core.api.routes import routers
from core.engine import Engine
from core.lifecycle import DraftIn
from core.metrics import install_metrics
from core.tokens import PrincipalCache
from core.web.site import install_web

DESCRIPTION = """The observatory engine's API: projects, observations, media, moderation and audit.

Authenticate with `Authorization: Bearer <token>` (`observatory tokens create`). Without a token
you see published observations of public projects, without personal data. Errors are JSON:
`{"error": {"code": "...", "message": "...", "details": [{"path": [...], "message": "..."}]}}`.
"""


def _plugin_routers(app: FastAPI, engine: Engine) -> None:
    def register(router: APIRouter, prefix: str = "") -> None:
        app.include_router(router, prefix=prefix)

    engine.host.pm.hook.register_routes(register=register, engine=engine)


_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def _document_error_handlers(schema: dict[str, Any]) -> None:
    """Describe the errors as ``install_error_handlers`` answers them, on every route.

    FastAPI documents its own 422 body (``HTTPValidationError``, ``{"detail": [...]}``), but the
    handler answers ``ErrorOut``; and a request body it cannot decode (not UTF-8) answers 400.
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            invalid = responses.get("422", {}).get("content", {}).get("application/json", {})
            if invalid.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                invalid["schema"] = dict(_ERROR_REF)
                responses["422"]["description"] = "invalid input"
            if "requestBody" in operation and "400" not in responses:
                responses["400"] = {"description": "the request body cannot be read",
                                    "content": {"application/json": {"schema": dict(_ERROR_REF)}}}
    components = schema.get("components", {}).get("schemas", {})
    if "HTTPValidationError" in components and "HTTPValidationError" not in str(schema.get("paths")):
        components.pop("HTTPValidationError")
        components.pop("ValidationError", None)


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="Observatory engine", version=__version__, description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  dependencies=[Depends(reject_unknown_query)])
    install_docs_page(app)
    app.state.engine = engine
    app.state.rate_limiter = RateLimiter(engine.settings.rate_limit_per_minute)
    app.state.principals = PrincipalCache(engine.settings.token_cache_s)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=engine.settings.max_request_bytes)
    install_metrics(app)  # after the size limit, so that its 413s are counted too
    for router in routers():
        app.include_router(router)
    _plugin_routers(app, engine)
    install_web(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            draft = DraftIn.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(draft.pop("$defs", {}))
            components["DraftIn"] = draft
            _document_error_handlers(schema)
            document_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
