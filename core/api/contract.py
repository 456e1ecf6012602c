"""The API keeps to its OpenAPI document: who needs a token, which query parameters exist,
which methods a path has.

FastAPI declares the bearer scheme as required on every route that reads the caller, although
most routes also answer anonymous callers (published data of public projects). A client
generated from the document would then refuse to call them without a token, and a tester
would expect a 401 that never comes. Here the document says, per operation, whether a token
is optional; ``tests/api/test_schemathesis.py`` holds the API to it (an operation listed as
needing a token must answer 401 without one, every other one must work without one).

Unknown query parameters are refused (422 ``unknown_parameter``) instead of being ignored: a
misspelt filter (``?stauts=pending``) would otherwise return the unfiltered list as if it had
applied.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from core.api.errors import ApiError

TOKEN_REQUIRED = {
    ("post", "/api/v1/projects/{slug}/observations"),
    ("patch", "/api/v1/observations/{obs_id}"),
    ("post", "/api/v1/observations/{obs_id}/moderation"),
    ("get", "/api/v1/projects/{slug}/audit"),
    ("post", "/api/v1/identify"),
    # accounts
    ("post", "/api/v1/sign-out"),
    ("get", "/api/v1/me"),
    ("delete", "/api/v1/me"),
    ("get", "/api/v1/me/tokens"),
    ("post", "/api/v1/me/tokens"),
    ("delete", "/api/v1/me/tokens/{token_id}"),
    ("get", "/api/v1/projects/{slug}/members"),
    ("put", "/api/v1/projects/{slug}/members/{account_id}"),
    ("delete", "/api/v1/projects/{slug}/members/{account_id}"),
    ("get", "/api/v1/accounts"),
    ("post", "/api/v1/accounts"),
    # comments, consent, personal data
    ("post", "/api/v1/observations/{obs_id}/comments"),
    ("post", "/api/v1/comments/{comment_id}/{action}"),
    ("post", "/api/v1/observations/{obs_id}/comments/{action}"),
    ("get", "/api/v1/projects/{slug}/comments"),
    ("get", "/api/v1/me/consents"),
    ("post", "/api/v1/me/consents"),
    ("get", "/api/v1/me/data"),
    ("get", "/api/v1/projects/{slug}/consents/{choice}/accounts"),
}
"""Operations that answer 401 without a token; every other one also serves anonymous callers.
A plugin marks its own with ``openapi_extra=TOKEN_REQUIRED_EXTRA`` on the route."""

TOKEN_REQUIRED_EXTRA = {"x-token-required": True}
"""``@router.post(..., openapi_extra=TOKEN_REQUIRED_EXTRA)``: this operation answers 401 without a token."""


def document_security(schema: dict[str, Any]) -> None:
    """Mark the bearer token optional (``[{...}, {}]``) where anonymous callers are served."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            security = operation.get("security")
            if not security or (method, path) in TOKEN_REQUIRED or operation.get("x-token-required"):
                continue
            if {} not in security:
                operation["security"] = [*security, {}]


FILTER_ROUTES = frozenset({
    "/api/v1/projects/{slug}/observations",
    "/api/v1/projects/{slug}/export",
    "/api/v1/projects/{slug}/export/dwca",
})
"""Routes that take ``core.filters``: ``field.NAME`` (and ``field.NAME>`` / ``field.NAME<``, as
``field.count>=3`` arrives) reaches them, and their parser names an unknown field."""
_FIELD_FILTER = re.compile(r"^field\.[^<>!]{1,100}[<>!]?$")

_query_names: dict[int, frozenset[str]] = {}


def _declared_query(route: APIRoute) -> frozenset[str]:
    names = _query_names.get(id(route))
    if names is None:
        names = _query_names[id(route)] = frozenset(_query_aliases(route.dependant))
    return names


def _query_aliases(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_aliases(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """A dependency of every route: a query parameter the operation does not declare is a 422."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema or not request.query_params:
        return  # web pages (core.web) are not in the API's contract: they read their own query
    unknown = sorted(set(request.query_params.keys()) - _declared_query(route))
    filters = request.method == "GET" and route.path in FILTER_ROUTES
    if unknown and filters:
        unknown = [name for name in unknown if not _FIELD_FILTER.match(name)]
    if unknown:
        known = ", ".join(sorted(_declared_query(route))) or "none"
        if filters:
            known += ", and field.NAME for a field of the project's kinds"
        raise ApiError(422, "unknown_parameter",
                       f"unknown query parameter(s) {', '.join(map(repr, unknown))}; this operation takes: {known}")
