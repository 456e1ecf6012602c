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


@hookimpl
def grade_observation(observation: ObservationView, flags: list[Flag], project: ProjectContext,
                      engine: Engine) -> str | None:
    """iNaturalist's grade (``grading``), for the projects that enable the service."""
    from plugins.identification import grading

    return grading.grade(engine, observation, flags, project)


@hookimpl
def erase_account(account_id: int, engine: Engine) -> None:
    from plugins.identification import erasure

    erasure.erase_account(engine, account_id)


@hookimpl
def personal_data(account_id: int, engine: Engine) -> dict[str, Any]:
    from plugins.identification import erasure

    return erasure.personal_data(engine, account_id)


def settings_of(project: ProjectContext) -> dict[str, Any]:
    """The project's identification settings, defaults filled in by the registry."""
    return project.settings(SERVICE)
