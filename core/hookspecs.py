"""Every hook the engine calls. ``docs/plugin_hooks.md`` documents each one; a test checks it.

Every hook is called through pluggy. Hooks that act on one observation (validate, enrich,
quality, grade, export columns, status changes) reach only the plugins that the observation's
project enables in ``registry.yaml`` (a pluggy subset hook caller per project); the engine's own
default plugins are always on. Start-up hooks (``register_*``, ``startup``) reach every
installed plugin. One order everywhere: pluggy's (the plugin registered last is called first;
``tryfirst``/``trylast`` and wrappers as pluggy defines them).

Every hook but ``register_*`` and ``register_commands`` may take ``engine``, the running
``core.engine.Engine`` (an implementation lists only the arguments it needs), so a plugin keeps
no module globals: it queries other observations with ``core.queries`` and the engine it is given.

Where one plugin's failure must not stop the others (enrichment, quality checks, status
changes), the engine calls the plugins one at a time, each through its own subset caller
(``core.plugins.PluginHost.call_each``), and records a failure against the plugin.

``for_kinds("odour", ...)`` on an ``enrich_observation`` or ``quality_check`` implementation
limits it to observations of those kinds: no enrichment row, no task, no call for other kinds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

import pluggy

if TYPE_CHECKING:
    import click

    from core.config import Settings
    from core.engine import Engine
    from core.registry import Registry
    from core.types import (
        Analysis,
        BackgroundTask,
        CommentView,
        DoctorCheck,
        Draft,
        IdentificationChange,
        ExportColumn,
        Flag,
        ObservationType,
        ObservationView,
        Problem,
        ProjectContext,
        TaxonRecord,
    )

PROJECT_NAME = "observatory"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
KINDS_ATTRIBUTE = "observatory_kinds"

F = TypeVar("F", bound=Callable[..., Any])


def for_kinds(*kinds: str) -> Callable[[F], F]:
    """Mark an ``enrich_observation`` or ``quality_check`` implementation as handling only
    observations of these kinds (in either order with ``@hookimpl``)::

        @hookimpl
        @for_kinds("bird_song")
        def enrich_observation(observation, project, engine): ...
    """
    if not kinds or not all(isinstance(k, str) and k for k in kinds):
        raise ValueError("for_kinds needs one or more kind names")

    def mark(function: F) -> F:
        setattr(function, KINDS_ATTRIBUTE, tuple(kinds))
        return function

    return mark


@hookspec
def startup(engine: Engine) -> None:
    """Called once the engine has started (API, worker or CLI), with the running engine.

    For checks and warm-up (open a model, check a setting). Keep nothing in module globals:
    every other hook can take ``engine`` too, and one process may run several engines (tests,
    the test kit). An exception here stops start-up, naming the plugin.
    """


@hookspec
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    """Register the kinds of observation a plugin adds, with the JSON Schema of their fields.

    Called once at start-up for every installed plugin. A kind registered twice stops start-up.
    """


@hookspec
def validate_observation(draft: Draft, project: ProjectContext, engine: Engine) -> list[Problem] | None:
    """Check a draft before it is stored; return the problems found (or None).

    Problems from every enabled plugin are collected; any with severity ``error`` rejects the
    draft and nothing is stored.
    """


@hookspec
def enrich_observation(observation: ObservationView, project: ProjectContext, engine: Engine) -> dict[str, Any] | None:
    """Compute extra data for a stored observation, in a worker. Return a JSON-able dict.

    Called once per plugin, in its own task, with retries and a time limit; the result is
    stored under the plugin's name. An exception or a time-out marks that plugin's enrichment
    failed on that observation and never touches the others.
    """


@hookspec
def quality_check(observation: ObservationView, project: ProjectContext, engine: Engine) -> list[Flag] | None:
    """Return quality flags for an observation, after its enrichments have finished.

    Flags from every enabled plugin are collected; a plugin that raises is logged and skipped.
    """


@hookspec(firstresult=True)
def grade_observation(
    observation: ObservationView, flags: list[Flag], project: ProjectContext, engine: Engine
) -> str | None:
    """Decide the grade (``casual``, ``needs_id`` or ``research``), or return None to pass.

    The first non-None answer wins (pluggy's ``firstresult``); the engine's own rule runs last.
    """


@hookspec
def register_routes(register: Callable[..., None], engine: Engine) -> None:
    """Mount FastAPI routers: ``register(router, prefix="")``. Called once at start-up."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``observatory`` CLI. Called once at start-up."""


@hookspec
def export_columns(project: ProjectContext, engine: Engine) -> list[ExportColumn] | None:
    """Return extra columns for CSV export of a project. A duplicate column name is an error."""


@hookspec
def register_analyses(register: Callable[[Analysis], None]) -> None:
    """Register named analyses (data frames, plots, GeoJSON). A duplicate name is an error."""


@hookspec
def on_status_change(
    observation: ObservationView, old: str, new: str, project: ProjectContext, engine: Engine
) -> None:
    """Called after an observation's moderation status changes (for notifications).

    Errors are logged, never raised: a broken notifier cannot block moderation.
    """


@hookspec
def doctor_checks(settings: Settings, registry: Registry) -> list[DoctorCheck] | None:
    """Check what the plugin needs to work (model files, folders, services it calls) for
    ``observatory doctor``; each finding says what to do when it is not ``ok``.

    Called without a running engine (the database may be what is broken): use ``settings``
    and ``registry`` only. An exception is reported as a problem naming the plugin.
    """


@hookspec
def on_assessed(
    observation: ObservationView, flags: list[Flag], grade: str, project: ProjectContext, engine: Engine
) -> None:
    """Called after an observation's quality flags and grade have been stored: every
    enrichment has ended, so ``observation.enrichments`` holds the results (for notifications,
    e.g. the mobile bridge's feed). Runs in the worker that graded it.

    Errors are logged, never raised: the assessment is already stored.
    """


@hookspec
def on_comment(comment: CommentView, observation: ObservationView, project: ProjectContext, engine: Engine) -> None:
    """Called after a comment has been stored on an observation (for notifications).

    Errors are logged, never raised: the comment is already stored.
    """


@hookspec
def erase_account(account_id: int, engine: Engine) -> None:
    """Delete or anonymise what the plugin keeps about a person who is being erased (GDPR
    Art. 17: devices, queued items, feeds, follows, webhooks, names copied into notifications).

    Called for every installed plugin before the engine erases its own records; an exception
    stops the erasure before the engine changes anything (the erasure can be asked again, so
    make it idempotent).
    """


@hookspec
def personal_data(account_id: int, engine: Engine) -> dict[str, Any] | None:
    """What the plugin keeps about a person, as JSON-able data, for their personal-data export
    (GDPR Art. 15 and 20). It lands in ``plugins/<plugin name>.json`` of the export's zip.
    Give the person's own data only, never another person's.
    """


@hookspec
def register_taxa(register: Callable[[TaxonRecord], None]) -> None:
    """Offer taxa for the engine's default taxonomy (``core.taxonomy``), e.g. a classifier's
    labels, so that a fresh engine has taxa without a checklist. Loaded when the taxon table is
    empty at start-up, and by ``observatory taxa defaults``; a checklist imported with
    ``observatory taxa import`` adds to them. Called for every installed plugin.
    """


@hookspec
def on_identification(
    change: IdentificationChange, observation: ObservationView, project: ProjectContext, engine: Engine
) -> None:
    """Called after an identification is added, withdrawn or restored, and after an observation's
    community taxon changes (the identification service; for notifications, e.g. the mobile
    bridge's feed). A grade that changes with it is told through ``on_assessed``.

    Errors are logged, never raised: the identification is already stored.
    """


@hookspec
def register_tasks(register: Callable[[BackgroundTask], None]) -> None:
    """Register background work the plugin runs in the workers (``core.types.BackgroundTask``):
    long jobs that are not one observation's enrichment, such as processing a video or reading a
    live stream. Start one with ``core.tasks.start_task(engine, name, **kwargs)``. Called once at
    start-up for every installed plugin; a name registered twice stops start-up.
    """


@hookspec
def recover_work(engine: Engine) -> int | None:
    """Called by every worker's recovery loop (each ``recovery_interval_s``, default 10 s): start
    again the plugin's background work whose worker died (its lease expired), from its last
    checkpoint; return how many were started again. Called for every installed plugin.

    Errors are logged, never raised: the loop goes on, and the other plugins are still called.
    """
