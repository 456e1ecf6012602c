"""The ``observatory`` command line. Plugins add commands through ``register_commands``."""

from __future__ import annotations

import copy
import json
import mimetypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from core.config import Settings, get_settings
from core.engine import Engine
from core.errors import EngineError, ValidationFailed
from core.plugins import PluginError
from core.registry import RegistryError

EXIT_INVALID = 2
EXIT_STARTUP = 3


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def with_examples(text: str, *examples: str) -> str:
    """A command's help: ``text``, then an "Examples:" block that click prints as written."""
    lines = "\n".join(f"  {example}" for example in examples)
    return f"{text}\n\n\b\nExamples:\n{lines}"


def start_engine(settings: Settings | None = None, *, inline: bool = False) -> Engine:
    """Start the engine or exit with a message naming the broken key or plugin."""
    from core.dispatch import InlineDispatcher

    try:
        return Engine.start(settings or get_settings(), dispatcher=InlineDispatcher() if inline else None)
    except (RegistryError, PluginError) as exc:
        fail(str(exc), EXIT_STARTUP)
    except ValidationError as exc:
        from core.doctor import settings_error

        fail(settings_error(exc), EXIT_STARTUP)


def engine_of(ctx: click.Context, *, inline: bool = False) -> Engine:
    obj = ctx.ensure_object(dict)
    if inline:
        return start_engine(inline=True)
    if "engine" not in obj:
        obj["engine"] = start_engine()
    return obj["engine"]


class ObservatoryGroup(click.Group):
    """The top-level group. When the settings, registry.yaml or a plugin is broken, the engine's own
    commands still run (``observatory doctor`` says what is wrong), and a command that is not
    there, perhaps a plugin's, fails with the start-up error rather than "No such command"."""

    startup_error: str | None = None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and self.startup_error:
            fail(f"{self.startup_error} (observatory doctor checks the whole installation)", EXIT_STARTUP)
        return command


@click.group(cls=ObservatoryGroup, help=with_examples(
    "The observatory engine: observations, media, quality, moderation and services.",
    "observatory doctor                  # is everything in place?",
    "observatory serve                   # the API on http://127.0.0.1:8000 and a worker",
    "observatory submit demo fox.json --media fox.jpg",
    "observatory COMMAND --help          # each command's options, defaults and examples",
))
@click.version_option(package_name="observatory-engine")
def cli() -> None:
    pass


def _die_with_parent() -> None:
    """In the worker child: get SIGTERM when `serve` dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the `finally` below still stops the worker on a clean exit


def _stop_worker(child: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """A warm shutdown (running tasks finish), then, past ``grace_s``, the whole group is killed:
    a worker left running after serve has stopped would hold the queue and the database."""
    child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        click.echo(f"observatory: the worker did not stop within {grace_s:g} s; killing it", err=True)
    try:
        os.killpg(child.pid, signal.SIGKILL)  # its pool processes too, whether or not it stopped
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


@cli.command(help=with_examples(
    "Run the HTTP API and, with the embedded defaults, a worker beside it. Brings the database to the newest "
    "schema first.",
    "observatory serve",
    "observatory serve --host 0.0.0.0 --port 8080 --no-worker   # API only; workers run elsewhere",
))
@click.option("--host", default=None, show_default="OBSERVATORY_HOST or 127.0.0.1", help="address to listen on")
@click.option("--port", default=None, type=int, show_default="OBSERVATORY_PORT or 8000", help="port")
@click.option("--worker/--no-worker", default=True, show_default=True, help="start a worker process beside the API")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, worker: bool) -> None:
    import uvicorn

    from core.api.app import create_app
    from core.db.migrate import upgrade

    try:
        # a new database gets the engine's tables first: plugins make theirs at start-up, and theirs
        # refer to the engine's (PostgreSQL refuses a foreign key to a table that is not there yet)
        upgrade(get_settings().database_url)
    except ValidationError:
        pass  # start_engine says which setting is wrong
    engine = engine_of(ctx)
    upgrade(engine.settings.database_url)
    from core.taxonomy.defaults import load_defaults_if_empty

    load_defaults_if_empty(engine)  # a database created just now gets the default taxonomy too
    child = None
    if worker:
        # its own process group: stopping serve stops the worker and its pool processes together
        child = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--concurrency", "2"],
                                 env=os.environ.copy(), preexec_fn=_die_with_parent, start_new_session=True)
    host = host or engine.settings.host
    port = port or engine.settings.port
    click.echo(f"observatory: API on http://{host}:{port}/api/v1 (docs at /docs); "
               f"database {engine.settings.database_url.split('@')[-1]}; broker {engine.settings.broker_url.split('@')[-1]}")
    try:
        uvicorn.run(create_app(engine), host=host, port=port, log_level="info")
    finally:
        if child is not None:
            _stop_worker(child)


@cli.command(help=with_examples(
    "Run a Celery worker for enrichments (any number, on any machine), on OBSERVATORY_BROKER_URL's broker.",
    "observatory worker",
    "OBSERVATORY_BROKER_URL=redis://queue:6379/0 observatory worker --concurrency 4",
))
@click.option("--concurrency", type=int, default=None, show_default="the number of CPUs", help="worker processes")
@click.option("--loglevel", default="INFO", show_default=True, help="Celery's log level (DEBUG, INFO, WARNING...)")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None, loglevel: str) -> None:
    from core.worker import worker_app, worker_argv

    engine = engine_of(ctx)  # checks the registry and plugins before any task runs
    worker_app(engine.settings).worker_main(worker_argv(engine.settings, concurrency, loglevel))


@cli.group(help=with_examples("Database migrations.", "observatory db upgrade"))
def db() -> None:
    pass


@db.command("upgrade", help=with_examples(
    "Bring the database of OBSERVATORY_DATABASE_URL to the newest schema (or to --revision); prints the "
    "revision reached.",
    "observatory db upgrade",
    "OBSERVATORY_DATABASE_URL=postgresql://observatory@db/observatory observatory db upgrade",
))
@click.option("--revision", default="head", show_default=True, help="the revision to reach")
def db_upgrade(revision: str) -> None:
    from core.db.migrate import current, upgrade

    settings = get_settings()
    settings.ensure_dirs()
    upgrade(settings.database_url, revision)
    click.echo(f"database at revision {current(settings.database_url)}")


@cli.command(help=with_examples(
    "List the installed plugins, their hooks and the projects that enable them.",
    "observatory plugins",
    "observatory plugins --json",
))
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    host = engine_of(ctx).host
    rows = [
        {
            "name": info.name,
            "version": info.version,
            "module": info.module,
            "builtin": info.builtin,
            "default": host.is_default(info.name),
            "hooks": host.hooks_of(info.name),
            "projects": host.registry.projects_enabling(info.name),
        }
        for info in host.info.values()
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']} {row['version']}: hooks {', '.join(row['hooks'])}; "
                   f"projects {', '.join(row['projects']) or '-'}")


@cli.command(help=with_examples(
    "List the projects of registry.yaml and the services each enables.",
    "observatory projects",
    "observatory projects --json",
))
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def projects(ctx: click.Context, as_json: bool) -> None:
    from core.projects import project_dict

    engine = engine_of(ctx)
    rows = [project_dict(engine, p) for p in engine.registry.contexts().values()]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['slug']}: {row['name']} (services: {', '.join(row['services']) or '-'})")


def _read_draft(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: {exc.strerror}", EXIT_INVALID)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", EXIT_INVALID)


@cli.command(help=with_examples(
    "Submit an observation from a JSON draft (a file, or - for standard input) and media files; print it as "
    "JSON. Enrichments are queued for the workers, or run here with --now.",
    "observatory submit demo fox.json --media fox.jpg",
    "observatory submit demo fox.json --now",
    "cat fox.json | observatory submit demo -",
))
@click.argument("project")
@click.argument("draft")
@click.option("--media", "media", multiple=True, type=click.Path(exists=True, dir_okay=False), help="a media file")
@click.option("--edit", is_flag=True, help="replace the observation with the same client_id")
@click.option("--now", "inline", is_flag=True, help="run enrichments here and now instead of queuing them")
@click.pass_context
def submit(ctx: click.Context, project: str, draft: str, media: tuple[str, ...], edit: bool, inline: bool) -> None:
    from core import lifecycle
    from core.db.session import transaction
    from core.read_model import read_observation

    data = _read_draft(draft)
    engine = engine_of(ctx, inline=inline)
    uploads = [
        lifecycle.Upload(Path(p).read_bytes(), Path(p).name, mimetypes.guess_type(p)[0]) for p in media
    ]
    try:
        result = lifecycle.submit(engine, project, data, uploads, edit=edit, actor="cli")
    except ValidationFailed as exc:
        for problem in exc.problems:
            click.echo(f"error: {'.'.join(map(str, problem.path)) or '(draft)'}: {problem.message}", err=True)
        sys.exit(EXIT_INVALID)
    except EngineError as exc:
        fail(exc.message, EXIT_INVALID)
    if not engine.dispatcher.flush(30.0):
        click.echo("warning: the broker did not take the enrichments in time; they are stored, and a worker's "
                   "recovery loop will queue them", err=True)
    with transaction(engine.readers) as session:
        out = read_observation(session, result.observation_id).data
    out["created"] = result.created
    echo_json(out)


@cli.command(help=with_examples(
    "Show an observation as JSON: fields, media, enrichments, flags, grade, status. When its enrichments have "
    "waited for a worker for more than a minute, says so on standard error.",
    "observatory show 1",
    "observatory show 1 | jq .enrichments",
))
@click.argument("observation_id", type=int)
@click.pass_context
def show(ctx: click.Context, observation_id: int) -> None:
    from core.db.session import transaction
    from core.doctor import waiting_for_worker
    from core.read_model import read_observation

    engine = engine_of(ctx)
    try:
        with transaction(engine.readers) as session:
            data = read_observation(session, observation_id).data
    except EngineError as exc:
        fail(exc.message)
    echo_json(data)
    hint = waiting_for_worker(data)
    if hint:
        click.echo(f"note: {hint}", err=True)


@cli.command(help=with_examples(
    "Publish, unpublish, trash or restore an observation (audited).",
    "observatory moderate 1 publish",
    "observatory moderate 1 trash --reason \"duplicate of 7\"",
))
@click.argument("observation_id", type=int)
@click.argument("action", type=click.Choice(["publish", "unpublish", "trash", "restore"]))
@click.option("--reason", default=None, help="why; kept in the audit log")
@click.pass_context
def moderate(ctx: click.Context, observation_id: int, action: str, reason: str | None) -> None:
    from core.moderation import moderate as apply

    try:
        old, new = apply(engine_of(ctx), observation_id, action, actor="cli", reason=reason)
    except EngineError as exc:
        fail(exc.message)
    click.echo(f"observation {observation_id}: {old} -> {new}")


@cli.command("export", help=with_examples(
    "Export a project's observations as CSV, GeoJSON or a Darwin Core Archive (dwca).",
    "observatory export demo -o demo.csv",
    "observatory export demo --excel --filter kind=odour --filter \"field.intensity>=4\" -o strong.csv",
    "observatory export demo --format dwca --gbif-only --out demo-dwca.zip",
))
@click.argument("project")
@click.option("--format", "fmt", type=click.Choice(["csv", "geojson", "dwca"]), default="csv", show_default=True,
              help="the format")
@click.option("--all", "everything", is_flag=True,
              help="every observation; CSV and GeoJSON with exact places and contributors (audited; default: "
                   "published only, as the public sees them)")
@click.option("--filter", "filters", multiple=True, metavar="NAME=VALUE",
              help="a filter of the observation list, e.g. status=published, field.count>=3 (repeatable)")
@click.option("--excel", is_flag=True, help="CSV for spreadsheets: UTF-8 byte order mark, ';' between cells")
@click.option("--gbif-only", is_flag=True, help="only observations under a licence GBIF accepts (CC0, CC BY, CC BY-NC)")
@click.option("--out", "--output", "-o", "out", default="-", metavar="FILE", show_default="standard output",
              help="where to write")
@click.pass_context
def export_command(ctx: click.Context, project: str, fmt: str, everything: bool, filters: tuple[str, ...],
                   excel: bool, gbif_only: bool, out: str) -> None:
    from core.dwca import archive
    from core.export import ExportOptions, export
    from core.filters import filter_params, parse_filters
    from core.lifecycle import get_project

    engine = engine_of(ctx)
    try:
        context = get_project(engine, project)
        params = filter_params(filters)
        options = ExportOptions(scope="all" if everything else "public", filters=parse_filters(engine, context, params),
                                filter_params=params, gbif_only=gbif_only, actor="cli")
        if fmt == "dwca":
            if out == "-" and sys.stdout.isatty():
                fail("a Darwin Core Archive is a zip: name a file with --out FILE", EXIT_INVALID)
            chunks: Any = archive(engine, context, options)
            target = sys.stdout.buffer if out == "-" else open(out, "wb")
        else:
            chunks = export(engine, context, fmt, options=options, excel=excel)
            target = sys.stdout if out == "-" else open(out, "w", encoding="utf-8", newline="")
        try:
            for chunk in chunks:
                target.write(chunk)
        finally:
            if out != "-":
                target.close()
    except EngineError as exc:
        fail(exc.message, EXIT_INVALID)


@cli.group(help=with_examples(
    "API tokens: create (printed once), list, revoke.",
    "observatory tokens create --role contributor --project demo --name \"my phone\"",
    "observatory tokens list",
))
def tokens() -> None:
    pass


@tokens.command("create", help=with_examples(
    "Make a token and print it once; only its hash is stored. With --account, a token of that account (narrowed "
    "by --project and --role if given); without, a new account with --role in --project (the quick way for a "
    "device or a script).",
    "TOKEN=$(observatory tokens create --role contributor --project demo --name \"my phone\")",
    "observatory tokens create --role operator --name \"ops laptop\"",
    "observatory tokens create --account 7 --project demo --role contributor",
))
@click.option("--role", default=None, type=click.Choice(["operator", "admin", "moderator", "expert", "contributor"]),
              help="without --account: the new account's role; with it: the highest role the token acts with")
@click.option("--project", default=None, help="the project the token is for")
@click.option("--account", "account_id", type=int, default=None, help="an existing account (observatory accounts list)")
@click.option("--name", default="", help="who or what the token is for")
@click.pass_context
def tokens_create(ctx: click.Context, role: str | None, project: str | None, account_id: int | None, name: str) -> None:
    from core.tokens import create_account_token, create_token

    try:
        if account_id is not None:
            new = create_account_token(engine_of(ctx), account_id, project=project, role=role, name=name)
        elif role is None:
            fail("name a --role (with --project), or an --account", EXIT_INVALID)
        else:
            new = create_token(engine_of(ctx), role, project, name)
    except EngineError as exc:
        fail(exc.message, EXIT_INVALID)
    click.echo(new.token)
    scope = f"{role or 'every role'}{' in ' + project if project else ''}"
    click.echo(f"token {new.id} of account {new.account_id} ({scope}); keep it now, it is not shown again", err=True)


@tokens.command("list", help=with_examples(
    "List tokens as JSON (never their secret).",
    "observatory tokens list",
    "observatory tokens list --account 7",
))
@click.option("--account", "account_id", type=int, default=None, help="only this account's tokens")
@click.pass_context
def tokens_list(ctx: click.Context, account_id: int | None) -> None:
    from core.tokens import list_tokens

    echo_json(list_tokens(engine_of(ctx), account_id))


@tokens.command("revoke", help=with_examples("Revoke a token by its id.", "observatory tokens revoke 3"))
@click.argument("token_id", type=int)
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: int) -> None:
    from core.tokens import revoke_token

    try:
        revoke_token(engine_of(ctx), token_id)
    except EngineError as exc:
        fail(exc.message)
    click.echo(f"token {token_id} revoked")


def engine_cli() -> ObservatoryGroup:
    """A new group with the engine's own commands (``core.cli`` and ``core.commands``), no plugin's."""
    from core.commands import register_all

    group = copy.copy(cli)
    group.commands = dict(cli.commands)  # plugins add to this copy, never to the module's group
    register_all(group)
    return group


def build_cli() -> click.Group:
    """The CLI: the engine's commands and every plugin's. When the settings, registry.yaml or a
    plugin is broken, only the engine's own (see ``ObservatoryGroup``)."""
    from core.plugins import build_host
    from core.registry import load_registry

    cli = engine_cli()
    try:
        settings = get_settings()
        host = build_host(load_registry(settings.registry_path), settings.plugin_modules, load=settings.load_plugins)
    except (RegistryError, PluginError) as exc:
        cli.startup_error = str(exc)
        return cli
    except ValidationError as exc:
        from core.doctor import settings_error

        cli.startup_error = settings_error(exc)
        return cli
    host.pm.hook.register_commands(cli=cli)
    return cli


def main() -> None:
    build_cli()(prog_name="observatory")


if __name__ == "__main__":
    main()
