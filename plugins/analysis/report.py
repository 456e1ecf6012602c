"""A project's one-page report for its funders, as self-contained HTML (charts inlined as PNG data
URIs, no external address) or PDF through WeasyPrint where it is installed.

It shows the key figures, observations and contributors over time, the top taxa (or
categories), a map, data quality (grades, flags, media, identified share), participation figures
(:func:`plugins.analysis.participation.project_metrics`: Gini, top 10% share, one-day share) and
the licences. Contributors are counted, never named.

    from plugins.analysis import Observatory, report
    frame = Observatory.local().observations("demo")
    html = report.render_report(frame, name="Demo", licence="CC-BY-4.0", timezone="Europe/Madrid")
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone as utc_zone
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from plugins.analysis import maps, plots
from plugins.analysis.plots import PlotError

TEMPLATES = Path(__file__).parent / "templates"
TOP = 10


class ReportError(ValueError):
    """The report cannot be made (no observations, or a PDF without WeasyPrint)."""


@dataclass
class Section:
    """A chart of the report: its title, PNG data URI (None when the data gave none) and why not."""

    title: str
    image: str | None = None
    note: str = ""


@dataclass
class Report:
    """What the template shows."""

    name: str
    description: str
    licence: str
    timezone: str
    generated_at: str
    scope: str
    figures: list[tuple[str, str]]
    over_time: Section
    contributors_over_time: Section
    top: Section
    top_rows: list[tuple[str, int, str]]
    top_column: str
    map: Section
    grades: list[tuple[str, int, str]]
    flags: list[tuple[str, int, str]]
    quality: list[tuple[str, str]]
    map_public: bool = False
    participation: list[tuple[str, str, str]] = field(default_factory=list)
    licences: list[tuple[str, int, str]] = field(default_factory=list)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _chart(title: str, draw: Callable[[], Any]) -> Section:
    """A section whose chart is drawn now; a section with the reason when the data cannot give it."""
    try:
        figure = draw()
    except PlotError as exc:
        return Section(title, None, str(exc))
    return Section(title, plots.data_uri(figure, dpi=80))


def _counts(values: pd.Series, total: int) -> list[tuple[str, int, str]]:
    counts = values.value_counts()
    return [(str(k), int(v), _share(int(v), total)) for k, v in counts.items()]


def flag_counts(frame: pd.DataFrame) -> pd.Series:
    """Observations per quality flag code (the ``flags`` column holds codes separated by commas)."""
    if "flags" not in frame.columns:
        return pd.Series(dtype="int64")
    codes = frame["flags"].fillna("").astype(str).str.split(",").explode().str.strip()
    return codes[codes != ""].value_counts()


def participation_rows(frame: pd.DataFrame, timezone: str) -> list[tuple[str, str, str]]:
    """(figure, value, meaning) from the participation module where it is installed and the frame
    holds contributor ids; [] otherwise (the section is left out)."""
    if importlib.util.find_spec("plugins.analysis.participation") is None:
        return []
    if "contributor_id" not in frame.columns or frame["contributor_id"].isna().all():
        return []
    from plugins.analysis.participation import project_metrics

    known = frame.loc[frame["contributor_id"].notna()]
    metrics = project_metrics(known, timezone)

    def percent(key: str) -> str:
        value = metrics.get(key)
        return "–" if value is None or pd.isna(value) else f"{value:.0%}"

    def number(key: str, digits: int = 2) -> str:
        value = metrics.get(key)
        return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"

    return [
        ("Contributors", f"{metrics['n_contributors']:,}", "people with at least one observation here"),
        ("Gini coefficient", number("gini"), "inequality of observations per contributor (0 equal, 1 one gives all)"),
        ("Top 10% share", percent("top10_share"), "share of the observations by the most active tenth"),
        ("One-day contributors", percent("one_day_share"), "share who never came back after their first day"),
        ("Median active days", number("median_active_days", 0), "days with an observation, per contributor"),
    ]


def build_report(frame: pd.DataFrame, *, name: str, licence: str, timezone: str = "UTC", description: str = "",
                 map_frame: pd.DataFrame | None = None, map_public: bool = False, scope: str = "",
                 top: int = TOP) -> Report:
    """The report's content from an observations frame (``map_frame``: the frame whose places the
    map shows, e.g. the public one, then say so with ``map_public``; the same frame when None)."""
    if frame.empty:
        raise ReportError(f"no observations in {name} to report on")
    total = len(frame)
    times = plots.local_times(frame, timezone)
    has_ids = "contributor_id" in frame.columns and frame["contributor_id"].notna().any()
    figures = [("Observations", f"{total:,}"),
               ("Period", f"{times.min():%d %b %Y} – {times.max():%d %b %Y}")]
    if has_ids:
        figures.insert(1, ("Contributors", f"{frame['contributor_id'].nunique():,}"))
    try:
        column = plots.label_column(frame)
        labels = plots.top_labels(frame, by=column, n=top)
        kinds = "Taxa" if column == "taxon_name" else "Categories"
        figures.append((kinds, f"{frame[column].nunique():,}"))
        top_rows = [(str(k), int(v), _share(int(v), total)) for k, v in labels.items()]
    except PlotError:
        column, top_rows = "", []
    top_title = "Top taxa" if column == "taxon_name" else "Top categories" if column == "category" else \
        f"Top {column}" if column else "Top taxa"
    mapped = frame if map_frame is None else map_frame

    def draw_map() -> Any:
        located = maps.places(mapped)
        return maps.plot_heatmap(mapped) if len(located) > 500 else maps.plot_points(mapped)

    quality = [("With media", _share(int((frame["n_media"].fillna(0) > 0).sum()), total))
               if "n_media" in frame.columns else None,
               ("With a taxon", _share(int(frame["taxon_id"].notna().sum()), total))
               if "taxon_id" in frame.columns else None,
               ("With a place", _share(int((frame["lat"].notna() & frame["lon"].notna()).sum()), total))
               if {"lat", "lon"} <= set(frame.columns) else None]
    return Report(
        name=name, description=description, licence=licence, timezone=timezone, scope=scope,
        generated_at=datetime.now(utc_zone.utc).strftime("%d %b %Y %H:%M UTC"),
        figures=figures,
        over_time=_chart("Observations over time",
                         lambda: plots.plot_over_time(frame, timezone=timezone, title=" ")),
        contributors_over_time=_chart("Contributors over time",
                                      lambda: plots.plot_over_time(frame, timezone=timezone, what="contributors",
                                                                   title=" ")),
        top=Section(top_title, None, "" if top_rows else "No observation has a taxon or a category yet."),
        top_rows=top_rows, top_column=column,
        map=_chart("Where", draw_map), map_public=map_public,
        grades=_counts(frame["grade"].astype("string").fillna("none"), total) if "grade" in frame.columns else [],
        flags=[(str(k), int(v), _share(int(v), total)) for k, v in flag_counts(frame).items()],
        quality=[q for q in quality if q is not None],
        participation=participation_rows(frame, timezone) if has_ids else [],
        licences=_counts(frame["licence"].astype("string").fillna("unknown"), total)
        if "licence" in frame.columns else [],
    )


def render_report(frame: pd.DataFrame, **options: Any) -> str:
    """The report as one self-contained HTML page (see :func:`build_report` for the options)."""
    report = build_report(frame, **options)
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    return environment.get_template("report.html").render(report=report)


def weasyprint_available() -> bool:
    """Whether WeasyPrint (for PDF) is installed."""
    return importlib.util.find_spec("weasyprint") is not None


def write_report(html: str, out: str | Path, *, pdf: bool = False) -> Path:
    """Write the HTML, or a PDF of it (``pdf``, or a ``.pdf`` suffix) through WeasyPrint; the path."""
    out = Path(out)
    if pdf or out.suffix.lower() == ".pdf":
        if not weasyprint_available():
            raise ReportError("a PDF needs WeasyPrint, which is not installed here (pip install weasyprint); "
                              "write the report as .html and print it from a browser instead")
        import weasyprint

        target = out if out.suffix.lower() == ".pdf" else out.with_suffix(".pdf")
        weasyprint.HTML(string=html).write_pdf(target)
        return target
    out.write_text(html, encoding="utf-8")
    return out
