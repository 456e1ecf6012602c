"""The bounding-box filter on observations, written once for the API and for plugins' queries.

A filter a caller can steer must test the place *as that caller sees it* (``core.privacy``),
or narrowing a box by bisection gives back the exact place. :func:`visible_place` gives the
coordinate expressions for a caller; :func:`bbox_where` tests a box on any pair of them,
across the antimeridian when ``west > east``.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from core.db.models import Observation
from core.errors import EngineError
from core.privacy import visible_coordinate
from core.types import ProjectContext

BBox = tuple[float, float, float, float]
"""(west, south, east, north) in degrees; ``west > east`` crosses the antimeridian."""


class InvalidBBox(EngineError):
    code = "invalid_bbox"
    http_status = 422


def check_bbox(box: BBox) -> BBox:
    """``box`` if it is a box on the globe (InvalidBBox otherwise)."""
    west, south, east, north = box
    if not all(math.isfinite(v) for v in box) or not (
        -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90
    ):
        raise InvalidBBox("bbox must be 'west,south,east,north' with -180..180 and -90..90, south <= north")
    return box


def parse_bbox(text: str | None) -> BBox | None:
    """The box of a ``west,south,east,north`` query parameter (None when not given)."""
    if text is None:
        return None
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidBBox("bbox must be 'west,south,east,north' in degrees") from None
    return check_bbox((west, south, east, north))


def visible_place(project: ProjectContext, *, staff: bool,
                  contributor_id: int | None = None) -> tuple[ColumnElement[float], ColumnElement[float]]:
    """(lat, lon) of ``Observation`` as a caller sees them: exact for staff and on the caller's own
    observations (``contributor_id``), on the project's public grid otherwise."""
    return tuple(  # type: ignore[return-value]
        visible_coordinate(column, project, staff=staff, contributor_column=Observation.contributor_id,
                           contributor_id=contributor_id)
        for column in (Observation.lat, Observation.lon)
    )


def bbox_where(box: BBox, lat: Any = Observation.lat, lon: Any = Observation.lon) -> ColumnElement[bool]:
    """The condition that (``lat``, ``lon``) lies in ``box``, edges included."""
    west, south, east, north = box
    across = lon.between(west, east) if west <= east else or_(lon >= west, lon <= east)
    return and_(lat.between(south, north), across)
