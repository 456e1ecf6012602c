"""The ``odour`` plugin: the hooks that put the odour domain logic into the engine.

Enable it for a project in ``registry.yaml`` (``services: {odour: {...}}``, settings as in
:data:`plugins.odour.schema.ODOUR_SETTINGS_SCHEMA`); ``docs/odour.md`` is the guide. The hooks
that act on one observation run only for projects that enable odour, and act only on
observations of kind ``odour``.

* ``register_observation_types``: the ``odour`` kind and its form schema;
* ``validate_observation``: :func:`plugins.odour.validation.validate_odour`;
* ``enrich_observation``: local time and day of week in the project's time zone, distance and
  bearing to the project's points of interest, the zone that contains the report;
* ``quality_check``: bursts, reports outside the zones, implausible combinations, and
  ``odour.corroborated`` (info) when the report belongs to an event;
* ``export_columns``, ``register_analyses``, ``register_routes``, ``register_commands``;
* ``startup``: keeps the engine, to read other reports through ``core.queries``.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core import hookimpl, queries
from core.types import ExportColumn, Flag, ObservationView, ProjectContext
from plugins.odour.catalogue import CATEGORIES, SUBTYPES
from plugins.odour.enrichment import enrich_odour, local_time
from plugins.odour.quality import burst_window, quality_flags
from plugins.odour.schema import odour_type
from plugins.odour.service import KIND, PLUGIN, detect, precision_m, reports_of, settings_of
from plugins.odour.validation import validate_odour

log = logging.getLogger(__name__)

CORROBORATION_SPAN = 3
"""Reports within this many event windows (and link distances) of a report are looked at to
decide whether it belongs to an event; a chain of links longer than that is not followed."""
CORROBORATION_STATUSES = ("pending", "published")
"""Reports that can corroborate another: not those a moderator unpublished or trashed."""

_engine: Any = None
_reassessing: contextvars.ContextVar[bool] = contextvars.ContextVar("odour_reassessing", default=False)


def engine() -> Any:
    """The running engine, as ``startup`` gave it (None before start-up)."""
    return _engine


@hookimpl
def startup(engine: Any) -> None:
    global _engine
    _engine = engine


@hookimpl
def register_observation_types(register: Callable[..., None]) -> None:
    register(odour_type())


@hookimpl
def validate_observation(draft: Any, project: ProjectContext) -> list[Any] | None:
    if draft.kind != KIND:
        return None
    return validate_odour(draft.fields)


def _step(value: float, step: float) -> float:
    return round(value / step) * step


@hookimpl
def enrich_observation(observation: ObservationView, project: ProjectContext) -> dict[str, Any] | None:
    if observation.kind != KIND:
        return None
    settings = settings_of(project)
    result = enrich_odour(
        observation.observed_at, observation.location.lat, observation.location.lon,
        timezone=project.timezone, pois=settings["points_of_interest"] or (), zones=settings["zones"] or (),
    )
    coarse = precision_m(project)
    if coarse is not None and coarse > 1:
        # The public sees enrichments beside the coarsened place: an exact distance and bearing
        # from a known point would give the exact place back. Keep them as coarse as the place.
        distance_step = 10 ** math.floor(math.log10(coarse))
        bearing_step = 45.0 if coarse >= 1000 else 10.0 if coarse >= 100 else 1.0
        for poi in result["points_of_interest"]:
            poi["distance_m"] = int(_step(poi["distance_m"], distance_step))
            poi["bearing_deg"] = _step(poi["bearing_deg"], bearing_step) % 360
            poi["bearing_from_poi_deg"] = _step(poi["bearing_from_poi_deg"], bearing_step) % 360
        result["rounded_to"] = {"distance_m": distance_step, "bearing_deg": bearing_step}
    return result


def _contributor_times(observation: ObservationView, minutes: float) -> list[Any]:
    if _engine is None or observation.contributor_id is None:
        return []
    since, until = burst_window(observation.observed_at, minutes)
    others = queries.observations(_engine, observation.project, kind=KIND, contributor_id=observation.contributor_id,
                                  since=since, until=until + timedelta(seconds=1), exclude_id=observation.id)
    return [o.observed_at for o in others]


def _corroboration(observation: ObservationView, project: ProjectContext) -> Flag | None:
    """``odour.corroborated`` when the report belongs to an event of the reports around it.

    Reports that this one turns into an event (earlier ones, possible until now) are assessed
    again, so that every report of an event carries the flag, not only the latest.
    """
    if _engine is None:
        return None
    settings = settings_of(project)
    window = timedelta(hours=float(settings["window_h"]))
    reach_m = CORROBORATION_SPAN * float(settings["distance_m"])
    lat, lon = observation.location.lat, observation.location.lon
    d_lat = math.degrees(reach_m / 6_371_008.8)
    d_lon = d_lat / max(math.cos(math.radians(lat)), 1e-6)
    bbox = (max(lon - d_lon, -180.0), max(lat - d_lat, -90.0), min(lon + d_lon, 180.0), min(lat + d_lat, 90.0))
    nearby = queries.observations(
        _engine, project.slug, kind=KIND, statuses=CORROBORATION_STATUSES, exclude_id=observation.id, bbox=bbox,
        since=observation.observed_at - CORROBORATION_SPAN * window,
        until=observation.observed_at + CORROBORATION_SPAN * window + timedelta(seconds=1),
    )
    category = observation.fields.get("category")
    others = reports_of(o for o in nearby if o.fields.get("category") == category)
    mine = reports_of([observation])
    if not mine or not others:
        return None
    detection = detect(project, mine + others)
    event = next((e for e in detection.events if observation.id in e.report_ids), None)
    if event is None:
        return None
    if not _reassessing.get():
        before = detect(project, others)
        possible_before = set(before.possible)
        for report_id in event.report_ids:
            if report_id != observation.id and report_id < observation.id and report_id in possible_before:
                _reassess(report_id)
    start, end = event.start.isoformat(timespec="minutes"), event.end.isoformat(timespec="minutes")
    return Flag(
        "odour.corroborated",
        f"part of an odour event: {event.n_reports} reports of {CATEGORIES[event.category].name.lower()} "
        f"from {event.n_contributors} contributors between {start} and {end}",
        "info",
        event.n_contributors,
        PLUGIN,
    )


def _reassess(observation_id: int) -> None:
    token = _reassessing.set(True)
    try:
        _engine.dispatcher.assess(_engine, observation_id)
    except Exception as exc:  # noqa: BLE001 (never let another report's assessment fail this one)
        log.warning("odour: could not assess observation %s again: %s", observation_id, exc)
    finally:
        _reassessing.reset(token)


@hookimpl
def quality_check(observation: ObservationView, project: ProjectContext) -> list[Flag] | None:
    if observation.kind != KIND:
        return None
    settings = settings_of(project)
    minutes = float(settings["burst_minutes"])
    flags = quality_flags(
        observation.fields, lat=observation.location.lat, lon=observation.location.lon,
        observed_at=observation.observed_at, contributor_times=_contributor_times(observation, minutes),
        zones=settings["zones"] or None, burst_reports=int(settings["burst_reports"]), burst_minutes=minutes,
    )
    coarse = precision_m(project)
    if coarse is not None and coarse > 1:
        # the distance to the nearest zone is public too: as coarse as the place
        step = 10 ** math.floor(math.log10(coarse))
        flags = [Flag(f.code, f.message.rsplit(", ", 1)[0] + f", about {_step(f.value, step):,.0f} m from the nearest",
                      f.severity, int(_step(f.value, step)), f.plugin)
                 if f.code == "odour.outside_zones" else f for f in flags]
    corroborated = _corroboration(observation, project)
    if corroborated is not None:
        flags.append(corroborated)
    return flags


def _odour_value(getter: Callable[[ObservationView], Any]) -> Callable[[ObservationView], Any]:
    def value(observation: ObservationView) -> Any:
        if observation.kind != KIND:
            return None
        try:
            return getter(observation)
        except (KeyError, TypeError, ValueError):
            return None

    return value


def _local_time(observation: ObservationView, project: ProjectContext) -> str:
    enriched = observation.enrichments.get(PLUGIN) or {}
    return enriched.get("local_time") or local_time(observation.observed_at, project.timezone)["local_time"]


def _zone(observation: ObservationView) -> str | None:
    return (observation.enrichments.get(PLUGIN) or {}).get("zone")


@hookimpl
def export_columns(project: ProjectContext) -> list[ExportColumn]:
    return [
        ExportColumn("odour_category", _odour_value(lambda o: CATEGORIES[o.fields["category"]].name),
                     "odour category (name)"),
        ExportColumn("odour_subtype", _odour_value(lambda o: SUBTYPES[o.fields["subtype"]].name),
                     "odour subtype (name)"),
        ExportColumn("odour_intensity", _odour_value(lambda o: o.fields["intensity"]),
                     "intensity, 0 (not perceptible) to 6 (extremely strong)"),
        ExportColumn("odour_hedonic_tone", _odour_value(lambda o: o.fields["hedonic_tone"]),
                     "hedonic tone, -4 (extremely unpleasant) to +4 (extremely pleasant)"),
        ExportColumn("odour_local_time", _odour_value(lambda o: _local_time(o, project)),
                     f"local time of the report ({project.timezone})"),
        ExportColumn("odour_zone", _odour_value(_zone), "the project zone that contains the report"),
    ]


@hookimpl
def register_analyses(register: Callable[..., None]) -> None:
    from plugins.odour.project_analyses import ANALYSES

    for analysis in ANALYSES:
        register(analysis)


@hookimpl
def register_routes(register: Callable[..., None]) -> None:
    from plugins.odour.routes import compat_router, router

    register(router)
    register(compat_router)


@hookimpl
def register_commands(cli: Any) -> None:
    from plugins.odour.commands import odour

    cli.add_command(odour)
