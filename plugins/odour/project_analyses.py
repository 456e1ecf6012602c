"""The odour analyses the plugin registers (``register_analyses``), on a project's reports.

Each ``run(observations, project, public=False)`` takes the observations the caller may see
(odour reports; other kinds are skipped) and returns ``rows`` (a data frame's rows), ``png``
(a chart) and, for the heat map, ``geojson``. Names are prefixed ``odour_`` in the engine's
registry of analyses (names are shared by every plugin); the odour routes and the CLI take
them without the prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from core.privacy import precision_m
from core.types import Analysis, ProjectContext
from plugins.odour import analyses, plots
from plugins.odour.catalogue import CATEGORIES
from plugins.odour.enrichment import WEEKDAYS
from plugins.odour.events import report_annoyance
from plugins.odour.reports import Report
from plugins.odour.service import KIND, reports_of, settings_of


def _reports(observations: Iterable[Any]) -> list[Report]:
    return reports_of(o for o in observations if getattr(o, "kind", KIND) == KIND)


def hour_weekday(observations: Iterable[Any], project: ProjectContext, public: bool = False) -> dict[str, Any]:
    """Reports per category, day of week and hour, in the project's local time."""
    reports = _reports(observations)
    result = analyses.hour_weekday_counts(reports, timezone=project.timezone)
    matrix = np.zeros((7, 24), dtype=np.int64)
    for row in result["rows"]:
        matrix[row["weekday"], row["hour"]] += row["count"]
    result["png"] = plots.grid_chart(matrix, [d[:3] for d in WEEKDAYS],
                                     f"{project.name}: odour reports by day and hour ({project.timezone})")
    result["n_reports"] = len(reports)
    return result


def categories(observations: Iterable[Any], project: ProjectContext, public: bool = False) -> dict[str, Any]:
    """Reports per category: count, share, contributors, mean intensity, hedonic tone, annoyance."""
    reports = _reports(observations)
    total = len(reports)
    rows = []
    for category in CATEGORIES.values():
        mine = [r for r in reports if r.category == category.id]
        n = len(mine)
        rows.append({
            "category": category.id,
            "category_name": category.name,
            "colour": category.colour,
            "n_reports": n,
            "share": n / total if total else 0.0,
            "n_contributors": len({r.contributor for r in mine}),
            "mean_intensity": sum(r.intensity for r in mine) / n if n else None,
            "mean_hedonic_tone": sum(r.hedonic_tone for r in mine) / n if n else None,
            "mean_annoyance": sum(report_annoyance(r.intensity, r.hedonic_tone) for r in mine) / n if n else None,
        })
    png = plots.bar_chart([r["category_name"] for r in rows], [r["n_reports"] for r in rows],
                          [r["colour"] for r in rows], f"{project.name}: odour reports per category")
    return {"rows": rows, "png": png, "n_reports": total}


def intensity(observations: Iterable[Any], project: ProjectContext, public: bool = False) -> dict[str, Any]:
    """Mean intensity and hedonic tone per local day, for all categories and for each."""
    reports = _reports(observations)
    result = analyses.daily_intensity(reports, timezone=project.timezone)
    overall = [r for r in result["rows"] if r["category"] is None]
    result["png"] = plots.line_chart([r["date"] for r in overall], [r["mean_intensity"] for r in overall],
                                     f"{project.name}: mean odour intensity per day", y_min=0, y_max=6,
                                     y_label="intensity (0 not perceptible .. 6 extremely strong)")
    result["n_reports"] = len(reports)
    return result


def heatmap(observations: Iterable[Any], project: ProjectContext, public: bool = False) -> dict[str, Any]:
    """Reports counted on a grid over the project's zones (or the reports' extent). For the
    public the cells are never finer than the project's ``location_precision``, and the
    reports come with their public places (``service.observations``), so that neither the grid's
    edges nor its origin (the extent, which reports can move) cut a public cell in parts."""
    settings = settings_of(project)
    reports = _reports(observations)
    cell_m = float(settings["heatmap_cell_m"])
    coarse = precision_m(project)
    if public and coarse is not None:
        cell_m = max(cell_m, coarse)
    bbox = analyses.bbox_of_zones(settings["zones"] or [])
    if not reports and bbox is None:
        empty = {"type": "FeatureCollection", "features": []}
        return {"rows": [], "geojson": empty, "png": None, "cell_m": cell_m, "bbox": None, "shape": (0, 0),
                "max_count": 0, "outside": 0, "n_reports": 0}
    result = analyses.heatmap(reports, bbox=bbox, cell_m=cell_m)
    result["n_reports"] = len(reports)
    return result


ANALYSES: tuple[Analysis, ...] = (
    Analysis("odour_hour_weekday", "Odour reports by day of week and hour (local time)", hour_weekday),
    Analysis("odour_categories", "Odour reports per category", categories),
    Analysis("odour_intensity", "Mean odour intensity over time (per local day)", intensity),
    Analysis("odour_heatmap", "Heat map of odour reports", heatmap),
)
