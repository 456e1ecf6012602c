"""The projects the mobile bridge serves: those that enable it in registry.yaml."""

from __future__ import annotations

from typing import Any

from core.api.errors import ApiError
from core.engine import Engine
from core.lifecycle import get_project
from core.types import ProjectContext

SERVICE = "mobile_bridge"


def bridge_project(engine: Engine, slug: str) -> ProjectContext:
    """The project ``slug`` if it enables the mobile bridge; 404 otherwise (an unknown project
    answers core's ``unknown_project``)."""
    project = get_project(engine, slug)
    if not project.enables(SERVICE):
        raise ApiError(404, "mobile_bridge_not_enabled",
                       f"project {slug!r} does not enable the mobile bridge (registry.yaml: services: mobile_bridge)")
    return project


def bridge_settings(project: ProjectContext) -> dict[str, Any]:
    """The project's mobile_bridge settings, the registry's defaults filled in."""
    return project.settings(SERVICE)
