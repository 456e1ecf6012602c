"""``observatory consents export``: the accounts that agreed to a project's choice."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli import with_examples


def register(cli: click.Group) -> None:
    @cli.group(help=with_examples(
        "Consents of a project's people: export those who agreed to a choice.",
        "observatory consents export demo newsletter --out newsletter.csv",
    ))
    def consents() -> None:
        pass

    @consents.command("export", help=with_examples(
        "The accounts whose newest answer to CHOICE in PROJECT is yes: account id, display name, e-mail, when "
        "they agreed and to which version; nothing else. Audited.",
        "observatory consents export demo newsletter --out newsletter.csv",
        "observatory consents export demo licence --format json",
    ))
    @click.argument("project")
    @click.argument("choice")
    @click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
                  help="the format")
    @click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
                  show_default="standard output", help="write to this file")
    @click.pass_context
    def consents_export(ctx: click.Context, project: str, choice: str, fmt: str, out: Path | None) -> None:
        from core import consent
        from core.cli import EXIT_INVALID, engine_of, fail
        from core.errors import EngineError
        from core.lifecycle import get_project

        engine = engine_of(ctx)
        try:
            rows = consent.accounts_agreed(engine, get_project(engine, project), choice, actor="cli")
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        text = consent.as_csv(rows) if fmt == "csv" else consent.as_json(rows) + "\n"
        if out is None:
            click.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            click.echo(f"{len(rows)} account(s) agreed to {choice!r} in {project!r}: written to {out}", err=True)
