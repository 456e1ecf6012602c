"""The engine's grading rule, which runs after every plugin's (trylast)."""

from __future__ import annotations

from core.hookspecs import hookimpl
from core.types import Flag, ObservationView, ProjectContext


@hookimpl(trylast=True)
def grade_observation(observation: ObservationView, flags: list[Flag], project: ProjectContext) -> str:
    """``casual`` when an error flag stands; ``needs_id`` otherwise.

    ``research`` needs a human: a plugin (expert review) may decide it, never this rule.
    """
    if any(f.severity == "error" for f in flags):
        return "casual"
    return "needs_id"
