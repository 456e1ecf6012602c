"""``observatory analyse frame PROJECT --out FILE``: a project's observations frame as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import click


def add_commands(cli: click.Group, analyse: click.Group) -> None:
    """Add ``analyse frame`` to the ``analyse`` group."""
    analyse.add_command(frame_command)


@click.command("frame")
@click.argument("project")
@click.option("--filter", "filters", multiple=True, metavar="NAME=VALUE",
              help="a filter of the observation list (status=published, kind=odour, field.count>=3); repeatable")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the file to write: .csv or .parquet")
@click.option("--public", is_flag=True, help="as the public sees it (no contributor, coarse places)")
@click.option("--url", default=None, help="read another engine over its API instead of this database")
@click.option("--token", envvar="OBSERVATORY_TOKEN", default=None, help="API token for --url")
def frame_command(project: str, filters: tuple[str, ...], out: Path, public: bool, url: str | None,
                  token: str | None) -> None:
    """Write PROJECT's observations frame (one row per observation, docs/analysis.md) to --out."""
    from core.errors import EngineError
    from core.filters import filter_params
    from plugins.analysis.frames import Observatory
    from plugins.analysis.frames.remote import RemoteError

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise click.UsageError(f"--out {out}: give a .csv or .parquet file")
    try:
        source = Observatory(url, token=token) if url else Observatory.local(public=public)
        frame = source.observations(project, filter_params(filters))
    except EngineError as exc:
        raise click.ClickException(exc.message) from None
    except RemoteError as exc:
        raise click.ClickException(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    click.echo(f"{len(frame)} observations of {project} written to {out}")
