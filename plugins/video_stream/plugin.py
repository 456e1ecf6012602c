"""The video_stream service's hooks. The work is done in the modules they name (see ``__init__``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core import hookimpl
from core.types import ProjectContext

if TYPE_CHECKING:
    from core.engine import Engine

SERVICE = "video_stream"


@hookimpl
def startup(engine: Engine) -> None:
    from plugins.video_stream.db import create_tables

    create_tables(engine)


@hookimpl
def register_routes(register: Callable[..., None]) -> None:
    from plugins.video_stream.routes import router

    register(router)


@hookimpl
def register_commands(cli: Any) -> None:
    from plugins.video_stream.commands import register

    register(cli)


def settings_of(project: ProjectContext) -> dict[str, Any]:
    """The project's video_stream settings, defaults filled in by the registry."""
    return project.settings(SERVICE)


def config_of(engine: Engine) -> dict[str, Any]:
    """The service's operator configuration (``services.video_stream.config`` in registry.yaml)."""
    return dict(engine.registry.services[SERVICE].config or {})

