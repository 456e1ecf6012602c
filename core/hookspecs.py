"""Every hook the engine calls. ``docs/plugin_hooks.md`` documents each one; a test checks it.

Hooks that act on one observation (validate, enrich, quality, grade, export columns, status
changes) are called only for the plugins that the observation's project enables in
``registry.yaml``; the engine's own default plugins are always on. Start-up hooks
(``register_*``) are called once for every installed plugin.

Where one plugin's failure must not stop the others (enrichment, quality checks, status
changes), the engine calls the implementations one by one and records a failure against the
plugin, instead of letting pluggy stop at the first exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    import click

    from core.engine import Engine
    from core.types import (
        Analysis,
        Draft,
        ExportColumn,
        Flag,
        ObservationType,
        ObservationView,
        Problem,
        ProjectContext,
    )

PROJECT_NAME = "observatory"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def startup(engine: Engine) -> None:
    """Called once the engine has started (API, worker or CLI), with the running engine.

    A plugin keeps what it needs (for example ``engine`` to query other observations through
    ``core.queries``). An exception here stops start-up, naming the plugin.
    """


@hookspec
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    """Register the kinds of observation a plugin adds, with the JSON Schema of their fields.

    Called once at start-up for every installed plugin. A kind registered twice stops start-up.
    """


@hookspec
def validate_observation(draft: Draft, project: ProjectContext) -> list[Problem] | None:
    """Check a draft before it is stored; return the problems found (or None).

    Problems from every enabled plugin are collected; any with severity ``error`` rejects the
    draft and nothing is stored.
    """


@hookspec
def enrich_observation(observation: ObservationView, project: ProjectContext) -> dict[str, Any] | None:
    """Compute extra data for a stored observation, in a worker. Return a JSON-able dict.

    Called once per plugin, in its own task, with retries and a time limit; the result is
    stored under the plugin's name. An exception or a time-out marks that plugin's enrichment
    failed on that observation and never touches the others.
    """


@hookspec
def quality_check(observation: ObservationView, project: ProjectContext) -> list[Flag] | None:
    """Return quality flags for an observation, after its enrichments have finished.

    Flags from every enabled plugin are collected; a plugin that raises is logged and skipped.
    """


@hookspec(firstresult=True)
def grade_observation(
    observation: ObservationView, flags: list[Flag], project: ProjectContext
) -> str | None:
    """Decide the grade (``casual``, ``needs_id`` or ``research``), or return None to pass.

    The first non-None answer wins; the engine's own rule runs last.
    """


@hookspec
def register_routes(register: Callable[..., None]) -> None:
    """Mount FastAPI routers: ``register(router, prefix="")``. Called once at start-up."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``observatory`` CLI. Called once at start-up."""


@hookspec
def export_columns(project: ProjectContext) -> list[ExportColumn] | None:
    """Return extra columns for CSV export of a project. A duplicate column name is an error."""


@hookspec
def register_analyses(register: Callable[[Analysis], None]) -> None:
    """Register named analyses (data frames, plots, GeoJSON). A duplicate name is an error."""


@hookspec
def on_status_change(observation: ObservationView, old: str, new: str, project: ProjectContext) -> None:
    """Called after an observation's moderation status changes (for notifications).

    Errors are logged, never raised: a broken notifier cannot block moderation.
    """
