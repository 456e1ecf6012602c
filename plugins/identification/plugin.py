"""The identification service's hooks. The work is done in the modules they name (see ``__init__``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core import hookimpl
from core.types import Flag, ObservationView, ProjectContext

if TYPE_CHECKING:
    from core.engine import Engine

SERVICE = "identification"


@hookimpl
def startup(engine: Engine) -> None:
    from plugins.identification.db import create_tables

    create_tables(engine)


@hookimpl
def register_routes(register: Callable[..., None]) -> None:
    from plugins.identification import inat_api, queue, routes

    register(routes.router)
    register(queue.router)
    register(inat_api.router, prefix="/inat/v1")


def settings_of(project: ProjectContext) -> dict[str, Any]:
    """The project's identification settings, defaults filled in by the registry."""
    return project.settings(SERVICE)
