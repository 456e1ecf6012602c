"""``observatory analyse plot PROJECT NAME --out FILE``, ``observatory analyse list`` and
``observatory report PROJECT --out FILE``: the charts of :mod:`.plots` and :mod:`.maps` on a
project's observations frame (``Observatory.local``), every analysis a plugin registers
(``register_analyses``, e.g. the odour service's ``odour_hour_weekday``), and the one-page
project report (:mod:`.report`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from core.cli import EXIT_INVALID, engine_of, fail, with_examples

if TYPE_CHECKING:
    import pandas as pd

    from core.engine import Engine
    from core.types import Analysis, ProjectContext

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
STAFF_STATUSES = ("pending", "published", "unpublished")


@dataclass(frozen=True)
class Options:
    """What a chart may be asked: the time zone, what to count by, how many, the period."""

    timezone: str
    by: str = "auto"
    top: int = 10
    freq: str = "auto"
    tile_url: str = ""
    attribution: str = ""
    assets: str = "inline"


@dataclass(frozen=True)
class Chart:
    """A named chart: a figure (or HTML) and, where it has one, its table for ``.csv``."""

    title: str
    draw: Callable[[pd.DataFrame, Options], Any]
    table: Callable[[pd.DataFrame, Options], Any] | None = None
    html: bool = False


def _charts() -> dict[str, Chart]:
    from plugins.analysis import maps, plots

    return {
        "over-time": Chart("Observations per day, week or month (local time)",
                           lambda f, o: plots.plot_over_time(f, freq=o.freq, timezone=o.timezone),  # type: ignore[arg-type]
                           lambda f, o: plots.counts_over_time(f, freq=o.freq, timezone=o.timezone)),  # type: ignore[arg-type]
        "contributors-over-time": Chart(
            "Distinct contributors per day, week or month",
            lambda f, o: plots.plot_over_time(f, freq=o.freq, timezone=o.timezone, what="contributors"),  # type: ignore[arg-type]
            lambda f, o: plots.counts_over_time(f, freq=o.freq, timezone=o.timezone, what="contributors")),  # type: ignore[arg-type]
        "hour": Chart("Observations by hour of the day (local time)",
                      lambda f, o: plots.plot_by_hour(f, timezone=o.timezone),
                      lambda f, o: plots.counts_by_hour(f, timezone=o.timezone)),
        "weekday": Chart("Observations by weekday (local time)",
                         lambda f, o: plots.plot_by_weekday(f, timezone=o.timezone),
                         lambda f, o: plots.counts_by_weekday(f, timezone=o.timezone)),
        "taxa": Chart("Top taxa (or a rank with --by family, or categories)",
                      lambda f, o: plots.plot_top_labels(f, by=o.by, n=o.top),
                      lambda f, o: plots.top_labels(f, by=o.by, n=o.top)),
        "map": Chart("Map of the observations' places (static, no tiles)", lambda f, o: maps.plot_points(f)),
        "heatmap": Chart("Heat map of observations on a lon/lat grid",
                         lambda f, o: maps.plot_heatmap(f), lambda f, o: _heat_table(f)),
        "map-html": Chart("Interactive map (HTML, the engine's own Leaflet, clustered points)",
                          lambda f, o: maps.map_html(f, tile_url=o.tile_url, attribution=o.attribution,
                                                     assets=o.assets), html=True),
        "contributions": Chart("Observations per contributor (pseudonymous ids), largest first",
                               lambda f, o: plots.plot_contributions(f, n=o.top),
                               lambda f, o: plots.contributions(f)),
        "lorenz": Chart("Lorenz curve of contributions, with the Gini coefficient",
                        lambda f, o: plots.plot_lorenz(f), lambda f, o: plots.lorenz_curve(f)),
    }


def _heat_table(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    from plugins.analysis import maps

    counts, lon_edges, lat_edges = maps.heat_grid(frame)
    rows = [{"south": lat_edges[i], "north": lat_edges[i + 1], "west": lon_edges[j], "east": lon_edges[j + 1],
             "observations": int(counts[i, j])}
            for i in range(counts.shape[0]) for j in range(counts.shape[1]) if counts[i, j]]
    return pd.DataFrame(rows)


CHART_NAMES = ("over-time", "contributors-over-time", "hour", "weekday", "taxa", "map", "heatmap", "map-html",
               "contributions", "lorenz")


def add_commands(cli: click.Group, analyse: click.Group) -> None:
    """Add ``analyse plot``, ``analyse list`` and the top-level ``report``."""
    analyse.add_command(plot_command)
    analyse.add_command(list_command)
    cli.add_command(report_command)


def catalogue(engine: Engine | None) -> list[tuple[str, str, str]]:
    """Every name ``analyse plot`` takes: (name, title, where from): the charts, then each
    plugin's registered analyses."""
    charts = _charts()
    rows = [(name, charts[name].title, "chart") for name in CHART_NAMES]
    if engine is not None:
        rows += [(name, a.title, f"plugin {a.plugin or '?'}") for name, a in sorted(engine.host.analyses.items())]
    return rows


def _print_catalogue(engine: Engine) -> None:
    rows = catalogue(engine)
    width = max(len(r[0]) for r in rows)
    for name, title, origin in rows:
        click.echo(f"{name:<{width}}  {title} ({origin})")


@click.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """List the charts 'analyse plot' draws and every analysis a plugin registers."""
    _print_catalogue(engine_of(ctx))


def project_of(engine: Engine, slug: str) -> ProjectContext:
    """The project ``slug``, or exit naming the projects there are."""
    try:
        return engine.registry.project(slug)
    except KeyError:
        fail(f"no project {slug!r} (projects: {', '.join(sorted(engine.registry.contexts()))})", EXIT_INVALID)


def load_frame(engine: Engine, project: str, *, public: bool) -> pd.DataFrame:
    """The project's observations frame as staff (``public``: as the public) sees it, from this
    engine's database; trashed observations left out."""
    from core.errors import EngineError
    from plugins.analysis.frames import Observatory

    try:
        frame = Observatory.local(engine=engine, public=public).observations(project)
    except EngineError as exc:
        fail(exc.message, EXIT_INVALID)
    if "status" in frame.columns:
        frame = frame.loc[frame["status"] != "trashed"].reset_index(drop=True)
    return frame


def write_chart(chart: Chart, frame: pd.DataFrame, options: Options, out: Path) -> None:
    """Write ``chart`` of ``frame`` to ``out`` in the form its suffix names."""
    import pandas as pd

    from plugins.analysis.plots import PlotError

    suffix = out.suffix.lower()
    try:
        if suffix == ".csv":
            if chart.table is None:
                raise PlotError("this chart has no table: write .png (or .html for map-html)")
            table = chart.table(frame, options)
            if isinstance(table, pd.Series):
                table.to_csv(out, header=True)  # the index (hour, weekday, taxon...) is the first column
            else:
                table.to_csv(out, index=False)
        elif chart.html:
            if suffix != ".html":
                raise PlotError(f"map-html writes .html, not {suffix or 'a file without suffix'}")
            out.write_text(chart.draw(frame, options), encoding="utf-8")
        elif suffix in FIGURE_SUFFIXES:
            chart.draw(frame, options).savefig(out, format=suffix.lstrip("."))
        else:
            raise PlotError(f"--out {out.name}: write {', '.join(FIGURE_SUFFIXES)} or .csv")
    except PlotError as exc:
        fail(str(exc), EXIT_INVALID)


def run_plugin_analysis(engine: Engine, analysis: Analysis, project: ProjectContext, out: Path, *,
                        public: bool) -> None:
    """Run a plugin's analysis on the project's observations the caller may see and write its
    PNG (``.png``), rows (``.csv``), GeoJSON (``.geojson``) or the rest (``.json``)."""
    from core import queries

    if analysis.plugin and not project.enables(analysis.plugin):
        fail(f"{analysis.name} is the {analysis.plugin} service's, which is not on in project {project.slug}",
             EXIT_INVALID)
    views = queries.observations(engine, project.slug, statuses=("published",) if public else STAFF_STATUSES,
                                 public_places=public)
    if not views:
        fail(f"no observations in {project.slug} to analyse", EXIT_INVALID)
    result = dict(analysis.run(views, project, public=public))
    suffix = out.suffix.lower()
    if suffix == ".png":
        if not result.get("png"):
            fail(f"{analysis.name} drew no chart for these observations", EXIT_INVALID)
        out.write_bytes(result["png"])
    elif suffix == ".csv":
        import pandas as pd

        pd.DataFrame(result.get("rows") or []).to_csv(out, index=False)
    elif suffix == ".geojson":
        if "geojson" not in result:
            fail(f"{analysis.name} has no GeoJSON form", EXIT_INVALID)
        out.write_text(json.dumps(result["geojson"], ensure_ascii=False), encoding="utf-8")
    elif suffix == ".json":
        plain = {k: v for k, v in result.items() if not isinstance(v, bytes)}
        out.write_text(json.dumps(plain, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    else:
        fail(f"--out {out.name}: {analysis.name} writes .png, .csv, .geojson or .json", EXIT_INVALID)


@click.command("plot", help=with_examples(
    "Draw the chart NAME of PROJECT's observations into --out (.png, .svg, .pdf; .csv for its table; .html "
    "for map-html), or run an analysis a plugin registers. --list shows every name.",
    "observatory analyse plot demo hour --out hours.png",
    "observatory analyse plot demo taxa --by family --top 5 --out families.csv",
    "observatory analyse plot demo map-html --public --out map.html",
    "observatory analyse plot smells odour_hour_weekday --out odour.png",
))
@click.argument("project", required=False)
@click.argument("name", required=False)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="the file to write")
@click.option("--list", "show_list", is_flag=True, help="list the charts and the plugins' analyses")
@click.option("--public", is_flag=True, help="as the public sees it: published only, public places, no contributors")
@click.option("--timezone", default=None, help="time zone for hours, weekdays and days (default: the project's)")
@click.option("--by", default="auto", show_default=True,
              help="taxa: taxon_name, a rank (family, genus...) or category")
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1), help="taxa, contributions: how many")
@click.option("--freq", default="auto", show_default=True, type=click.Choice(["auto", "day", "week", "month"]))
@click.option("--assets", default="inline", show_default=True,
              help="map-html: inline the engine's Leaflet, or the base URL of an engine that serves /assets")
@click.pass_context
def plot_command(ctx: click.Context, project: str | None, name: str | None, out: Path | None, show_list: bool,
                 public: bool, timezone: str | None, by: str, top: int, freq: str, assets: str) -> None:
    engine = engine_of(ctx)
    if show_list:
        _print_catalogue(engine)
        return
    if not project or not name:
        fail("give PROJECT and NAME (observatory analyse plot --list shows the names)", EXIT_INVALID)
    if out is None:
        fail("give --out FILE", EXIT_INVALID)
    context = project_of(engine, project)
    charts = _charts()
    analysis = engine.host.analyses.get(name)
    if name not in charts and analysis is None:
        names = ", ".join([*CHART_NAMES, *sorted(engine.host.analyses)])
        fail(f"no chart or analysis {name!r} (names: {names})", EXIT_INVALID)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    if analysis is not None and name not in charts:
        run_plugin_analysis(engine, analysis, context, out, public=public)
    else:
        zone = _timezone(timezone or context.timezone)
        frame = load_frame(engine, project, public=public)
        if frame.empty:
            fail(f"no observations in {project} to draw", EXIT_INVALID)
        options = Options(timezone=zone, by=by, top=top, freq=freq, tile_url=engine.settings.map_tile_url,
                          attribution=engine.settings.map_tile_attribution, assets=assets)
        write_chart(charts[name], frame, options, out)
    click.echo(f"{name} of {project} written to {out}")


def _timezone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"unknown time zone {name!r} (e.g. Europe/Madrid)", EXIT_INVALID)
    return name


@click.command("report", help=with_examples(
    "Write PROJECT's one-page report for its funders: observations and contributors over time, top taxa or "
    "categories, a map, data quality, participation and the licence. Self-contained HTML (.html), or PDF "
    "(.pdf or --pdf) where WeasyPrint is installed. Counts the published observations; the map shows them "
    "as the public sees them; contributors are counted, never named.",
    "observatory report demo --out report.html",
    "observatory report demo --out report.pdf",
))
@click.argument("project")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the file to write (.html or .pdf)")
@click.option("--pdf", is_flag=True, help="write a PDF (needs WeasyPrint)")
@click.option("--public", is_flag=True, help="entirely as the public sees it (then without contributor figures)")
@click.option("--timezone", default=None, help="time zone for the dates (default: the project's)")
@click.pass_context
def report_command(ctx: click.Context, project: str, out: Path, pdf: bool, public: bool,
                   timezone: str | None) -> None:
    import time

    from plugins.analysis.report import ReportError, render_report, weasyprint_available, write_report

    started = time.monotonic()
    if (pdf or out.suffix.lower() == ".pdf") and not weasyprint_available():
        fail("a PDF needs WeasyPrint, which is not installed here (pip install weasyprint); "
             "write --out report.html and print it from a browser instead", EXIT_INVALID)
    if not pdf and out.suffix.lower() not in (".html", ".htm", ".pdf"):
        fail(f"--out {out.name}: write .html or .pdf", EXIT_INVALID)
    engine = engine_of(ctx)
    context = project_of(engine, project)
    zone = _timezone(timezone or context.timezone)
    shown = load_frame(engine, project, public=True)
    frame = shown if public else load_frame(engine, project, public=False)
    if "status" in frame.columns:
        unpublished = int((frame["status"] != "published").sum())
        frame = frame.loc[frame["status"] == "published"].reset_index(drop=True)
        if frame.empty and unpublished:
            fail(f"no published observations in {project} to report on ({unpublished} not published: "
                 f"pending or unpublished)", EXIT_INVALID)
    try:
        html = render_report(frame, name=context.name, description=context.description, licence=context.licence,
                             timezone=zone, map_frame=shown, map_public=True,
                             scope="published observations" + (" as the public sees them" if public else ""))
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True)
        written = write_report(html, out, pdf=pdf)
    except ReportError as exc:
        fail(str(exc), EXIT_INVALID)
    click.echo(f"report of {project} ({len(frame):,} observations) written to {written} "
               f"in {time.monotonic() - started:.1f} s")
