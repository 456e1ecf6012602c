"""``observatory gdpr export|erase``: a person's data, downloaded or erased, for operators."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli import with_examples


def register(cli: click.Group) -> None:
    @cli.group(help=with_examples(
        "A person's data (GDPR): export everything held about an account, or erase it.",
        "observatory gdpr export 12 --out account-12.zip",
        "observatory gdpr erase 12",
    ))
    def gdpr() -> None:
        pass

    @gdpr.command("export", help=with_examples(
        "Write a zip of everything the engine holds about ACCOUNT_ID: account, consents, observations (CSV and "
        "JSON, with media), comments, audit entries.",
        "observatory gdpr export 12 --out account-12.zip",
    ))
    @click.argument("account_id", type=int)
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True, path_type=Path),
                  help="the zip file to write")
    @click.pass_context
    def gdpr_export(ctx: click.Context, account_id: int, out: Path) -> None:
        from core import gdpr as core_gdpr
        from core.cli import engine_of, fail
        from core.errors import EngineError

        engine = engine_of(ctx)
        partial = out.with_name(out.name + ".part")
        try:
            with partial.open("wb") as handle:
                core_gdpr.write_export(engine, account_id, handle)
        except EngineError as exc:
            partial.unlink(missing_ok=True)
            fail(exc.message)
        partial.replace(out)
        click.echo(f"account {account_id}: data written to {out}", err=True)

    @gdpr.command("erase", help=with_examples(
        "Erase ACCOUNT_ID for good: account, e-mail, tokens, memberships, consents go; observations are "
        "anonymised or deleted as each project's erasure policy says; comments stay without an author; audit "
        "entries no longer name the person.",
        "observatory gdpr erase 12",
        "observatory gdpr erase 12 --yes        # no question asked (scripts)",
    ))
    @click.argument("account_id", type=int)
    @click.option("--yes", is_flag=True, help="do not ask for confirmation")
    @click.pass_context
    def gdpr_erase(ctx: click.Context, account_id: int, yes: bool) -> None:
        import json

        from core import gdpr as core_gdpr
        from core.cli import engine_of, fail
        from core.errors import EngineError

        if not yes:
            click.confirm(f"Erase account {account_id}? This cannot be undone", abort=True)
        try:
            result = core_gdpr.erase(engine_of(ctx), account_id, actor="cli")
        except EngineError as exc:
            fail(exc.message)
        click.echo(json.dumps({"erased": account_id, **result.as_dict()}))
