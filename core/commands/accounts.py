"""``observatory accounts``: people, their roles per project, and staff passwords."""

from __future__ import annotations

import sys

import click

from core.cli import EXIT_INVALID, echo_json, engine_of, fail, with_examples
from core.errors import EngineError


def _membership(value: str) -> tuple[str, str]:
    project, sep, role = value.partition("=")
    if not sep:
        raise click.BadParameter(f"{value!r}: write PROJECT=ROLE, e.g. demo=admin")
    return project, role


def _table(infos: list) -> None:
    for a in infos:
        roles = ", ".join(f"{p}: {r}" for p, r in a.memberships.items()) or "-"
        flags = " [operator]" if a.is_operator else ""
        click.echo(f"{a.id:>6}  {a.display_name}{flags}  <{a.email or 'no e-mail'}>  {roles}")


def register(cli: click.Group) -> None:
    @cli.group(help=with_examples(
        "Accounts: one per person, with a role in each project (admin, moderator, expert, contributor); "
        "operators run the whole engine.",
        "observatory accounts create \"Ada Lovelace\" --email ada@example.org --role demo=admin",
        "observatory accounts list --project demo",
    ))
    def accounts() -> None:
        pass

    @accounts.command("create", help=with_examples(
        "Make an account; prints its id.",
        "observatory accounts create \"Ada Lovelace\" --email ada@example.org --role demo=admin "
        "--role wildlife=contributor",
        "observatory accounts create \"Ops\" --operator",
    ))
    @click.argument("display_name")
    @click.option("--email", default=None, help="needed to sign in to the web with a password")
    @click.option("--operator", is_flag=True, help="an operator of the whole engine")
    @click.option("--role", "roles", multiple=True, metavar="PROJECT=ROLE", help="a role in a project (repeatable)")
    @click.pass_context
    def create(ctx: click.Context, display_name: str, email: str | None, operator: bool, roles: tuple[str, ...]) -> None:
        from core.accounts import create_account

        try:
            info = create_account(engine_of(ctx), display_name, email=email, operator=operator,
                                  memberships=dict(_membership(r) for r in roles))
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(info.id)
        click.echo(f"account {info.id} ({info.display_name}) created", err=True)

    @accounts.command("list", help=with_examples(
        "List accounts (id, name, e-mail, operator flag, roles), or the members of one project.",
        "observatory accounts list",
        "observatory accounts list --project demo --json",
    ))
    @click.option("--project", default=None, help="only this project's members")
    @click.option("--json", "as_json", is_flag=True, help="print JSON (with creation and last-seen times)")
    @click.pass_context
    def list_(ctx: click.Context, project: str | None, as_json: bool) -> None:
        from core.accounts import list_accounts

        infos = list_accounts(engine_of(ctx), project)
        if as_json:
            echo_json([a.as_dict() for a in infos])
        else:
            _table(infos)

    @accounts.command("grant", help=with_examples(
        "Give an account a role in a project (replaces the role it had there).",
        "observatory accounts grant 7 demo moderator",
    ))
    @click.argument("account_id", type=int)
    @click.argument("project")
    @click.argument("role", type=click.Choice(["admin", "moderator", "expert", "contributor"]))
    @click.pass_context
    def grant(ctx: click.Context, account_id: int, project: str, role: str) -> None:
        from core.accounts import grant as grant_role

        try:
            grant_role(engine_of(ctx), account_id, project, role)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(f"account {account_id} is {role} of {project}")

    @accounts.command("revoke", help=with_examples(
        "Take away an account's role in a project (its observations stay theirs).",
        "observatory accounts revoke 7 demo",
    ))
    @click.argument("account_id", type=int)
    @click.argument("project")
    @click.pass_context
    def revoke(ctx: click.Context, account_id: int, project: str) -> None:
        from core.accounts import revoke as revoke_role

        try:
            revoke_role(engine_of(ctx), account_id, project)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(f"account {account_id} has no role in {project} any more")

    @accounts.command("set-password", help=with_examples(
        "Set the password an account signs in to the web with (asked twice, not echoed; --password-stdin reads "
        "one line for scripts). Stored as an argon2id hash.",
        "observatory accounts set-password 7",
        "printf '%s\\n' \"$ADMIN_PASSWORD\" | observatory accounts set-password 7 --password-stdin",
    ))
    @click.argument("account_id", type=int)
    @click.option("--password-stdin", is_flag=True, help="read the password from one line of standard input")
    @click.pass_context
    def set_password(ctx: click.Context, account_id: int, password_stdin: bool) -> None:
        from core.accounts import set_password as store

        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        try:
            store(engine_of(ctx), account_id, password)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(f"password of account {account_id} set")

    @accounts.command("set-email", help=with_examples(
        "Set (or with --none, remove) an account's e-mail.",
        "observatory accounts set-email 7 ada@example.org",
        "observatory accounts set-email 7 --none",
    ))
    @click.argument("account_id", type=int)
    @click.argument("email", required=False)
    @click.option("--none", "remove", is_flag=True, help="remove the e-mail (and so the password)")
    @click.pass_context
    def set_email(ctx: click.Context, account_id: int, email: str | None, remove: bool) -> None:
        from core.accounts import set_email as store

        if not remove and not email:
            fail("give an e-mail, or --none", EXIT_INVALID)
        try:
            store(engine_of(ctx), account_id, None if remove else email)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(f"e-mail of account {account_id} {'removed' if remove else 'set'}")

    @accounts.command("set-operator", help=with_examples(
        "Make an account an operator of the whole engine (--off: no longer).",
        "observatory accounts set-operator 1",
        "observatory accounts set-operator 1 --off",
    ))
    @click.argument("account_id", type=int)
    @click.option("--off", is_flag=True, help="take the operator flag away")
    @click.pass_context
    def set_operator(ctx: click.Context, account_id: int, off: bool) -> None:
        from core.accounts import set_operator as store

        try:
            store(engine_of(ctx), account_id, not off)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(f"account {account_id} is {'no longer ' if off else ''}an operator")
