"""``GET /console``: the projects the signed-in account moderates, with counts per status.

Operators see every project; admins and moderators the projects where they hold that role. An
account with no such role is told so (it may still be a contributor or expert somewhere).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from core.db.models import Observation
from core.db.session import transaction
from core.engine import Engine
from core.tokens import Principal
from core.types import MODERATION_STATUSES, ProjectContext
from core.web.guards import signed_in
from core.web.templating import render

router = APIRouter(include_in_schema=False)


def staff_projects(engine: Engine, principal: Principal) -> list[ProjectContext]:
    """The projects ``principal`` is an operator, admin or moderator of, by name."""
    projects = [p for p in engine.registry.contexts().values() if principal.is_staff_of(p.slug)]
    return sorted(projects, key=lambda p: p.name.lower())


def status_counts(engine: Engine, slugs: list[str]) -> dict[str, dict[str, int]]:
    """Observations per project and moderation status (every status present, 0 when none)."""
    counts = {slug: {status: 0 for status in MODERATION_STATUSES} for slug in slugs}
    if not slugs:
        return counts
    query = (select(Observation.project, Observation.status, func.count())
             .where(Observation.project.in_(slugs)).group_by(Observation.project, Observation.status))
    with transaction(engine.readers) as session:
        for project, status, count in session.execute(query):
            counts[project][status] = int(count)
    return counts


def _home(engine: Engine, principal: Principal) -> dict[str, Any]:
    projects = staff_projects(engine, principal)
    counts = status_counts(engine, [p.slug for p in projects])
    return {"projects": [{"project": p, "role": principal.role_in(p.slug), "counts": counts[p.slug],
                          "total": sum(counts[p.slug].values())} for p in projects]}


@router.get("/console")
async def console_home(request: Request) -> Response:
    """The console's first page."""
    principal = await signed_in(request)
    context = await run_in_threadpool(_home, request.app.state.engine, principal)
    return await render(request, "console/home.html", {**context, "statuses": MODERATION_STATUSES})
