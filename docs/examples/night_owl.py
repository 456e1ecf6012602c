"""night_owl: a quality check that flags observations made at night, in the project's time zone.

The example plugin of docs/hackathon_plugin.md, where its registry.yaml entry is shown.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from core import hookimpl
from core.types import Flag, ObservationView, ProjectContext

__version__ = "0.1.0"
NAME = "night_owl"
DUSK_HOUR, DAWN_HOUR = 21, 6  # used when registry.yaml's settings schema gives no default


def is_night(hour: int, dusk_hour: int, dawn_hour: int) -> bool:
    """Whether ``hour`` (0-23) falls in the night that runs from ``dusk_hour`` to ``dawn_hour``."""
    if dusk_hour > dawn_hour:  # the night spans midnight, e.g. 21 -> 6
        return hour >= dusk_hour or hour < dawn_hour
    return dusk_hour <= hour < dawn_hour  # e.g. 0 -> 5


@hookimpl
def quality_check(observation: ObservationView, project: ProjectContext) -> list[Flag]:
    settings = project.settings(NAME)  # validated against the service's JSON Schema in registry.yaml
    dusk, dawn = settings.get("dusk_hour", DUSK_HOUR), settings.get("dawn_hour", DAWN_HOUR)
    local = observation.observed_at.astimezone(ZoneInfo(project.timezone))
    if not is_night(local.hour, dusk, dawn):
        return []
    return [
        Flag(
            code="night",
            message=f"observed at {local:%H:%M} local time, between {dusk:02d}:00 and {dawn:02d}:00",
            severity="info",
            value=local.strftime("%H:%M"),
        )
    ]
