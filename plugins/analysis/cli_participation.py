"""``observatory analyse participation --projects a,b``: participation analytics of projects side by
side, from this engine's database (as an operator sees it; pseudonymous figures only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pandas as pd

from core.cli import EXIT_INVALID, engine_of, fail
from core.errors import EngineError

OUT_FORMATS = (".csv", ".json")


def side_by_side(answers: list[dict[str, Any]]) -> pd.DataFrame:
    """The projects' figures and profile counts: one row per figure, one column per project."""
    from plugins.analysis.participation import SCALARS
    from plugins.analysis.profiles import PROFILES

    columns = {}
    for answer in answers:
        profiles = answer["profiles"]
        column: dict[str, Any] = {name: answer[name] for name in SCALARS}
        column["profile_min_active_days"] = profiles["min_active_days"]
        column["n_profiled"] = profiles["n_profiled"]
        column.update({f"profile.{name}": profiles["counts"][name] for name in PROFILES})
        columns[answer["project"]] = pd.Series(column, dtype=object)
    table = pd.DataFrame(columns)
    table.index.name = "metric"
    return table


def _text(table: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "-"
        if isinstance(value, float) and not value.is_integer():
            return f"{value:.3f}"
        return str(int(value)) if isinstance(value, float) else str(value)

    return table.map(cell).to_string()


def add_commands(cli: click.Group, analyse: click.Group) -> None:
    """Add ``observatory analyse participation``."""

    @analyse.command("participation", help="Participation analytics of projects side by side: contributors, "
                     "Gini, the top 10%'s share, one-day contributors, medians of active days and activity ratio, "
                     "engagement profiles. A table on standard output; --out FILE.csv (the table) or FILE.json "
                     "(everything, with months, retention by cohort and profile centroids).")
    @click.option("--projects", required=True, help="project slugs, comma-separated")
    @click.option("--out", "out", default=None, help="write to FILE.csv or FILE.json instead of standard output")
    @click.option("--min-active-days", type=click.IntRange(2, 3660), default=None,
                  help="active days a contributor needs to be profiled (default: each project's "
                  "analysis.profile_min_active_days)")
    @click.pass_context
    def participation_command(ctx: click.Context, projects: str, out: str | None,
                              min_active_days: int | None) -> None:
        from plugins.analysis.participation import MAX_PROJECTS, analysis_project, participation_of

        slugs = list(dict.fromkeys(s.strip() for s in projects.split(",") if s.strip()))
        if not slugs:
            fail("--projects: name at least one project (a,b)", EXIT_INVALID)
        if len(slugs) > MAX_PROJECTS:
            fail(f"--projects: at most {MAX_PROJECTS} projects at a time ({len(slugs)} given)", EXIT_INVALID)
        suffix = Path(out).suffix.lower() if out else None
        if out and suffix not in OUT_FORMATS:
            fail(f"--out: a .csv or .json file, not {out!r}", EXIT_INVALID)
        engine = engine_of(ctx)
        try:
            for slug in slugs:
                analysis_project(engine, slug)
            answers = participation_of(engine, slugs, min_active_days)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        try:
            if suffix == ".json":
                Path(out).write_text(json.dumps({"projects": answers}, indent=2, ensure_ascii=False), encoding="utf-8")
            elif suffix == ".csv":
                side_by_side(answers).to_csv(out)
            else:
                click.echo(_text(side_by_side(answers)))
        except OSError as exc:
            fail(f"--out: cannot write {out!r}: {exc.strerror or exc}", EXIT_INVALID)
        if out:
            click.echo(f"wrote {out}", err=True)
