"""Read-only queries for plugins: other observations of a project, other enrichment results.

Hooks are given the running engine (their ``engine`` argument) and call these; they never
touch the database models directly, so the storage can change under them. Observations are
read through the engine's one read path (``core.read_model``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import select

from core.db.models import Enrichment, Observation
from core.db.session import transaction
from core.filters import ObservationFilter, filter_conditions
from core.place_filter import BBox, bbox_where, visible_place
from core.privacy import public_location
from core.types import ObservationView

if TYPE_CHECKING:
    from core.engine import Engine
from core.read_model import observation_rows, read_views


def observations(
    engine: Engine,
    project: str,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    statuses: tuple[str, ...] | None = None,
    contributor_id: int | None = None,
    bbox: BBox | None = None,
    exclude_id: int | None = None,
    limit: int | None = None,
    public_places: bool = False,
    filters: ObservationFilter | None = None,
) -> list[ObservationView]:
    """Observations of ``project`` matching every filter given, oldest first.

    ``filters`` is what ``core.filters.parse_filters`` makes of a caller's filters (the same the
    list and the exports take); the keywords are shorthands, and both may be given. ``bbox`` is
    (west, south, east, north) in degrees, across the antimeridian when west > east; ``until`` is
    exclusive. Places are exact (plugins are trusted); with ``public_places`` private observations
    are left out, and the place filters (``bbox``, the polygon) and the places returned are those
    anyone may see (``core.privacy``): use it for anything shown to callers who may not see exact
    places, or bisecting ``bbox`` would give the exact places back.
    """
    context = engine.registry.project(project) if public_places or filters is not None else None
    query = observation_rows().where(Observation.project == project)
    if kind is not None:
        query = query.where(Observation.kind == kind)
    if since is not None:
        query = query.where(Observation.observed_at >= since)
    if until is not None:
        query = query.where(Observation.observed_at < until)
    if statuses is not None:
        query = query.where(Observation.status.in_(statuses))
    if contributor_id is not None:
        query = query.where(Observation.contributor_id == contributor_id)
    if exclude_id is not None:
        query = query.where(Observation.id != exclude_id)
    if public_places:
        query = query.where(Observation.location_privacy != "private")
    if bbox is not None:
        lat, lon = (visible_place(context, staff=False) if context is not None and public_places
                    else (Observation.lat, Observation.lon))
        query = query.where(bbox_where(bbox, lat, lon))
    if filters is not None:
        assert context is not None
        query = query.where(*filter_conditions(filters, context, staff=not public_places, contributor_id=None))
    query = query.order_by(Observation.observed_at, Observation.id)
    if limit is not None:
        query = query.limit(limit)
    with transaction(engine.readers) as session:
        views = read_views(session, query, engine.media)
    if context is None or not public_places:
        return views
    public = []
    for view in views:
        location = public_location(view.location, context, view.location_privacy)
        if location is not None:  # private ones are left out above; a privacy this engine does not know too
            public.append(dataclasses.replace(view, location=location))
    return public


def enrichment_results(
    engine: Engine, project: str, plugin: str, *, exclude_observation: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(observation id, result) of every finished ``plugin`` enrichment in ``project``."""
    query = (
        select(Enrichment.observation_id, Enrichment.result)
        .join(Observation, Observation.id == Enrichment.observation_id)
        .where(Observation.project == project, Enrichment.plugin == plugin, Enrichment.status == "done")
    )
    if exclude_observation is not None:
        query = query.where(Enrichment.observation_id != exclude_observation)
    with transaction(engine.readers) as session:
        rows = session.execute(query).all()
    for obs_id, result in rows:
        yield obs_id, result or {}
