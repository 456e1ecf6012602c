"""What an odour report gains once stored: local time, points of interest, zone.

Configuration, as a project would give it in ``registry.yaml``::

    points_of_interest: [{name: "Plant", lat: 41.38, lon: 2.17}, ...]
    zones: [{name: "North", polygon: [[lon, lat], [lon, lat], ...]}, ...]

Polygons are ``[lon, lat]`` rings as in GeoJSON; a GeoJSON ``Polygon``'s coordinates (a list of
rings, the first the outer boundary, the others holes) are accepted as well. Distances are
great-circle distances on a sphere of radius 6,371,008.8 m (haversine), bearings are initial
bearings in degrees clockwise from north.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from plugins.odour.reports import as_utc

EARTH_RADIUS_M = 6_371_008.8
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Ring = Sequence[Sequence[float]]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 towards point 2, degrees clockwise from north, in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def local_time(observed_at: datetime, tz: str = "UTC") -> dict[str, Any]:
    """The local time of ``observed_at`` in the time zone ``tz`` (naive times are UTC).

    Returns ``local_time`` (ISO 8601 with offset), ``date``, ``hour`` (0-23), ``weekday``
    (0 = Monday) and ``day_of_week`` (its English name), and ``timezone``.
    """
    local = as_utc(observed_at).astimezone(ZoneInfo(tz))
    return {
        "local_time": local.isoformat(),
        "date": local.date().isoformat(),
        "hour": local.hour,
        "weekday": local.weekday(),
        "day_of_week": WEEKDAYS[local.weekday()],
        "timezone": tz,
    }


def _check_point(name: str, lat: Any, lon: Any) -> tuple[float, float]:
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: lat and lon must be numbers, got {lat!r}, {lon!r}") from None
    if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180):
        raise ValueError(f"{name}: lat {lat_f} / lon {lon_f} is outside -90..90 / -180..180")
    return lat_f, lon_f


def points_of_interest(lat: float, lon: float, pois: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Distance and bearing from a report to each point of interest, nearest first.

    Each item: ``name``, ``distance_m`` (rounded to the metre), ``bearing_deg`` (the direction in
    which the point lies, seen from the report) and ``bearing_from_poi_deg`` (the direction of
    the report seen from the point: where a plume from it would have to blow).
    """
    out = []
    for i, poi in enumerate(pois):
        name = str(poi.get("name") or f"point {i + 1}")
        plat, plon = _check_point(f"point of interest {name!r}", poi.get("lat"), poi.get("lon"))
        out.append(
            {
                "name": name,
                "distance_m": round(haversine_m(lat, lon, plat, plon)),
                "bearing_deg": round(bearing_deg(lat, lon, plat, plon), 1),
                "bearing_from_poi_deg": round(bearing_deg(plat, plon, lat, lon), 1),
            }
        )
    out.sort(key=lambda item: item["distance_m"])
    return out


def _rings(polygon: Any, zone_name: str) -> list[list[tuple[float, float]]]:
    """Normalise a ring or a list of rings into a list of rings of (lon, lat)."""
    if not isinstance(polygon, Sequence) or not polygon:
        raise ValueError(f"zone {zone_name!r}: polygon must be a list of [lon, lat] points")
    nested = isinstance(polygon[0], Sequence) and polygon[0] and isinstance(polygon[0][0], Sequence)
    rings = polygon if nested else [polygon]
    out = []
    for ring in rings:
        points = []
        for point in ring:
            if not isinstance(point, Sequence) or len(point) < 2:
                raise ValueError(f"zone {zone_name!r}: each point must be [lon, lat], got {point!r}")
            lat, lon = _check_point(f"zone {zone_name!r}", point[1], point[0])
            points.append((lon, lat))
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()
        if len(points) < 3:
            raise ValueError(f"zone {zone_name!r}: a polygon needs at least 3 distinct points")
        out.append(points)
    return out


def _in_ring(lon: float, lat: float, ring: list[tuple[float, float]]) -> bool:
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_cross:
                inside = not inside
    return inside


def point_in_polygon(lat: float, lon: float, polygon: Any) -> bool:
    """Whether (lat, lon) lies inside ``polygon`` ([lon, lat] ring, or GeoJSON rings with holes).

    Even-odd ray casting in plain lon/lat, which is exact enough for zones of a few kilometres
    that do not cross the antimeridian.
    """
    rings = _rings(polygon, "polygon")
    if not _in_ring(lon, lat, rings[0]):
        return False
    return not any(_in_ring(lon, lat, hole) for hole in rings[1:])


def zones_containing(lat: float, lon: float, zones: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the zones that contain the point, in configuration order."""
    names = []
    for i, zone in enumerate(zones):
        name = str(zone.get("name") or f"zone {i + 1}")
        rings = _rings(zone.get("polygon"), name)
        if _in_ring(lon, lat, rings[0]) and not any(_in_ring(lon, lat, h) for h in rings[1:]):
            names.append(name)
    return names


def zone_of(lat: float, lon: float, zones: Sequence[Mapping[str, Any]]) -> str | None:
    """The first zone (in configuration order) that contains the point, or None."""
    found = zones_containing(lat, lon, zones)
    return found[0] if found else None


def distance_to_zones_m(lat: float, lon: float, zones: Sequence[Mapping[str, Any]]) -> float | None:
    """Distance in metres from the point to the nearest zone boundary (0 inside a zone).

    None when there are no zones. Computed on a local flat projection around the point, which is
    accurate to well under 1% for the tens of kilometres that matter here.
    """
    if not zones:
        return None
    if zones_containing(lat, lon, zones):
        return 0.0
    kx = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat))
    ky = math.radians(1) * EARTH_RADIUS_M
    best = math.inf
    for i, zone in enumerate(zones):
        for ring in _rings(zone.get("polygon"), str(zone.get("name") or f"zone {i + 1}")):
            pts = [((x - lon) * kx, (y - lat) * ky) for x, y in ring]
            for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
                dx, dy = bx - ax, by - ay
                length2 = dx * dx + dy * dy
                t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
                best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def enrich_odour(
    observed_at: datetime,
    lat: float,
    lon: float,
    *,
    timezone: str = "UTC",
    pois: Sequence[Mapping[str, Any]] = (),
    zones: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Everything the ``odour`` enrichment stores for one report, as a JSON-able dict.

    Keys: the :func:`local_time` keys; ``points_of_interest`` (see :func:`points_of_interest`);
    ``zone`` (first containing zone or None) and ``zones`` (all containing zones), present only
    when the project defines zones.
    """
    result: dict[str, Any] = local_time(observed_at, timezone)
    result["points_of_interest"] = points_of_interest(lat, lon, pois)
    if zones:
        inside = zones_containing(lat, lon, zones)
        result["zone"] = inside[0] if inside else None
        result["zones"] = inside
    return result
