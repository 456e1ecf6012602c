"""Per-project switches changed at run time (the console's "comments on/off"), over registry.yaml.

registry.yaml says what a project may do; a switch can only turn a thing off that the registry
allows, never on what the registry turned off (``comments: false`` wins). With no switch stored,
the registry's value holds. Every change is audited.
"""

from __future__ import annotations

from sqlalchemy import select

from core.audit import audit
from core.db.models_console import ProjectSwitch
from core.db.session import transaction
from core.engine import Engine
from core.errors import Conflict, EngineError
from core.types import ProjectContext

COMMENTS = "comments"
SWITCHES = (COMMENTS,)
"""The switches a project has: each names a boolean of ``ProjectContext`` that allows it."""


class UnknownSwitch(EngineError):
    code = "unknown_switch"
    http_status = 422


def _check(name: str) -> None:
    if name not in SWITCHES:
        raise UnknownSwitch(f"no switch {name!r}; switches: {', '.join(SWITCHES)}")


def registry_allows(project: ProjectContext, name: str) -> bool:
    """Whether registry.yaml lets ``project`` have ``name`` on at all."""
    _check(name)
    return bool(getattr(project, name))


def stored(engine: Engine, project: str, name: str) -> bool | None:
    """The switch as the console last set it (None: never set)."""
    with transaction(engine.readers) as session:
        return session.scalar(select(ProjectSwitch.on).where(ProjectSwitch.project == project,
                                                             ProjectSwitch.name == name))


def is_on(engine: Engine, project: ProjectContext, name: str) -> bool:
    """Whether ``name`` is on for ``project`` now: registry.yaml allows it and the console has
    not switched it off."""
    return registry_allows(project, name) and stored(engine, project.slug, name) is not False


def comments_on(engine: Engine, project: ProjectContext) -> bool:
    """Whether ``project`` takes comments now (registry.yaml's ``comments`` and the console's switch)."""
    return is_on(engine, project, COMMENTS)


def set_switch(engine: Engine, project: ProjectContext, name: str, on: bool, actor: str) -> bool:
    """Switch ``name`` on or off for ``project``; audited when it changes (``switch_on``/``switch_off``,
    naming the switch). Conflict ``registry_says_off`` when turning on what registry.yaml turned off
    (nothing is stored). Returns the switch's new state."""
    _check(name)
    if on and not registry_allows(project, name):
        raise Conflict(f"registry.yaml turns {name} off for project {project.slug!r}; change it there to turn "
                       f"{name} on", code="registry_says_off")
    with transaction(engine.sessions) as session:
        row = session.get(ProjectSwitch, (project.slug, name))
        before = row.on if row is not None else registry_allows(project, name)
        if row is None:
            session.add(ProjectSwitch(project=project.slug, name=name, on=on))
        else:
            row.on = on
        if before != on:
            audit(session, project.slug, None, actor, "switch_on" if on else "switch_off",
                  {"switch": name, "on": before}, {"switch": name, "on": on})
    return on
