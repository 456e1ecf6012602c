"""Signing in to the console and out of it: ``/console/sign-in`` and ``/console/sign-out``.

The form posts an e-mail and a password (with the visitor's CSRF token); ``core.accounts.sign_in``
checks them (argon2id, attempt limits) and gives a session token that ``core.web.session`` keeps
in a signed ``HttpOnly`` cookie. A wrong e-mail or password is one answer (401, the same words for
both); too many failures are a 429 page saying how long to wait, with ``Retry-After``.
"""

from __future__ import annotations

import math

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import accounts
from core.web.guards import require_csrf
from core.web.session import end_session, read_session, start_session, web_principal
from core.web.site import local_path
from core.web.templating import gettext_of, render

router = APIRouter(include_in_schema=False)
MAX_EMAIL = 320


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _form(request: Request, *, next_path: str, email: str = "", error: str | None = None,
                status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return await render(request, "console/signin.html",
                        {"next": next_path, "email": email, "error": error,
                         "signed_out": request.query_params.get("signed_out") == "1"},
                        status_code=status_code, headers=headers)


@router.get("/console/sign-in")
async def sign_in_page(request: Request) -> Response:
    """The sign-in form; ``next`` is where to go afterwards (a path on this site)."""
    return await _form(request, next_path=local_path(request.query_params.get("next")))


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the e-mail and password; on success a session cookie and a 303 to ``next``."""
    await require_csrf(request)
    _ = gettext_of(request)
    form = await request.form()
    email = str(form.get("email") or "").strip()[:MAX_EMAIL]
    password = str(form.get("password") or "")
    next_path = local_path(str(form.get("next") or ""))
    if not email or not password:
        return await _form(request, next_path=next_path, email=email, status_code=422,
                           error=_("Enter your e-mail and your password."))
    engine = request.app.state.engine
    try:
        _account, token, expires_at = await run_in_threadpool(accounts.sign_in, engine, email, password,
                                                              _address(request))
    except accounts.TooManyAttempts as exc:
        minutes = max(1, math.ceil(exc.retry_after_s / 60))
        return await _form(request, next_path=next_path, email=email, status_code=429,
                           headers={"Retry-After": str(exc.retry_after_s)},
                           error=_("Too many failed sign-ins. Wait %(minutes)s minutes and try again.")
                           % {"minutes": minutes})
    except accounts.SignInRefused:
        return await _form(request, next_path=next_path, email=email, status_code=401,
                           error=_("Wrong e-mail or password."))
    response = RedirectResponse(next_path, status_code=303)
    # core.web.session reads ``token_id``; core.tokens.NewToken calls it ``id`` (lead told, W1 report)
    start_session(request, response, token, expires_at)
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session: its token is revoked (it stops working at once) and the cookie cleared."""
    await require_csrf(request)
    session = read_session(request)
    principal = await web_principal(request)
    if session is not None and not principal.anonymous and principal.token_id == session.token_id:
        await run_in_threadpool(accounts.sign_out, request.app.state.engine, session.token_id)
    response = RedirectResponse("/console/sign-in?signed_out=1", status_code=303)
    end_session(response)
    return response
