"""Rendering a page: one Jinja2 environment per language, with gettext and the page context.

Every template gets ``_``/``gettext``/``ngettext`` (newstyle: ``_("%(n)s items", n=3)``), the
request, ``lang`` and ``languages`` (for the switch), ``principal`` (the signed-in account or
anonymous), ``csrf`` (the token forms carry as ``<input type="hidden" name="csrf">``) and
``asset(path)`` (a URL under ``/assets``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from core import __version__
from core.web.i18n import LANGUAGES, negotiate, translations
from core.web.session import csrf_token, remember_csrf, web_principal

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=None)
def environment(language: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["asset"] = lambda path: f"/assets/{path.lstrip('/')}"
    env.globals["engine_version"] = __version__
    return env


def gettext_of(request: Request) -> Any:
    """The ``gettext`` of the request's language, for text built in Python (flash messages)."""
    return translations(negotiate(request)).gettext


async def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
                 status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The page ``template`` rendered in the request's language, with the common context."""
    language = negotiate(request)
    values = {
        "request": request, "lang": language, "languages": LANGUAGES,
        "principal": await web_principal(request), "csrf": csrf_token(request),
        **(context or {}),
    }
    html = environment(language).get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin", **(headers or {})})
    remember_csrf(request, response)
    return response


async def error_page(request: Request, status_code: int, title: str, message: str,
                     headers: dict[str, str] | None = None) -> HTMLResponse:
    """A plain page that says what went wrong (``title`` and ``message`` already translated)."""
    return await render(request, "error.html", {"title": title, "message": message},
                        status_code=status_code, headers=headers)
