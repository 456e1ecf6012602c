"""The engine's own checks: a generic observation kind, plausible times and media."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

from core.hookspecs import hookimpl
from core.types import Draft, Flag, ObservationType, ObservationView, Problem, ProjectContext

if TYPE_CHECKING:
    from core.engine import Engine

EARLIEST = datetime(1800, 1, 1, tzinfo=timezone.utc)
LOW_ACCURACY_M = 10_000


@hookimpl(tryfirst=True)  # the engine's own kind is registered before any plugin's
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    register(
        ObservationType(
            name="generic",
            title="Observation",
            description="Any observation: free fields, optional media.",
            schema={"type": "object", "additionalProperties": True},
        )
    )


@hookimpl
def validate_observation(draft: Draft, project: ProjectContext, engine: Engine) -> list[Problem]:
    problems = []
    skew = timedelta(seconds=engine.settings.max_future_skew_s)
    now = datetime.now(timezone.utc)
    if draft.observed_at > now + skew:
        problems.append(
            Problem(("observed_at",), f"{draft.observed_at.isoformat()} is in the future (now is {now.isoformat(timespec='seconds')})", "time_in_future")
        )
    if draft.observed_at < EARLIEST:
        problems.append(Problem(("observed_at",), f"{draft.observed_at.isoformat()} is before 1800", "time_too_early"))
    return problems


@hookimpl
def quality_check(observation: ObservationView, project: ProjectContext) -> list[Flag]:
    flags = []
    accuracy = observation.location.accuracy_m
    if accuracy is not None and accuracy > LOW_ACCURACY_M:
        flags.append(Flag("low_location_accuracy", f"location accurate to {accuracy:g} m only", "warning", accuracy))
    if observation.location.lat == 0 and observation.location.lon == 0:
        flags.append(Flag("null_island", "location is 0,0, most likely a missing GPS fix", "error", [0, 0]))
    return flags
