"""What ``observatory doctor`` checks: settings, database, broker, media folder, plugins and
models. Each check is a plain function returning ``Check`` results; a problem always says
what to do about it (the command to run or the setting to change).

Nothing here starts the engine or creates anything: a broken installation is what it is for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.config import Settings, get_settings
from core.types import DoctorCheck

LOW_SPACE_BYTES = 1024**3  # a warning below this much free space for media
NO_SPACE_BYTES = 100 * 1024**2  # a problem below this
WAITING_AFTER_S = 60.0  # pending this long and never claimed: no worker is taking enrichments


class Check(DoctorCheck):
    """One finding of ``observatory doctor`` (``core.types.DoctorCheck``, which plugins return)."""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def settings_error(exc: ValidationError) -> str:
    """A settings error as the operator sets it: the environment variable and what is wrong."""
    parts = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"OBSERVATORY_{str(err['loc'][0]).upper()}: {message}" if err["loc"] else message)
    return "; ".join(parts)


def diagnose(timeout_s: float = 3.0) -> list[Check]:
    """Every check, in the order an operator fixes things; later checks that need the settings
    are skipped when the settings do not load."""
    settings, found = check_settings()
    if settings is None:
        return found
    found += check_database(settings, timeout_s)
    found += check_broker(settings, timeout_s)
    found += check_media(settings)
    plugin_checks, host = check_plugins(settings)
    found += plugin_checks
    if host is not None:
        found += check_plugin_findings(settings, host)
    return found


def has_problem(checks: list[Check]) -> bool:
    return any(c.level == "problem" for c in checks)


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable(path: Path) -> str | None:
    """Why files cannot be written in folder ``path`` (or in it once created); None if they can.
    Tried for real, so that it holds for whoever runs this, root included."""
    if path.exists() and not path.is_dir():
        return "is not a folder"
    folder = path if path.exists() else _existing_ancestor(path)
    if not folder.is_dir():
        return f"cannot be created ({folder} is not a folder)"
    try:
        fd, name = tempfile.mkstemp(prefix=".doctor-", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"is not writable ({reason})" if folder == path else f"cannot be created in {folder} ({reason})"
    os.close(fd)
    os.unlink(name)
    return None


def _size(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def check_settings() -> tuple[Settings | None, list[Check]]:
    """The settings load from the environment, and their data folder is writable."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        return None, [Check("settings", "problem", f"the settings do not load: {settings_error(exc)}",
                            "correct or unset the environment variable named above (docs/administrators.md)")]
    found = [Check("settings", "ok", f"settings load (environment {settings.environment})")]
    reason = unwritable(settings.data_dir)
    if reason:
        found.append(Check("settings", "problem", f"data folder {settings.data_dir} {reason}",
                           f"make {settings.data_dir} writable by the user that runs the engine, or set "
                           "OBSERVATORY_DATA_DIR to a writable folder"))
    else:
        state = "" if settings.data_dir.exists() else " (created on the first start)"
        found.append(Check("settings", "ok", f"data folder {settings.data_dir} is writable{state}"))
    return settings, found


# --------------------------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------------------------


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (an unparsable URL is reported by the connection attempt)
        return url


def _probe_engine(url: str, timeout_s: float) -> Any:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    connect_args: dict[str, Any] = {"timeout": timeout_s} if url.startswith("sqlite") else {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = max(1, round(timeout_s))
    return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)


def check_database(settings: Settings, timeout_s: float = 3.0) -> list[Check]:
    """The database answers, and its schema is at the newest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from core.db.migrate import alembic_config

    url = settings.database_url
    shown = _shown(url)
    upgrade = "observatory db upgrade"
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1] if "///" in url else ""
        if not path or path == ":memory:":
            return [Check("database", "warning", f"{shown} is in memory: everything is lost when the process ends",
                          "set OBSERVATORY_DATABASE_URL to a file (sqlite:///path) or a PostgreSQL database")]
        if not Path(path).is_file():
            return [Check("database", "problem", f"no database file at {path}", f"run `{upgrade}`")]
    try:
        db = _probe_engine(url, timeout_s)
        try:
            with db.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        finally:
            db.dispose()
    except Exception as exc:  # noqa: BLE001 (drivers raise their own kinds; the message says it)
        text = str(getattr(exc, "orig", None) or exc).strip()
        detail = text.splitlines()[0] if text else type(exc).__name__
        return [Check("database", "problem", f"cannot reach {shown}: {detail}",
                      "start the database server, or correct OBSERVATORY_DATABASE_URL")]
    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_current_head()
    if current == head:
        return [Check("database", "ok", f"{shown} is at revision {head}, the newest")]
    if current is None:
        return [Check("database", "problem", f"{shown} has no schema yet (no migration applied)", f"run `{upgrade}`")]
    if current in {rev.revision for rev in script.walk_revisions()}:
        return [Check("database", "problem", f"{shown} is at revision {current}; the newest is {head}",
                      f"run `{upgrade}`")]
    return [Check("database", "problem", f"{shown} is at revision {current}, which this engine's migrations do not "
                  f"know (a newer engine migrated it; this one's newest is {head})",
                  "run the engine version that migrated it (pip install -U observatory-engine), or point "
                  "OBSERVATORY_DATABASE_URL at this engine's database")]


# --------------------------------------------------------------------------------------------
# Broker
# --------------------------------------------------------------------------------------------


def check_broker(settings: Settings, timeout_s: float = 3.0) -> list[Check]:
    """The broker answers within ``timeout_s``; the embedded one's folders are writable."""
    from kombu.utils.url import maybe_sanitize_url

    url = settings.broker_url
    if url.startswith("filesystem"):
        found = []
        for sub in ("in", "processed", "control"):
            folder = settings.broker_folder / sub
            reason = unwritable(folder)
            if reason:
                found.append(Check("broker", "problem", f"broker folder {folder} {reason}",
                                   f"make {folder} writable by the user that runs the engine and its workers, "
                                   "or set OBSERVATORY_DATA_DIR to a writable folder"))
        return found or [Check("broker", "ok", f"embedded broker on the file system ({settings.broker_folder}): "
                               "its folders are writable")]
    shown = maybe_sanitize_url(url)
    try:
        from kombu import Connection

        with Connection(url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 (each transport raises its own kinds)
        return [Check("broker", "problem", f"cannot reach the broker {shown}: {exc}",
                      "start the broker (Redis or RabbitMQ), or correct OBSERVATORY_BROKER_URL (unset it for the "
                      "embedded broker of one machine)")]
    return [Check("broker", "ok", f"broker {shown} answers")]


# --------------------------------------------------------------------------------------------
# Media
# --------------------------------------------------------------------------------------------


def check_media(settings: Settings) -> list[Check]:
    """The media folder exists (or can be made), is writable, and its disk has room."""
    media = settings.media_dir
    assert media is not None
    reason = unwritable(media)
    if reason:
        fix = f"let the engine's user write in {media} (chown or chmod it)" if media.is_dir() else \
            f"create {media} (mkdir -p {media}) where the engine's user can write"
        return [Check("media", "problem", f"media folder {media} {reason}",
                      f"{fix}, or set OBSERVATORY_MEDIA_DIR to a writable folder")]
    free = shutil.disk_usage(_existing_ancestor(media)).free
    where = f"media folder {media}{'' if media.exists() else ' (created on the first start)'}"
    remedy = "free space on that disk, or set OBSERVATORY_MEDIA_DIR to a folder on a larger one"
    if free < NO_SPACE_BYTES:
        return [Check("media", "problem", f"{where}: only {_size(free)} free", remedy)]
    if free < LOW_SPACE_BYTES:
        return [Check("media", "warning", f"{where}: {_size(free)} free", remedy)]
    return [Check("media", "ok", f"{where} is writable, {_size(free)} free")]


# --------------------------------------------------------------------------------------------
# Plugins
# --------------------------------------------------------------------------------------------


def check_plugins(settings: Settings) -> tuple[list[Check], Any]:
    """registry.yaml is valid, every plugin loads, every service it offers is installed.
    Returns the checks and the plugin host (None when the plugins cannot be loaded)."""
    from core.plugins import ENTRY_POINT_GROUP, PluginError, build_host
    from core.registry import Registry, RegistryError, load_registry

    path = settings.registry_path
    try:
        registry = load_registry(path)
    except RegistryError as exc:
        return [Check("plugins", "problem", str(exc), f"correct {path} (every key: docs/registry.md)")], None
    try:
        host = build_host(registry, settings.plugin_modules, load=settings.load_plugins)
    except PluginError as exc:
        first = exc
    else:
        names = ", ".join(sorted(n for n in host.info if not host.is_default(n))) or "none"
        return [Check("plugins", "ok", f"plugins load ({names}); {path}: {len(registry.projects)} project(s), "
                      f"every service it offers installed")], host
    try:
        installed = build_host(Registry(), settings.plugin_modules, load=settings.load_plugins).info
    except PluginError as exc:
        return [Check("plugins", "problem", str(exc), "fix or uninstall the plugin it names (pip uninstall its "
                      "package), or take it out of OBSERVATORY_PLUGIN_MODULES")], None
    missing = [name for name in registry.services if name not in installed]
    if not missing:
        return [Check("plugins", "problem", str(first), "fix or uninstall the plugin it names, or correct "
                      f"{path}")], None
    return [Check("plugins", "problem", f"{path} offers the service {name!r} (enabled by "
                  f"{', '.join(registry.projects_enabling(name)) or 'no project'}) but no installed plugin provides it",
                  f"install the package that provides the entry point '{ENTRY_POINT_GROUP}: {name}' (pip install "
                  f"PACKAGE), or remove {name!r} from services and from the projects' services in {path}")
            for name in missing], None


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def check_plugin_findings(settings: Settings, host: Any) -> list[Check]:
    """What each plugin checks of itself (``doctor_checks`` hook: species_id its models, for
    example); a plugin whose check raises is a problem naming it."""
    found: list[Check] = []
    for called in host.call_each("doctor_checks", None, None, settings=settings, registry=host.registry):
        if called.error is not None:
            found.append(Check(called.plugin, "problem", f"the doctor check of plugin {called.plugin!r} failed: "
                               f"{type(called.error).__name__}: {called.error}",
                               "report it to the plugin's maintainers; `observatory plugins` shows its version"))
            continue
        found.extend(Check(c.area, c.level, c.message, c.remedy) for answer in called.result for c in answer or ())
    return found


# --------------------------------------------------------------------------------------------
# An observation waiting for a worker (observatory show)
# --------------------------------------------------------------------------------------------


def waiting_for_worker(observation: dict[str, Any], now: datetime | None = None,
                       after_s: float = WAITING_AFTER_S) -> str | None:
    """A plain sentence when ``observation`` (as ``core.views.observation_dict`` gives it) has
    enrichments that no worker has taken for more than ``after_s`` seconds since it was stored or
    last changed; None otherwise."""
    waiting = sorted(name for name, e in observation.get("enrichments", {}).items()
                     if e.get("status") == "pending" and not e.get("attempts"))
    if not waiting:
        return None
    since = datetime.fromisoformat(observation["updated_at"])
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    if ((now or datetime.now(timezone.utc)) - since).total_seconds() <= after_s:
        return None
    return (f"enrichments pending since {since.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC "
            f"({', '.join(waiting)}): no worker has taken them; start one with `observatory worker` "
            "(or check OBSERVATORY_BROKER_URL)")
