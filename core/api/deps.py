"""Shared dependencies: the engine, the caller (bearer token) and the rate limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.api.errors import ApiError
from core.engine import Engine
from core.tokens import ANONYMOUS, Principal, PrincipalCache, authenticate, hash_token

bearer = HTTPBearer(auto_error=False, description="a token from `observatory tokens create`")


MAX_ID = 2_147_483_647
ObsId = Annotated[int, Path(ge=1, le=MAX_ID, description="an observation id")]
DbInt = Annotated[int, Path(ge=1, le=MAX_ID)]


async def get_engine(request: Request) -> Engine:
    # async: no I/O here, so no trip through the thread pool
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_principal(
    request: Request, engine: EngineDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller: anonymous without a token; 401 for a wrong or revoked one; 429 past the limit.

    async, so that a token seen in the last seconds (``PrincipalCache``) costs no trip through
    the thread pool; an unknown one is looked up there.
    """
    if credentials is None:
        if request.headers.get("authorization"):
            raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <token>'",
                           {"WWW-Authenticate": "Bearer"})
        principal = ANONYMOUS
        key = f"ip:{request.client.host if request.client else '?'}"
    else:
        cache: PrincipalCache = request.app.state.principals
        token_hash = hash_token(credentials.credentials)
        found = cache.get(token_hash)
        if found is None:
            found = await run_in_threadpool(authenticate, engine, credentials.credentials)
            if found is not None:
                cache.put(token_hash, found)
        if found is None:
            raise ApiError(401, "invalid_token", "the token is unknown or revoked", {"WWW-Authenticate": "Bearer"})
        principal = found
        key = f"token:{found.token_id}"
    wait = request.app.state.rate_limiter.hit(key)
    if wait is not None:
        raise ApiError(429, "rate_limited", f"too many requests; try again in {wait:.0f} s",
                       {"Retry-After": str(int(wait + 0.999))})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def deny(principal: Principal, message: str) -> ApiError:
    """401 for an anonymous caller (a token may help), 403 for a token with too little right.

    Only for what the caller may know exists (a project, a route, an observation it may read):
    an observation it may not read is answered with ``core.views.observation_not_found``, word for
    word the 404 of a missing id, so that no answer tells what exists."""
    if principal.anonymous:
        return ApiError(401, "unauthorized", f"{message}: a token is needed", {"WWW-Authenticate": "Bearer"})
    return ApiError(403, "forbidden", f"{message}: this token's role ({principal.role}) does not allow it")
