"""Putting the pages on the engine's app: assets, the language switch, and every page module.

Page modules are found, not listed: each module of ``core.web.console`` and ``core.web.map``
with a ``router`` (a FastAPI ``APIRouter`` whose routes say ``include_in_schema=False``: pages
are not part of the API's contract) is included, so an area of the pages is one file to add.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.web import console, map as public_map
from core.web.assets import mount_assets
from core.web.guards import PageRefused
from core.web.i18n import LANG_COOKIE, LANGUAGES

switch = APIRouter(include_in_schema=False)


def local_path(target: str | None, default: str = "/console") -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


@switch.get("/web/language")
async def choose_language(to: str = Query(...), next: str | None = Query(None)) -> Response:
    response = RedirectResponse(local_path(next, "/map"), status_code=303)
    if to in LANGUAGES:
        response.set_cookie(LANG_COOKIE, to, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


def _page_modules(package: ModuleType) -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefused)
    return exc.response


def install_web(app: FastAPI) -> None:
    """Mount ``/assets``, and include the console's and the map's pages."""
    mount_assets(app)
    app.add_exception_handler(PageRefused, _refused)
    app.include_router(switch)
    for package in (console, public_map):
        for module in _page_modules(package):
            router = getattr(module, "router", None)
            if isinstance(router, APIRouter):
                app.include_router(router)
