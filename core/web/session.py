"""Web sessions and CSRF: who is signed in to the pages, and proof that a form came from them.

A sign-in (``core.accounts.sign_in``) makes a session token; the pages keep it in a cookie
signed with the installation's web key (``web_secret_key``), ``HttpOnly`` (no script reads it),
``SameSite=Lax`` (no other site's form sends it) and ``Secure`` over https. The token is checked
on every request like an API token, so signing out, revoking or erasing the account ends the
session at once, and the session holds no right the account has lost.

Every form carries a CSRF token (``csrf`` field, or the ``X-CSRF-Token`` header for fetch):
the signed-in session's own, or, before sign-in, one kept in a second signed cookie. A POST
without the right one is refused with 403 before anything changes.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from core.engine import Engine
from core.errors import EngineError
from core.secret_keys import secret_key
from core.tokens import ANONYMOUS, NewToken, Principal, authenticate, hash_token

SESSION_COOKIE = "observatory_session"
CSRF_COOKIE = "observatory_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
KEY_FILE = "web-session.key"


class WebKeyMissing(EngineError):
    code = "web_key_missing"
    http_status = 500


@dataclass(frozen=True)
class WebSession:
    token: str
    token_id: int
    csrf: str


def _serializer(engine: Engine, salt: str) -> URLSafeSerializer:
    key = secret_key(engine.settings.web_secret_key, Path(engine.settings.data_dir) / KEY_FILE,
                     setting="web_secret_key", error=WebKeyMissing, code="web_key_missing")
    return URLSafeSerializer(key, salt=salt)


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def read_session(request: Request) -> WebSession | None:
    """The session the request's cookie carries, when its signature holds (not yet checked
    against the database: :func:`web_principal` does that)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data: Any = _serializer(_engine(request), "session").loads(raw)
        return WebSession(token=str(data["t"]), token_id=int(data["i"]), csrf=str(data["c"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def start_session(request: Request, response: Response, token: NewToken, expires_at: datetime) -> None:
    """Put a new sign-in's session on ``response`` (with a fresh CSRF token)."""
    value = _serializer(_engine(request), "session").dumps({"t": token.token, "i": token.id,
                                                           "c": secrets.token_urlsafe(24)})
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    max_age = max(0, int((expires_at - datetime.now(timezone.utc)).total_seconds()))
    response.set_cookie(SESSION_COOKIE, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=_secure(request), path="/")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


async def web_principal(request: Request) -> Principal:
    """The signed-in account, as the API would see its token; anonymous without a valid session
    (a forged, expired or revoked one included)."""
    if "web_principal" in request.scope:
        return request.scope["web_principal"]
    session = read_session(request)
    principal = ANONYMOUS
    if session is not None:
        cache = request.app.state.principals
        found = cache.get(hash_token(session.token))
        if found is None:
            found = await run_in_threadpool(authenticate, _engine(request), session.token)
            if found is not None:
                cache.put(hash_token(session.token), found)
        principal = found or ANONYMOUS
    request.scope["web_principal"] = principal
    return principal


def _anonymous_csrf(request: Request) -> str | None:
    raw = request.cookies.get(CSRF_COOKIE)
    if not raw:
        return None
    try:
        return str(_serializer(_engine(request), "csrf").loads(raw))
    except BadSignature:
        return None


def csrf_token(request: Request) -> str:
    """The CSRF token forms on this page must carry (made on first use for a visitor; the
    response must then set it: :func:`remember_csrf`)."""
    session = read_session(request)
    if session is not None:
        return session.csrf
    token = request.scope.get("csrf_new") or _anonymous_csrf(request)
    if token is None:
        token = secrets.token_urlsafe(24)
        request.scope["csrf_new"] = token
    return token


def remember_csrf(request: Request, response: Response) -> None:
    """Set the visitor's CSRF cookie when :func:`csrf_token` made one for this request."""
    token = request.scope.get("csrf_new")
    if token:
        response.set_cookie(CSRF_COOKIE, _serializer(_engine(request), "csrf").dumps(token), httponly=True,
                            samesite="lax", secure=_secure(request), path="/")


async def csrf_ok(request: Request) -> bool:
    """Whether a POST carries this session's (or visitor's) CSRF token, in its form or header."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    session = read_session(request)
    expected = session.csrf if session is not None else _anonymous_csrf(request)
    return bool(sent and expected and hmac.compare_digest(sent, expected))
