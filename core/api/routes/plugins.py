"""The installed plugins."""

from __future__ import annotations

from fastapi import APIRouter

from core.api.access import can_see_project
from core.api.deps import EngineDep, PrincipalDep
from core.api.schemas import PluginOut, error_responses

router = APIRouter(prefix="/api/v1", tags=["plugins"])


@router.get("/plugins", response_model=list[PluginOut], summary="Installed plugins, their hooks and projects",
            responses=error_responses(401, 429))
def list_plugins(engine: EngineDep, principal: PrincipalDep) -> list[dict]:
    host = engine.host
    visible = {s for s, p in engine.registry.contexts().items() if can_see_project(principal, p)}
    return [
        {"name": i.name, "version": i.version, "default": host.is_default(i.name), "hooks": host.hooks_of(i.name),
         "projects": [p for p in host.registry.projects_enabling(i.name) if p in visible]}
        for i in host.info.values()
    ]
