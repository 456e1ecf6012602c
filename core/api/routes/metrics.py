"""``GET /metrics``: Prometheus text (core.metrics), outside /api/v1 and the OpenAPI document.

Who may read it: with the ``metrics_token`` setting, a caller presenting ``Authorization: Bearer
<metrics_token>``; without it, only callers on this machine (127.0.0.1, ::1). Behind a reverse
proxy on the same machine every caller looks local: set ``metrics_token`` there.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from core.api.deps import EngineDep
from core.api.errors import ApiError
from core.metrics import exposition

router = APIRouter(tags=["metrics"])
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _allowed(request: Request, token: str) -> None:
    """Raise 401/403 unless the caller may read the metrics."""
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ApiError(401, "unauthorized", "the metrics need 'Authorization: Bearer <metrics_token>'",
                           {"WWW-Authenticate": "Bearer"})
        return
    host = request.client.host if request.client else ""
    if host not in LOOPBACK:
        raise ApiError(403, "forbidden", "the metrics are served to this machine only; set metrics_token "
                       "(OBSERVATORY_METRICS_TOKEN) to let Prometheus read them from elsewhere")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, engine: EngineDep) -> Response:
    _allowed(request, engine.settings.metrics_token)
    body = await run_in_threadpool(exposition, request.app, engine)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
