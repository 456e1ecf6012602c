"""Projects: their enabled services, the field schema of each kind (to build forms), and what an
app asks a contributor: licences, location privacy, comments and consent choices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from core.api.access import can_see_project
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.schemas import ProjectOut, error_responses
from core.consent import choices
from core.engine import Engine
from core.licences import gbif_eligible, licence_uri
from core.lifecycle import get_project
from core.privacy import precision_m
from core.projects import project_dict
from core.types import ProjectContext

router = APIRouter(prefix="/api/v1", tags=["projects"])


def project_terms(project: ProjectContext) -> dict[str, Any]:
    """What an app shows or asks before a contributor submits: the licences to choose from (with
    their URIs and whether GBIF takes them), the location privacy default and the cells places are
    shown on, whether comments are on, and the consent choices with their texts and versions."""
    return {
        "licences": [{"id": name, "uri": licence_uri(name) or None, "gbif_eligible": gbif_eligible(name)}
                     for name in project.licences or (project.licence,)],
        "licence_version": project.licence_version,
        "default_location_privacy": project.default_location_privacy,
        "location_precision_m": precision_m(project),
        "obscured_cell_m": precision_m(project, "obscured"),
        "comments": project.comments,
        "consent_choices": [{"name": c.name, "text": c.text, "version": c.version} for c in choices(project).values()],
    }


def project_out(engine: Engine, project: ProjectContext) -> dict[str, Any]:
    return {**project_dict(engine, project), **project_terms(project)}


@router.get("/projects", response_model=list[ProjectOut], summary="Projects the caller may see",
            responses=error_responses(401, 429))
def list_projects(engine: EngineDep, principal: PrincipalDep) -> list[dict]:
    return [project_out(engine, p) for p in engine.registry.contexts().values() if can_see_project(principal, p)]


@router.get("/projects/{slug}", response_model=ProjectOut,
            summary="One project: its kinds' field schemas, licences, location privacy, comments and consent choices",
            responses=error_responses(401, 403, 404, 429))
def get_one_project(slug: str, engine: EngineDep, principal: PrincipalDep) -> dict:
    project = get_project(engine, slug)
    if not can_see_project(principal, project):
        raise deny(principal, f"project {slug!r} is not public")
    return project_out(engine, project)
