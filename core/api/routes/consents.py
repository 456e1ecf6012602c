"""Consents of a project's people, for its administrators: who agreed to a choice (a newsletter,
follow-up studies, the licence), and nothing else about anyone."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from core import consent
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.schemas import error_responses
from core.lifecycle import get_project

router = APIRouter(prefix="/api/v1", tags=["consents"])
TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@router.get("/projects/{slug}/consents/{choice}/accounts", summary="Accounts that agreed to a choice (admins)",
            description="Operators and admins of the project: those whose newest answer to `choice` is yes, with "
            "account id, display name, e-mail, when they agreed and to which version; nothing else. Audited.",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **error_responses(401, 403, 404, 422, 429)})
async def accounts_agreed(slug: str, choice: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", examples=["licence"],
                                                                  description="licence, attribution or one of the project's choices")],
                          engine: EngineDep, principal: PrincipalDep,
                          format: Literal["csv", "json"] = "csv") -> Response:
    project = get_project(engine, slug)
    if not principal.is_admin_of(slug):
        raise deny(principal, f"exporting consents of {slug!r}")
    rows = await run_in_threadpool(consent.accounts_agreed, engine, project, choice, principal.actor)
    body = consent.as_csv(rows) if format == "csv" else consent.as_json(rows)
    return Response(body, media_type=TYPES[format], headers={
        "Content-Disposition": f'attachment; filename="{slug}-{choice}-agreed.{format}"'})
