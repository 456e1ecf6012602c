"""``observatory import``: old data into a project (docs/importing.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from core.cli import EXIT_INVALID, engine_of, fail, with_examples
from core.errors import EngineError

HELP = """Import observations from FILE into PROJECT: a CSV with a column mapping (--mapping), a
GeoJSON FeatureCollection, a Darwin Core Archive (zip with meta.xml) or an iNaturalist CSV export.
The format is found from the file, or named with --format.

Every row goes through the same checks as any submitted observation. The source's own id becomes
the client id, so running the import again stores nothing twice. Run it with --dry-run first: it
checks every row and writes the report, storing nothing.

Exit status: 0 when every row was stored or was stored before; 1 when some rows were refused
(the report says which and why); 2 when the file, the mapping or an option cannot be used."""

EXAMPLES = (
    "observatory import old old_project.csv --mapping old_project.mapping.yaml --media photos/ --dry-run "
    "--report report.csv",
    "observatory import old old_project.csv --mapping old_project.mapping.yaml --media photos/",
    "observatory import old observations-123456.csv      # an iNaturalist export",
    "observatory import old dwca-old-dataset.zip",
)


def register(cli: click.Group) -> None:
    cli.add_command(import_command)


@click.command("import", help=with_examples(HELP, *EXAMPLES))
@click.argument("project")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "geojson", "dwca", "inat"]), default=None,
              show_default="found from the file", help="the source's format")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="column mapping, YAML or JSON (required for a CSV; changes a built-in format's mapping)")
@click.option("--media", "media_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="folder of the media files the rows name")
@click.option("--dry-run", is_flag=True, help="check every row and write the report; store nothing")
@click.option("--report", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              show_default="the first 20 problems on standard error",
              help="write every problem as CSV: row, source_id, field, column, problem, code, outcome")
@click.option("--batch", "batch_size", type=click.IntRange(1, 10_000), default=2000, show_default=True,
              help="rows stored per transaction")
@click.option("--pseudonym-key", envvar="OBSERVATORY_IMPORT_PSEUDONYM_KEY", default=None, metavar="env:NAME",
              show_default="<data_dir>/import-pseudonym.key, made once",
              help="secret of the people's pseudonyms: env:NAME reads the variable NAME")
@click.option("--progress/--no-progress", default=True, show_default=True, help="show a progress bar on standard error")
@click.pass_context
def import_command(ctx: click.Context, project: str, file: Path, fmt: str | None, mapping: Path | None,
                   media_dir: Path | None, dry_run: bool, report: Path | None, batch_size: int,
                   pseudonym_key: str | None, progress: bool) -> None:
    from tqdm import tqdm

    from core.importing import SourceError, import_file, write_report

    engine = engine_of(ctx)
    bar = tqdm(unit=" rows", file=sys.stderr, disable=not progress, desc="checking" if dry_run else "importing")

    def advance(done: int, total: int | None) -> None:
        if total and bar.total is None:
            bar.total = total
        bar.update(done)

    try:
        summary = import_file(engine, project, file, fmt=fmt, mapping=mapping, media_dir=media_dir, dry_run=dry_run,
                              batch_size=batch_size, progress=advance, pseudonym_key_setting=pseudonym_key,
                              actor="cli")
    except SourceError as exc:
        bar.close()
        fail(exc.message, EXIT_INVALID)
    except EngineError as exc:
        bar.close()
        fail(exc.message, EXIT_INVALID)
    bar.close()
    if not dry_run and not engine.dispatcher.flush(30.0):
        click.echo("warning: the broker did not take the enrichments in time; they are stored, and a worker's "
                   "recovery loop will queue them", err=True)
    if report is not None:
        write_report(summary, report)
    else:
        for line in summary.lines[:20]:
            click.echo(f"row {line.row}: {line.field or '(row)'}{f' [{line.column}]' if line.column else ''}: "
                       f"{line.problem} ({line.outcome})", err=True)
        if len(summary.lines) > 20:
            click.echo(f"... and {len(summary.lines) - 20} more problems: write them all with --report FILE.csv",
                       err=True)
    click.echo(summary.text())
    if report is not None:
        click.echo(f"report: {report} ({len(summary.lines)} problem{'s' if len(summary.lines) != 1 else ''})")
    sys.exit(0 if summary.ok else 1)
