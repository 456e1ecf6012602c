"""Open-data downloads: a project's published observations as CSV or GeoJSON."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from core.api.access import can_see_project
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.schemas import error_responses
from core.export import export
from core.lifecycle import get_project

router = APIRouter(prefix="/api/v1", tags=["export"])
TYPES = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}


@router.get("/projects/{slug}/export", summary="Download observations as CSV or GeoJSON",
            description="Published observations as the public sees them; staff of the project may ask for "
            "`scope=all` (every observation, with contributor ids and exact places).",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}},
                       **error_responses(401, 403, 404, 429)})
def export_project(slug: str, engine: EngineDep, principal: PrincipalDep,
                   format: Literal["csv", "geojson"] = "csv", scope: Literal["public", "all"] = "public") -> StreamingResponse:
    project = get_project(engine, slug)
    if not can_see_project(principal, project):
        raise deny(principal, f"project {slug!r} is not public")
    if scope == "all" and not principal.is_staff_of(slug):
        raise deny(principal, "exporting personal data")
    chunks = export(engine, project, format, public=scope == "public")
    name = f"{slug}-observations.{format}"
    return StreamingResponse(chunks, media_type=TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
