"""The public map's markers: a project's published observations in a box, as the public sees them.

Every place here is the *visible* one (``core.place_filter.visible_place`` for an anonymous
caller, whoever asks: the map is the public's): open places on the project's grid, obscured ones
on their obscured cell, private ones never (NULL, so no box, count or cell holds them). The box
and the cells are computed on those visible places, so narrowing the box, or zooming in, cannot
find a place finer than the public one (no bisection).

At low zoom the database groups the observations into grid cells (``GROUP BY`` on the visible
place snapped to the cell; one row per cell with its count and the centroid of its visible
places); when the box holds at most :data:`POINT_LIMIT` observations, they come one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Float, func, literal, select

from core.db.models import Observation
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError
from core.filters import FIELD_PREFIX, ObservationFilter, filter_conditions, parse_filters
from core.place_filter import BBox, parse_bbox, visible_place
from core.projects import project_kinds
from core.types import ProjectContext

WORLD: BBox = (-180.0, -90.0, 180.0, 90.0)
MAX_ZOOM = 22
POINT_LIMIT = 400
"""A box with at most this many observations gets them one by one; more, and it gets cells."""
CELL_PIXELS = 48
"""A cell's side on the screen: a cell at zoom ``z`` is ``360 / 2**z * CELL_PIXELS / 256`` degrees."""
TAXON_FIELDS = ("scientific_name", "scientificName", "species", "taxon")
"""The fields that name a taxon, in the order ``core.dwca`` reads them for scientificName."""
PUBLIC_PRIVACIES = ("open", "obscured")
"""The location privacies whose place the public sees (``core.privacy.visible_coordinate``)."""
MAP_PARAMETERS = ("bbox", "zoom", "kind", "from", "to", "taxon")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class MapQueryError(EngineError):
    """A map request the engine cannot answer: the message says which parameter and why."""

    code = "invalid_map_query"
    http_status = 422


@dataclass(frozen=True)
class MapQuery:
    """What the map asks: the box, the zoom and the filters (kind, days, taxon, fields)."""

    box: BBox
    zoom: int
    filters: ObservationFilter


def cell_degrees(zoom: int) -> float:
    """The side of a cluster cell at ``zoom``, in degrees."""
    return 360.0 / 2**zoom * CELL_PIXELS / 256


def taxon_field(engine: Engine, project: ProjectContext) -> str | None:
    """The field that names a taxon in the project's kinds (the first of :data:`TAXON_FIELDS`)."""
    names = {name for kind in project_kinds(engine, project)
             for name in (kind.schema.get("properties") or {} if isinstance(kind.schema, dict) else {})}
    return next((name for name in TAXON_FIELDS if name in names), None)


def category_fields(engine: Engine, project: ProjectContext) -> dict[str, list[Any]]:
    """Fields of the project's kinds with a fixed list of values (``enum``): the map's category
    filters, name -> values."""
    found: dict[str, list[Any]] = {}
    for kind in sorted(project_kinds(engine, project), key=lambda k: k.name):
        properties = kind.schema.get("properties") if isinstance(kind.schema, dict) else None
        for name, schema in (properties or {}).items():
            values = schema.get("enum") if isinstance(schema, dict) else None
            if isinstance(values, list) and values and name not in found:
                found[name] = [v for v in values if v is not None]
    return found


def _day(name: str, value: str, zone: ZoneInfo, *, end: bool) -> str:
    if not _DAY.match(value):
        raise MapQueryError(f"{name!r} must be a day as YYYY-MM-DD, not {value[:40]!r}")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise MapQueryError(f"{name!r}: {value!r} is not a day of the calendar") from None
    if end:
        if day == date.max:
            raise MapQueryError(f"{name!r}: {value!r} is too late")
        day += timedelta(days=1)  # 'to' includes its day: before the next one starts
    return datetime.combine(day, time(), zone).isoformat()


def parse_map_query(engine: Engine, project: ProjectContext, params: Mapping[str, str]) -> MapQuery:
    """The map's request: ``bbox`` (west,south,east,north; the world when absent), ``zoom`` (0 to
    22), ``kind``, ``from`` and ``to`` (days in the project's time zone, both included), ``taxon``
    (the value of the project's taxon field) and ``field.NAME`` filters (``core.filters``).
    MapQueryError (422) says what is wrong."""
    unknown = sorted(k for k in params if k not in MAP_PARAMETERS and not k.startswith(FIELD_PREFIX))
    if unknown:
        raise MapQueryError(f"unknown parameter {unknown[0]!r}; the map takes {', '.join(MAP_PARAMETERS)} "
                            "and field.NAME")
    zoom_text = params.get("zoom") or "2"
    if not zoom_text.isascii() or not zoom_text.isdigit() or int(zoom_text) > MAX_ZOOM:
        raise MapQueryError(f"'zoom' must be a whole number from 0 to {MAX_ZOOM}, not {zoom_text[:20]!r}")
    try:
        box = parse_bbox(params.get("bbox") or None) or WORLD
    except EngineError as exc:
        raise MapQueryError(exc.message) from None
    zone = ZoneInfo(project.timezone)
    core: dict[str, str] = {k: v for k, v in params.items() if k.startswith(FIELD_PREFIX)}
    if params.get("kind"):
        core["kind"] = params["kind"]
    if params.get("from"):
        core["since"] = _day("from", params["from"], zone, end=False)
    if params.get("to"):
        core["until"] = _day("to", params["to"], zone, end=True)
    if params.get("taxon"):
        field = taxon_field(engine, project)
        if field is None:
            raise MapQueryError(f"project {project.slug!r} has no taxon field ({', '.join(TAXON_FIELDS)})")
        core.setdefault(FIELD_PREFIX + field, params["taxon"])
    try:
        filters = parse_filters(engine, project, core)
    except EngineError as exc:
        raise MapQueryError(exc.message) from None
    return MapQuery(box=box, zoom=int(zoom_text), filters=replace(filters, bbox=box))


def public_conditions(project: ProjectContext, filters: ObservationFilter) -> list[ColumnElement[bool]]:
    """The project's published observations with a public place that ``filters`` keep, places
    tested as the public sees them."""
    if filters.bbox == WORLD:  # every public place is on the globe: no need to test each one
        filters = replace(filters, bbox=None)
    # a place the public sees (visible_place is not NULL) is an open or an obscured one
    return [Observation.project == project.slug, Observation.status == "published",
            Observation.location_privacy.in_(PUBLIC_PRIVACIES),
            *filter_conditions(filters, project, staff=False, contributor_id=None)]


def markers(engine: Engine, project: ProjectContext, query: MapQuery) -> dict[str, Any]:
    """What the map draws in ``query.box``: ``mode`` ``points`` (each observation: id, visible
    lat/lon, kind, whether its place is obscured) when the box holds at most
    :data:`POINT_LIMIT`, else ``cells`` (count and centroid of the visible places per cell);
    ``total`` is the number of observations in the box."""
    lat, lon = visible_place(project, staff=False)
    where = public_conditions(project, query.filters)
    size = literal(cell_degrees(query.zoom), Float)
    places = select(lat.label("lat"), lon.label("lon"), func.floor(lat / size).label("gy"),
                    func.floor(lon / size).label("gx")).where(*where).subquery()
    grouped = (select(func.count().label("n"), func.avg(places.c.lat), func.avg(places.c.lon))
               .group_by(places.c.gy, places.c.gx))
    reader = engine.readers
    with transaction(reader) as session:
        cells = session.execute(grouped).all()
        total = sum(n for n, _, _ in cells)
        if total > POINT_LIMIT:
            return {"mode": "cells", "total": total, "cell_deg": cell_degrees(query.zoom),
                    "cells": [{"lat": round(y, 7), "lon": round(x, 7), "count": n} for n, y, x in cells]}
        rows = session.execute(
            select(Observation.id, lat, lon, Observation.kind, Observation.location_privacy)
            .where(*where).order_by(Observation.id).limit(POINT_LIMIT)).all()
    return {"mode": "points", "total": total,
            "points": [{"id": i, "lat": y, "lon": x, "kind": kind, "obscured": privacy == "obscured"}
                       for i, y, x, kind, privacy in rows]}


def map_counts(engine: Engine, project: ProjectContext) -> dict[str, int]:
    """For the information panel: published observations, and those of them on the map (with a
    public place). Both are what the public API's list already tells."""
    lat, _ = visible_place(project, staff=False)
    published = [Observation.project == project.slug, Observation.status == "published"]
    query = select(func.count(), func.count(lat)).where(*published)
    with transaction(engine.readers) as session:
        total, placed = session.execute(query).one()
    return {"published": int(total), "on_map": int(placed)}
