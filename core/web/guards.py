"""Who may open a page: the checks every console page makes before it reads anything.

A page never shows what the account may not see: a visitor is sent to sign in, a signed-in
account without a staff role in the project gets a 403 page (a project it may not know exists
gets the same 404 page as a missing one), and every POST must carry the CSRF token.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.api.access import can_see_project
from core.errors import NotFound
from core.tokens import Principal
from core.types import ProjectContext
from core.web.session import csrf_ok, web_principal
from core.web.templating import error_page, gettext_of


class PageRefused(Exception):
    """Raised by a guard; the handler in ``core.web.site`` answers with ``response``."""

    def __init__(self, response: Response):
        super().__init__("page refused")
        self.response = response


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/sign-in?next={quote(target, safe='')}", status_code=303)


async def signed_in(request: Request) -> Principal:
    """The signed-in account; a visitor is sent to the sign-in page (and back afterwards)."""
    principal = await web_principal(request)
    if principal.anonymous:
        raise PageRefused(sign_in_redirect(request))
    return principal


async def _project(request: Request, slug: str, principal: Principal) -> ProjectContext:
    _ = gettext_of(request)
    try:
        project = request.app.state.engine.registry.project(slug)
    except (NotFound, KeyError):
        project = None
    if project is None or not can_see_project(principal, project):
        raise PageRefused(await error_page(request, 404, _("Not found"), _("There is no such project.")))
    return project


async def staff_project(request: Request, slug: str) -> tuple[Principal, ProjectContext]:
    """The signed-in account and project ``slug``, when the account is its moderator or admin
    (or an operator); otherwise a redirect to sign in, a 404 or a 403 page."""
    principal = await signed_in(request)
    project = await _project(request, slug, principal)
    if not principal.is_staff_of(slug):
        _ = gettext_of(request)
        raise PageRefused(await error_page(request, 403, _("Not allowed"),
                                           _("Only the project's moderators and administrators may open this page.")))
    return principal, project


async def admin_project(request: Request, slug: str) -> tuple[Principal, ProjectContext]:
    """As :func:`staff_project`, for the project's administrators (and operators) only."""
    principal, project = await staff_project(request, slug)
    if not principal.is_admin_of(slug):
        _ = gettext_of(request)
        raise PageRefused(await error_page(request, 403, _("Not allowed"),
                                           _("Only the project's administrators may open this page.")))
    return principal, project


async def require_csrf(request: Request) -> None:
    """Refuse a POST whose CSRF token is missing or wrong (nothing has changed yet)."""
    if not await csrf_ok(request):
        _ = gettext_of(request)
        raise PageRefused(await error_page(
            request, 403, _("Form expired"),
            _("This form could not be checked (it is too old, or came from another site). Reload the page and try again.")))
