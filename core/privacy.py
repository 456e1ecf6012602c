"""What a caller may know of a place: the one rule every output and every filter uses.

A project's ``location_precision`` (decimal places) says how exactly the public may know where
an observation was made. Staff of the project and the observation's own contributor see the
exact place; everyone else sees it snapped to a grid of ``10**-digits`` degrees.

Showing the coarse place is not enough: a filter, a sort or a count computed on the exact
coordinates gives them back by bisection (narrow a bounding box until the observation drops
out). So the same snapping is available as an SQL expression, and every query a caller can
steer filters on the place *as that caller sees it* (:func:`visible_lat` / :func:`visible_lon`).

Snapping is ``floor(v * 10**d + 0.5) / 10**d``, computed in IEEE doubles in Python and in SQL
alike, so the value a filter tests is bit for bit the value the caller is shown.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, Float, case, func, literal

from core.types import Location, ProjectContext

METRES_PER_DEGREE = 111_000.0


def precision_digits(project: ProjectContext) -> int | None:
    """Decimal places of coordinates the public may see (None: the exact place)."""
    return project.location_precision


def precision_m(project: ProjectContext) -> float | None:
    """The grid step of public places, in metres (None: exact places are public)."""
    digits = precision_digits(project)
    return None if digits is None else METRES_PER_DEGREE / 10**digits


def snap(value: float, digits: int | None) -> float:
    """``value`` in degrees snapped to the grid of ``digits`` decimal places."""
    if digits is None:
        return value
    scale = float(10**digits)
    return math.floor(value * scale + 0.5) / scale


def public_location(location: Location, project: ProjectContext) -> Location:
    """The place as someone who may not see it exactly sees it."""
    digits = precision_digits(project)
    if digits is None:
        return location
    accuracy = max(location.accuracy_m or 0.0, METRES_PER_DEGREE / 10**digits)
    return Location(snap(location.lat, digits), snap(location.lon, digits), accuracy)


def public_location_dict(location: dict[str, Any], project: ProjectContext) -> dict[str, Any]:
    """:func:`public_location` for the ``{"lat", "lon", "accuracy_m"}`` dicts of the API."""
    loc = public_location(Location(location["lat"], location["lon"], location.get("accuracy_m")), project)
    return {**location, "lat": loc.lat, "lon": loc.lon, "accuracy_m": loc.accuracy_m}


def snap_sql(column: Any, digits: int | None) -> ColumnElement[float]:
    """:func:`snap` as an SQL expression over a coordinate column (same doubles, same result)."""
    if digits is None:
        return column
    scale = literal(float(10**digits), Float)
    return func.floor(column * scale + literal(0.5, Float)) / scale


def visible_coordinate(column: Any, project: ProjectContext, *, staff: bool,
                       contributor_column: Any = None, contributor_id: int | None = None) -> ColumnElement[float]:
    """A coordinate column as a caller sees it: exact for staff and for the caller's own
    observations (``contributor_column == contributor_id``), snapped for everything else.

    Filter and sort on this, never on the raw column, in any query a caller can steer."""
    digits = precision_digits(project)
    if staff or digits is None:
        return column
    coarse = snap_sql(column, digits)
    if contributor_id is None or contributor_column is None:
        return coarse
    return case((contributor_column == contributor_id, column), else_=coarse)
