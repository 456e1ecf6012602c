"""The mobile bridge's hooks. The work is done in the modules they name (see ``__init__``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core import hookimpl
from core.types import CommentView, Flag, IdentificationChange, ObservationView, ProjectContext

if TYPE_CHECKING:
    from core.engine import Engine

SERVICE = "mobile_bridge"


@hookimpl
def startup(engine: Engine) -> None:
    from plugins.mobile_bridge.db import create_tables

    create_tables(engine)


@hookimpl
def register_routes(register: Callable[..., None]) -> None:
    from plugins.mobile_bridge import devices, edits, feed, forms, sync, tus, webhooks

    for module in (devices, forms, sync, tus, edits, feed, webhooks):
        register(module.router)


@hookimpl
def register_commands(cli: Any) -> None:
    import click

    from plugins.mobile_bridge.tus import sweep_uploads_command

    @click.group("mobile", help="The mobile bridge: field apps' uploads and more.")
    def mobile() -> None:
        pass

    mobile.add_command(sweep_uploads_command)
    cli.add_command(mobile)


@hookimpl
def on_assessed(observation: ObservationView, flags: list[Flag], grade: str, project: ProjectContext,
                engine: Engine) -> None:
    from plugins.mobile_bridge import feed

    feed.on_assessed(observation, flags, grade, project, engine)


@hookimpl
def on_status_change(observation: ObservationView, old: str, new: str, project: ProjectContext, engine: Engine) -> None:
    from plugins.mobile_bridge import feed

    feed.on_status_change(observation, old, new, project, engine)


@hookimpl
def on_comment(comment: CommentView, observation: ObservationView, project: ProjectContext, engine: Engine) -> None:
    from plugins.mobile_bridge import feed

    feed.on_comment(comment, observation, project, engine)


@hookimpl
def on_identification(change: IdentificationChange, observation: ObservationView, project: ProjectContext,
                      engine: Engine) -> None:
    from plugins.mobile_bridge import feed

    feed.on_identification(change, observation, project, engine)


@hookimpl
def quality_check(observation: ObservationView, project: ProjectContext, engine: Engine) -> list[Flag]:
    from plugins.mobile_bridge import sync

    return sync.device_clock_flags(observation, project, engine)


@hookimpl
def erase_account(account_id: int, engine: Engine) -> None:
    from plugins.mobile_bridge import erasure

    erasure.erase_account(engine, account_id)


@hookimpl
def personal_data(account_id: int, engine: Engine) -> dict[str, Any]:
    from plugins.mobile_bridge import erasure

    return erasure.personal_data(engine, account_id)


def settings_of(project: ProjectContext) -> dict[str, Any]:
    """The project's mobile_bridge settings, defaults filled in by the registry."""
    return project.settings(SERVICE)
