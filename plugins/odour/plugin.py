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
  ``odour.corroborated`` (info) when the report belongs to an event of published reports;
* ``on_status_change``: a report published, unpublished or trashed has the reports it links
  with assessed again;
* ``export_columns``, ``register_analyses``, ``register_routes``, ``register_commands``;
* ``startup``: keeps the engine, to read other reports through ``core.queries``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import math
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core import for_kinds, hookimpl, queries
from core.privacy import precision_m, public_location
from core.types import ExportColumn, Flag, ObservationView, ProjectContext
from plugins.odour.catalogue import CATEGORIES, SUBTYPES
from plugins.odour.enrichment import enrich_odour, local_time
from plugins.odour.quality import burst_window, quality_flags
from plugins.odour.schema import odour_type
from plugins.odour.service import KIND, PLUGIN, detect, reports_of, settings_of
from plugins.odour.validation import validate_odour

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)

CORROBORATION_SPAN = 3
"""Reports within this many event windows (and link distances) of a report are looked at to
decide whether it belongs to an event; a chain of links longer than that is not followed."""
CORROBORATION_STATUSES = ("published",)
"""Reports that can corroborate another: those the public may see (the flag is public)."""

_reassessing: contextvars.ContextVar[bool] = contextvars.ContextVar("odour_reassessing", default=False)


@hookimpl
def register_observation_types(register: Callable[..., None]) -> None:
    register(odour_type())


@hookimpl
def validate_observation(draft: Any, project: ProjectContext) -> list[Any] | None:
    if draft.kind != KIND:
        return None
    return validate_odour(draft.fields)


@hookimpl
@for_kinds(KIND)
def enrich_observation(observation: ObservationView, project: ProjectContext) -> dict[str, Any] | None:
    settings = settings_of(project)
    # The public sees enrichments beside the public place: distances, bearings and zones are
    # computed from that place (core.privacy: the project's grid, or the obscured cell), so they
    # tell nothing it does not already tell. (Rounding figures computed from the exact place
    # still gave parts of it back.) A private report has no public place: local time only.
    privacy = observation.location_privacy
    place = public_location(observation.location, project, privacy)
    if place is None:
        return {**local_time(observed_at=observation.observed_at, tz=project.timezone), "place_private": True}
    result = enrich_odour(
        observation.observed_at, place.lat, place.lon,
        timezone=project.timezone, pois=settings["points_of_interest"] or (), zones=settings["zones"] or (),
    )
    cell = precision_m(project, privacy)
    if cell is not None:
        result["from_public_place"] = {"precision_m": cell, **({"obscured": True} if privacy == "obscured" else {})}
    return result


def _contributor_times(engine: Engine, observation: ObservationView, minutes: float) -> list[Any]:
    if observation.contributor_id is None:
        return []
    since, until = burst_window(observation.observed_at, minutes)
    # a published report's flags are public: its burst counts the author's published reports only
    # (a pending one's, seen by its author and staff, counts every report of theirs but the trash)
    statuses = CORROBORATION_STATUSES if observation.status == "published" else ("pending", "published", "unpublished")
    others = queries.observations(engine, observation.project, kind=KIND, contributor_id=observation.contributor_id,
                                  since=since, until=until + timedelta(seconds=1), exclude_id=observation.id,
                                  statuses=statuses)
    return [o.observed_at for o in others]


def _nearby(engine: Engine, observation: ObservationView, project: ProjectContext) -> tuple[list[Any], list[Any]]:
    """(the report itself, the published reports of its category around it), as Reports on
    their public places: what the public may see, and nothing else. A private report has no
    public place: ([], []); private reports around are not among the others."""
    settings = settings_of(project)
    window = timedelta(hours=float(settings["window_h"]))
    reach_m = CORROBORATION_SPAN * float(settings["distance_m"])
    place = public_location(observation.location, project, observation.location_privacy)
    if place is None:
        return [], []
    slack = precision_m(project, observation.location_privacy) or 0.0
    nearby = queries.observations(
        engine, project.slug, kind=KIND, statuses=CORROBORATION_STATUSES, exclude_id=observation.id,
        bbox=_reach_bbox(place.lat, place.lon, reach_m + slack), public_places=True,
        since=observation.observed_at - CORROBORATION_SPAN * window,
        until=observation.observed_at + CORROBORATION_SPAN * window + timedelta(seconds=1),
    )
    category = observation.fields.get("category")
    others = reports_of(o for o in nearby if o.fields.get("category") == category
                        and o.location_privacy in ("open", "obscured"))
    mine = reports_of([dataclasses.replace(observation, location=place)])
    return mine, others


def _corroboration(engine: Engine, observation: ObservationView, project: ProjectContext) -> Flag | None:
    """``odour.corroborated`` when the report belongs to an event of the published reports
    around it (the flag is public: it depends only on what the public may see).

    When this report is published, the reports it turns into an event (possible until now)
    are assessed again, so that every report of an event carries the flag, not only the latest.
    A pending report changes nothing in anyone else's flags (its publication does:
    :func:`on_status_change`).
    """
    # The flag is public: it is decided on the places as the public sees them (core.privacy), as
    # the public's events are, or a contributor could move reports of their own around another
    # person's and read from the flag when the exact distance crosses distance_m; and on
    # published reports only, or another person's published report would tell that a pending
    # (or unpublished) one lies near it.
    mine, others = _nearby(engine, observation, project)
    if not mine or not others:
        return None
    detection = detect(project, mine + others)
    event = next((e for e in detection.events if observation.id in e.report_ids), None)
    if event is None:
        return None
    if not _reassessing.get() and observation.status == "published":
        # ids only ever decrease along a chain of these (a re-assessment in a worker runs this
        # again without the context variable), so it ends
        possible_before = set(detect(project, others).possible)
        for report_id in event.report_ids:
            if report_id != observation.id and report_id < observation.id and report_id in possible_before:
                _reassess(engine, report_id)
    start, end = event.start.isoformat(timespec="minutes"), event.end.isoformat(timespec="minutes")
    return Flag(
        "odour.corroborated",
        f"part of an odour event: {event.n_reports} reports of {CATEGORIES[event.category].name.lower()} "
        f"from {event.n_contributors} contributors between {start} and {end}",
        "info",
        event.n_contributors,
        PLUGIN,
    )


@hookimpl
@for_kinds(KIND)
def on_status_change(observation: ObservationView, old: str, new: str, project: ProjectContext, engine: Engine) -> None:
    """A report published, unpublished or trashed: the published reports it links with (into
    an event, or out of one) are assessed again, so that their public ``odour.corroborated``
    follows what the public may see. Nothing happens for changes that stay out of public view
    (pending to trashed, trashed back to pending)."""
    if "published" not in (old, new):
        return
    if new == "published":
        # the report itself: its flags were decided when it was pending (maybe long ago), on
        # what its author and staff see; now they are public, decided on what the public sees
        _reassess(engine, observation.id)
    mine, others = _nearby(engine, observation, project)
    if not mine or not others:
        return
    with_it = detect(project, mine + others)
    event = next((e for e in with_it.events if observation.id in e.report_ids), None)
    linked = set(event.report_ids) if event is not None else set()
    for report_id in sorted(linked - {observation.id}):  # whatever their ids
        _reassess(engine, report_id)


def _reach_bbox(lat: float, lon: float, reach_m: float) -> tuple[float, float, float, float]:
    """(west, south, east, north) around a place; across the antimeridian when west > east."""
    d_lat = math.degrees(reach_m / 6_371_008.8)
    south, north = max(lat - d_lat, -90.0), min(lat + d_lat, 90.0)
    cos_lat = min(math.cos(math.radians(south)), math.cos(math.radians(north)))
    d_lon = d_lat / cos_lat if cos_lat > 1e-9 else 360.0
    if d_lon >= 180.0:
        return (-180.0, south, 180.0, north)
    wrap = lambda v: (v + 180.0) % 360.0 - 180.0  # noqa: E731
    return (wrap(lon - d_lon), south, wrap(lon + d_lon), north)


def _reassess(engine: Engine, observation_id: int) -> None:
    token = _reassessing.set(True)
    try:
        engine.dispatcher.assess(engine, observation_id)
    except Exception as exc:  # noqa: BLE001 (never let another report's assessment fail this one)
        log.warning("odour: could not assess observation %s again: %s", observation_id, exc)
    finally:
        _reassessing.reset(token)


@hookimpl
@for_kinds(KIND)
def quality_check(observation: ObservationView, project: ProjectContext, engine: Engine) -> list[Flag] | None:
    settings = settings_of(project)
    minutes = float(settings["burst_minutes"])
    # flags are public: see enrich_observation (a private report's place has no public flag)
    place = public_location(observation.location, project, observation.location_privacy)
    flags = quality_flags(
        observation.fields, lat=place.lat if place else None, lon=place.lon if place else None,
        observed_at=observation.observed_at, contributor_times=_contributor_times(engine, observation, minutes),
        zones=settings["zones"] or None, burst_reports=int(settings["burst_reports"]), burst_minutes=minutes,
    )
    corroborated = _corroboration(engine, observation, project)
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
