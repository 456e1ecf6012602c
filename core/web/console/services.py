"""The console's service page (``/console/services``): the catalogue as the signed-in account may
see it (maturity, last week's health, acceptance of results) and, for those who maintain services
(operators; a project's admins for the services it enables), the feedback people sent, to mark
planned, done or declined and to export for a co-design session (docs/codesign.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import feedback
from core.catalogue import catalogue
from core.errors import EngineError, Forbidden
from core.tokens import Principal
from core.web.guards import require_csrf, signed_in
from core.web.templating import error_page, gettext_of, render

router = APIRouter(include_in_schema=False)
WINDOW = "week"


def _week(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """Last week's figures: the engine's total for operators, else the sum over the caller's
    projects (durations only where there is one project: percentiles do not add up)."""
    if not health:
        return None
    if health.get("total"):
        return health["total"]["windows"][WINDOW]
    parts = [p["windows"][WINDOW] for p in health.get("projects", {}).values()]
    if len(parts) == 1:
        return parts[0]
    summed = {key: sum(p[key] for p in parts) for key in ("run", "succeeded", "failed", "timed_out", "retried")}
    return {**summed, "median_ms": None, "p95_ms": None}


def _latest_rate(acceptance: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return acceptance[-1] if acceptance else None


def _page_data(request: Request, principal: Principal) -> dict[str, Any]:
    engine = request.app.state.engine
    entries = [{**entry, "week": _week(entry.get("health")), "latest": _latest_rate(entry.get("acceptance"))}
               for entry in catalogue(engine, principal)]
    try:
        items: list[dict[str, Any]] | None = feedback.list_service_feedback(engine, principal)["results"]
    except Forbidden:
        items = None  # not a maintainer: the catalogue only
    return {"entries": entries, "items": items, "states": feedback.STATES}


@router.get("/console/services")
async def services_page(request: Request) -> Response:
    principal = await signed_in(request)
    data = await run_in_threadpool(_page_data, request, principal)
    return await render(request, "console/services.html", data)


@router.post("/console/services/feedback/{feedback_id}/mark")
async def mark_feedback(request: Request, feedback_id: int) -> Response:
    await require_csrf(request)
    principal = await signed_in(request)
    form = await request.form()
    _ = gettext_of(request)
    try:
        await run_in_threadpool(feedback.mark, request.app.state.engine, principal, feedback_id,
                                str(form.get("state") or ""), str(form.get("note") or "") or None)
    except EngineError as refused:
        return await error_page(request, refused.http_status, _("The action was not done"), refused.message)
    return RedirectResponse("/console/services#feedback", status_code=303)


@router.get("/console/services/feedback.csv")
async def feedback_csv(request: Request) -> Response:
    principal = await signed_in(request)
    _ = gettext_of(request)
    try:
        text = await run_in_threadpool(feedback.export_service_feedback, request.app.state.engine, principal)
    except EngineError as refused:
        return await error_page(request, refused.http_status, _("Not allowed"), refused.message)
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="service-feedback.csv"', "Cache-Control": "no-store"})
