"""Analyses of odour reports: when they happen, how strong over time, where (heat map).

Each function takes reports (``Report`` values, or anything ``to_report`` accepts) and returns a
dict with ``rows`` (a list of dicts, one per row of a data frame) and, where it applies, ``png``
(bytes) and ``geojson`` (a FeatureCollection), as ``core.types.Analysis`` expects.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from plugins.odour.catalogue import CATEGORIES
from plugins.odour.enrichment import EARTH_RADIUS_M, WEEKDAYS
from plugins.odour.reports import Report, as_utc, to_report

BBox = tuple[float, float, float, float]
"""(min_lon, min_lat, max_lon, max_lat), as in GeoJSON."""


def _reports(reports: Iterable[Any]) -> list[Report]:
    return [to_report(r) for r in reports]


def _category_name(category: int | None) -> str:
    if category is None:
        return "All categories"
    return CATEGORIES[category].name if category in CATEGORIES else f"Category {category}"


def hour_weekday_counts(reports: Iterable[Any], *, timezone: str = "UTC") -> dict[str, Any]:
    """Reports per category, day of week and hour of day, in local time.

    One row per (category present, weekday, hour), zeros included (7 x 24 rows per category):
    ``category``, ``category_name``, ``weekday`` (0 = Monday), ``day_of_week``, ``hour``, ``count``.
    """
    tz = ZoneInfo(timezone)
    counts: Counter[tuple[int, int, int]] = Counter()
    for r in _reports(reports):
        local = as_utc(r.observed_at).astimezone(tz)
        counts[(r.category, local.weekday(), local.hour)] += 1
    rows = [
        {
            "category": category,
            "category_name": _category_name(category),
            "weekday": weekday,
            "day_of_week": WEEKDAYS[weekday],
            "hour": hour,
            "count": counts[(category, weekday, hour)],
        }
        for category in sorted({key[0] for key in counts})
        for weekday in range(7)
        for hour in range(24)
    ]
    return {"rows": rows, "timezone": timezone}


def daily_intensity(reports: Iterable[Any], *, timezone: str = "UTC") -> dict[str, Any]:
    """Mean intensity per local day: one row per day for all categories (``category`` None),
    then one per day and category. Columns: ``date``, ``category``, ``category_name``,
    ``n_reports``, ``mean_intensity``, ``mean_hedonic_tone``."""
    tz = ZoneInfo(timezone)
    sums: dict[tuple[str, int | None], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for r in _reports(reports):
        day = as_utc(r.observed_at).astimezone(tz).date().isoformat()
        for key in ((day, None), (day, r.category)):
            acc = sums[key]
            acc[0] += 1
            acc[1] += r.intensity
            acc[2] += r.hedonic_tone
    rows = [
        {
            "date": day,
            "category": category,
            "category_name": _category_name(category),
            "n_reports": int(n),
            "mean_intensity": total_i / n,
            "mean_hedonic_tone": total_h / n,
        }
        for (day, category), (n, total_i, total_h) in sorted(
            sums.items(), key=lambda item: (item[0][0], -1 if item[0][1] is None else item[0][1])
        )
    ]
    return {"rows": rows, "timezone": timezone}


def bbox_of_zones(zones: Sequence[Mapping[str, Any]]) -> BBox | None:
    """The bounding box of a project's zones (``[lon, lat]`` polygons), or None without zones."""
    points: list[Sequence[float]] = []
    for zone in zones:
        polygon = zone.get("polygon") or []
        nested = polygon and isinstance(polygon[0][0], Sequence)
        for ring in polygon if nested else [polygon]:
            points.extend(ring)
    if not points:
        return None
    lons = [float(p[0]) for p in points]
    lats = [float(p[1]) for p in points]
    return (min(lons), min(lats), max(lons), max(lats))


def heatmap(
    reports: Iterable[Any],
    *,
    bbox: BBox | None = None,
    cell_m: float = 500.0,
    category: int | None = None,
    max_cells: int = 250_000,
    min_png_px: int = 256,
) -> dict[str, Any]:
    """Reports counted on a grid of about ``cell_m`` x ``cell_m`` metres over ``bbox``.

    ``bbox`` is the project's area (min_lon, min_lat, max_lon, max_lat); by default the extent of
    the reports. Reports outside it are left out and counted in ``outside``. ``category``
    restricts to one category. Returns ``rows`` (one per non-empty cell: ``row``, ``col``,
    ``count`` and the cell's bounds), ``geojson`` (those cells as Polygons with ``count``),
    ``png`` (the grid coloured by count, north up, empty cells transparent), and the grid's
    ``bbox``, ``cell_m``, ``shape`` (rows, cols), ``max_count``, ``outside``.
    """
    reps = [r for r in _reports(reports) if category is None or r.category == category]
    if cell_m <= 0:
        raise ValueError(f"cell_m must be positive, got {cell_m}")
    lat = np.asarray([r.lat for r in reps], dtype=np.float64)
    lon = np.asarray([r.lon for r in reps], dtype=np.float64)
    if bbox is None:
        if not reps:
            raise ValueError("no reports and no bbox: nothing to map")
        bbox = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    min_lon, min_lat, max_lon, max_lat = map(float, bbox)
    if min_lon > max_lon or min_lat > max_lat:
        raise ValueError(f"bbox {bbox} must be (min_lon, min_lat, max_lon, max_lat)")
    mid_lat = math.radians((min_lat + max_lat) / 2)
    d_lat = math.degrees(cell_m / EARTH_RADIUS_M)
    d_lon = d_lat / max(math.cos(mid_lat), 1e-6)
    n_rows = max(1, math.ceil((max_lat - min_lat) / d_lat))
    n_cols = max(1, math.ceil((max_lon - min_lon) / d_lon))
    if (max_lat - min_lat) / d_lat == n_rows:
        n_rows += 1  # keep points on the upper edge inside
    if (max_lon - min_lon) / d_lon == n_cols:
        n_cols += 1
    if n_rows * n_cols > max_cells:
        raise ValueError(
            f"a {cell_m:g} m grid over this area has {n_rows * n_cols:,} cells (at most {max_cells:,}): "
            "use larger cells"
        )
    inside = (lat >= min_lat) & (lat <= max_lat) & (lon >= min_lon) & (lon <= max_lon)
    rows_i = np.minimum(((lat[inside] - min_lat) / d_lat).astype(np.int64), n_rows - 1)
    cols_i = np.minimum(((lon[inside] - min_lon) / d_lon).astype(np.int64), n_cols - 1)
    grid = np.bincount(rows_i * n_cols + cols_i, minlength=n_rows * n_cols).reshape(n_rows, n_cols)

    rows, features = [], []
    for r, c in zip(*np.nonzero(grid)):
        west, south = min_lon + c * d_lon, min_lat + r * d_lat
        east, north = west + d_lon, south + d_lat
        count = int(grid[r, c])
        rows.append(
            {"row": int(r), "col": int(c), "count": count, "west": west, "south": south, "east": east, "north": north}
        )
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
                },
                "properties": {"row": int(r), "col": int(c), "count": count},
            }
        )
    max_count = int(grid.max()) if grid.size else 0
    return {
        "rows": rows,
        "geojson": {"type": "FeatureCollection", "features": features},
        "png": _heatmap_png(grid, min_png_px),
        "bbox": (min_lon, min_lat, max_lon, max_lat),
        "cell_m": cell_m,
        "shape": (n_rows, n_cols),
        "max_count": max_count,
        "outside": int((~inside).sum()),
    }


def _heatmap_png(grid: np.ndarray, min_px: int) -> bytes:
    """The grid as a PNG: inferno colours by count (square root scale), empty cells transparent,
    north at the top, each cell enlarged to a block of pixels."""
    north_up = grid[::-1]
    top = north_up.max()
    level = np.zeros(north_up.shape, dtype=np.uint8)
    if top > 0:
        level = np.round(55 + 200 * np.sqrt(north_up / top)).astype(np.uint8)
    bgr = cv2.applyColorMap(level, cv2.COLORMAP_INFERNO)
    alpha = np.where(north_up > 0, 255, 0).astype(np.uint8)
    image = np.dstack([bgr, alpha])
    scale = max(1, math.ceil(min_px / max(grid.shape)))
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode the heat map as PNG")
    return encoded.tobytes()
