"""What a caller may know of a place: the one rule every output and every filter uses.

Each observation carries a location privacy, chosen by its contributor (or the project's
``default_location_privacy``):

* ``open``: the public sees the place on the project's grid of ``location_precision`` decimal
  places (the exact place when the project sets none);
* ``obscured``: the public sees only the cell of ``obscured_precision`` decimal places that holds
  it (never finer than the open grid), and every output says the place was generalised;
* ``private``: the public sees no place at all.

Staff of the project and the observation's own contributor see the exact place, whatever its
privacy.

Showing the coarse place is not enough: a filter, a sort or a count computed on the exact
coordinates gives them back by bisection (narrow a bounding box until the observation drops
out). So the same rule is available as an SQL expression (:func:`visible_coordinate`), and every
query a caller can steer filters on the place *as that caller sees it*; a private place is NULL
there, which no place filter matches.

Snapping is ``floor(v * 10**d + 0.5) / 10**d``, computed in IEEE doubles in Python and in SQL
alike, so the value a filter tests is bit for bit the value the caller is shown.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, Float, case, func, literal, null

from core.db.models import Observation
from core.types import Location, ProjectContext

METRES_PER_DEGREE = 111_000.0
PRIVACIES: tuple[str, ...] = ("open", "obscured", "private")


def precision_digits(project: ProjectContext) -> int | None:
    """Decimal places of open coordinates the public may see (None: the exact place)."""
    return project.location_precision


def obscured_digits(project: ProjectContext) -> int:
    """Decimal places of an obscured observation's public cell: ``obscured_precision``, and never
    finer than the open grid."""
    if project.location_precision is None:
        return project.obscured_precision
    return min(project.obscured_precision, project.location_precision)


def public_digits(project: ProjectContext, privacy: str) -> int | None:
    """Decimal places the public sees of an ``open`` or ``obscured`` place (None: exact).
    A private place has none: callers leave it out before they ask (ValueError)."""
    if privacy == "open":
        return precision_digits(project)
    if privacy == "obscured":
        return obscured_digits(project)
    raise ValueError(f"a {privacy!r} place has no public form")


def cell_m(digits: int | None) -> float | None:
    """The size of a grid cell of ``digits`` decimal places, in metres (None: exact)."""
    return None if digits is None else METRES_PER_DEGREE / 10**digits


def precision_m(project: ProjectContext, privacy: str = "open") -> float | None:
    """The public cell of a place of this privacy, in metres (None: the exact place is public;
    also None for private, which has no public place)."""
    if privacy not in ("open", "obscured"):
        return None
    return cell_m(public_digits(project, privacy))


def snap(value: float, digits: int | None) -> float:
    """``value`` in degrees snapped to the grid of ``digits`` decimal places."""
    if digits is None:
        return value
    scale = float(10**digits)
    return math.floor(value * scale + 0.5) / scale


def public_location(location: Location, project: ProjectContext, privacy: str = "open") -> Location | None:
    """The place as someone who may not see it exactly sees it: on the project's grid (open), on
    the obscured cell with an accuracy at least that cell (obscured), or None (private, and any
    privacy this engine does not know: it fails closed)."""
    if privacy not in ("open", "obscured"):
        return None
    digits = public_digits(project, privacy)
    if digits is None:
        return location
    accuracy = max(location.accuracy_m or 0.0, METRES_PER_DEGREE / 10**digits)
    return Location(snap(location.lat, digits), snap(location.lon, digits), accuracy)


def public_location_dict(location: dict[str, Any], project: ProjectContext,
                         privacy: str = "open") -> dict[str, Any] | None:
    """:func:`public_location` for the ``{"lat", "lon", "accuracy_m"}`` dicts of the API, with
    ``"obscured"``: true when the place shown is the obscured cell (the contributor asked for it
    to be generalised), false on the open grid. None for a private place."""
    loc = public_location(Location(location["lat"], location["lon"], location.get("accuracy_m")), project, privacy)
    if loc is None:
        return None
    return {**location, "lat": loc.lat, "lon": loc.lon, "accuracy_m": loc.accuracy_m,
            "obscured": privacy == "obscured"}


def snap_sql(column: Any, digits: int | None) -> ColumnElement[float]:
    """:func:`snap` as an SQL expression over a coordinate column (same doubles, same result)."""
    if digits is None:
        return column
    scale = literal(float(10**digits), Float)
    return func.floor(column * scale + literal(0.5, Float)) / scale


def visible_coordinate(column: Any, project: ProjectContext, *, staff: bool,
                       contributor_column: Any = None, contributor_id: int | None = None,
                       privacy_column: Any = Observation.location_privacy) -> ColumnElement[float]:
    """A coordinate column as a caller sees it: exact for staff and for the caller's own
    observations (``contributor_column == contributor_id``); for everything else, per row's
    ``privacy_column``: open on the project's grid, obscured on the obscured cell, private NULL
    (so that no place filter matches it).

    Filter and sort on this, never on the raw column, in any query a caller can steer."""
    if staff:
        return column
    whens: list[tuple[Any, Any]] = []
    if contributor_id is not None and contributor_column is not None:
        whens.append((contributor_column == contributor_id, column))
    whens.append((privacy_column == "open", snap_sql(column, precision_digits(project))))
    whens.append((privacy_column == "obscured", snap_sql(column, obscured_digits(project))))
    return case(*whens, else_=null())
