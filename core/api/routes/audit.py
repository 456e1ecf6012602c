"""The audit log of a project: who changed what, when, before and after."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from core.api.paging import json_size, rows_within
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.schemas import AuditPage, error_responses
from core.db.models import AuditEntry
from core.db.session import transaction
from core.lifecycle import get_project
from core.readable import readable

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/projects/{slug}/audit", response_model=AuditPage, summary="The project's audit log, newest first",
            description="Operators, and admins and moderators of the project. A page holds at most `limit` "
            "entries and at most OBSERVATORY_MAX_PAGE_BYTES of entries' JSON; `next_cursor` says where the next one starts.",
            responses=error_responses(401, 403, 404, 422, 429))
def project_audit(
    slug: str,
    engine: EngineDep,
    principal: PrincipalDep,
    observation_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2_147_483_647, description="cursor: entries older than this id")] = None,
) -> dict[str, Any]:
    get_project(engine, slug)
    if not principal.is_staff_of(slug):
        raise deny(principal, f"reading the audit log of {slug!r}")
    query = select(AuditEntry).where(AuditEntry.project == slug)
    if observation_id is not None:
        query = query.where(AuditEntry.observation_id == observation_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    with transaction(engine.readers) as session:
        # An edit's entry holds the fields twice (before and after): a page stops at max_page_bytes
        sizes = session.execute(query.with_only_columns(AuditEntry.id, json_size(AuditEntry.before, AuditEntry.after))
                                .order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
        count = rows_within(sizes, limit, engine.settings.max_page_bytes)
        rows = list(session.scalars(query.where(AuditEntry.id >= sizes[count - 1][0]).order_by(AuditEntry.id.desc())
                                    .limit(count))) if count else []
        # readable: an entry written before the field checks may hold what no answer can carry
        items = [{"id": r.id, "observation_id": r.observation_id, "actor": readable(r.actor), "action": r.action,
                  "before": readable(r.before), "after": readable(r.after), "at": r.at} for r in rows]
    return {"items": items, "next_cursor": str(rows[-1].id) if len(sizes) > count else None}

