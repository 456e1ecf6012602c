"""Projects as clients see them: enabled services and the field schema of each kind."""

from __future__ import annotations

from typing import Any

from core.engine import Engine
from core.types import ObservationType, ProjectContext


def project_kinds(engine: Engine, project: ProjectContext) -> list[ObservationType]:
    """The kinds a project accepts: the engine's own and those of the services it enables."""
    return [
        t for t in engine.host.observation_types.values()
        if t.plugin is None or engine.host.is_default(t.plugin) or project.enables(t.plugin)
    ]


def project_dict(engine: Engine, project: ProjectContext) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "licence": project.licence,
        "public": project.public,
        "timezone": project.timezone,
        "services": {
            name: {
                "summary": engine.registry.services[name].summary,
                "version": engine.registry.services[name].version,
                "settings": settings,
            }
            for name, settings in project.services.items()
        },
        "kinds": {
            t.name: {"title": t.title, "description": t.description, "schema": t.schema, "plugin": t.plugin}
            for t in project_kinds(engine, project)
        },
    }
