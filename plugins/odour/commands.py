"""``observatory odour ...``: odour events and analyses from the command line.

The CLI is the operator's: by default it sees every report but the trash, with contributor
ids; ``--public`` shows what the public sees (published reports, counts only, coarse places).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from core.cli import EXIT_INVALID, echo_json, engine_of, fail
from core.errors import EngineError
from plugins.odour import service

FORMATS = ("json", "csv", "geojson")
ANALYSIS_FORMATS = ("json", "csv", "png", "geojson")


@click.group("odour", help="Odour reports: events and analyses (the odour service).")
def odour() -> None:
    pass


def _write(output: str | None, data: str | bytes) -> None:
    if output in (None, "-"):
        if isinstance(data, bytes):
            click.get_binary_stream("stdout").write(data)
        else:
            click.echo(data, nl=not data.endswith("\n"))
        return
    path = Path(output)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    click.echo(f"wrote {path}", err=True)


@odour.command("events", help="List the odour events of PROJECT (JSON, CSV or GeoJSON).")
@click.argument("project")
@click.option("--since", default=None, help="ISO 8601 date or date-time (project time zone without an offset)")
@click.option("--until", default=None, help="exclusive date-time, or a date whose whole day is included")
@click.option("--category", type=int, default=None, help="one odour category id (1..9)")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json")
@click.option("--public", is_flag=True, help="as the public sees them: published reports, no contributor ids")
@click.option("--output", "-o", default=None, help="write to this file instead of standard output")
@click.pass_context
def events_command(ctx: click.Context, project: str, since: str | None, until: str | None, category: int | None,
                   fmt: str, public: bool, output: str | None) -> None:
    engine = engine_of(ctx)
    try:
        context = service.odour_project(engine, project)
        payload = service.events(
            engine, context, public=public, category=category,
            since=service.parse_moment(since, context, "--since"),
            until=service.parse_moment(until, context, "--until", end=True),
        )
    except EngineError as exc:
        fail(exc.message, EXIT_INVALID)
    if fmt == "csv":
        _write(output, service.events_csv(payload))
    elif fmt == "geojson":
        _write(output, json.dumps(service.events_geojson(payload), indent=2, ensure_ascii=False, default=str))
    elif output in (None, "-"):
        echo_json(payload)
    else:
        _write(output, json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    if output not in (None, "-"):
        click.echo(f"{len(payload['events'])} events, {len(payload['possible'])} possible reports", err=True)


def _format_of(output: str | None, fmt: str | None) -> str:
    if fmt:
        return fmt
    if output and output != "-":
        suffix = Path(output).suffix.lower().lstrip(".")
        if suffix in ANALYSIS_FORMATS:
            return suffix
    return "json"


@odour.command("analyse", help="Run the odour analysis NAME on PROJECT: hour_weekday, categories, intensity or "
               "heatmap. The format follows the --output suffix (.json, .csv, .png, .geojson) unless --format says.")
@click.argument("project")
@click.argument("name")
@click.option("--output", "-o", default=None, help="the file to write (standard output when left out)")
@click.option("--format", "fmt", type=click.Choice(ANALYSIS_FORMATS), default=None)
@click.option("--since", default=None, help="ISO 8601 date or date-time")
@click.option("--until", default=None, help="exclusive date-time, or a date whose whole day is included")
@click.option("--category", type=int, default=None, help="one odour category id (1..9)")
@click.option("--public", is_flag=True, help="on published reports only, as the public sees them")
@click.pass_context
def analyse_command(ctx: click.Context, project: str, name: str, output: str | None, fmt: str | None,
                    since: str | None, until: str | None, category: int | None, public: bool) -> None:
    engine = engine_of(ctx)
    fmt = _format_of(output, fmt)
    if fmt == "png" and output in (None, "-") and click.get_binary_stream("stdout").isatty():
        fail("a PNG goes to a file: add --output chart.png", EXIT_INVALID)
    try:
        context = service.odour_project(engine, project)
        result = service.run_analysis(
            engine, context, name, public=public, category=category,
            since=service.parse_moment(since, context, "--since"),
            until=service.parse_moment(until, context, "--until", end=True),
        )
    except EngineError as exc:
        fail(exc.message, EXIT_INVALID)
    data: Any
    if fmt == "png":
        if not result.get("png"):
            fail(f"the analysis {name!r} has no chart for these reports (none to draw)", EXIT_INVALID)
        data = result["png"]
    elif fmt == "geojson":
        if "geojson" not in result:
            fail(f"the analysis {name!r} has no GeoJSON form; only heatmap has", EXIT_INVALID)
        data = json.dumps(result["geojson"], ensure_ascii=False)
    elif fmt == "csv":
        data = service.rows_csv(result["rows"])
    else:
        data = json.dumps(service.json_part(result), indent=2, ensure_ascii=False, default=str)
    _write(output, data)
