"""Projects: their enabled services and the field schema of each kind (to build forms)."""

from __future__ import annotations

from fastapi import APIRouter

from core.api.access import can_see_project
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.schemas import ProjectOut, error_responses
from core.lifecycle import get_project
from core.projects import project_dict

router = APIRouter(prefix="/api/v1", tags=["projects"])


@router.get("/projects", response_model=list[ProjectOut], summary="Projects the caller may see",
            responses=error_responses(401, 429))
def list_projects(engine: EngineDep, principal: PrincipalDep) -> list[dict]:
    return [project_dict(engine, p) for p in engine.registry.contexts().values() if can_see_project(principal, p)]


@router.get("/projects/{slug}", response_model=ProjectOut, summary="One project, with its kinds' field schemas",
            responses=error_responses(401, 403, 404, 429))
def get_one_project(slug: str, engine: EngineDep, principal: PrincipalDep) -> dict:
    project = get_project(engine, slug)
    if not can_see_project(principal, project):
        raise deny(principal, f"project {slug!r} is not public")
    return project_dict(engine, project)
