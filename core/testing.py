"""The engine's test kit: pytest fixtures and helpers for any package that plugs into the engine.

Installed with the engine as a pytest plugin (entry point ``pytest11: observatory``), so a
plugin's own package gets these fixtures with no import and no conftest; ``pytest -p
no:observatory`` turns it off. The engine's own tests use it too (``tests/conftest.py``
overrides ``registry`` and ``plugins``). ``pytest --fixtures`` shows each one's docstring.

A package overrides ``registry`` (the registry.yaml text its engines start on) and, for modules
that are not installed, ``plugins``; its installed plugin (entry point ``observatory``) is
found as in production::

    @pytest.fixture
    def registry():
        return "services: {birds: {summary: birds}}\\nprojects: [{slug: demo, name: Demo, services: {birds: {}}}]"

    def test_the_flag_shows(client):
        obs = wait_for_enrichments(client, submit(client, "demo", draft())["id"])
        assert [f["code"] for f in obs["flags"]] == ["birds_seen"]

Fixtures: ``registry``, ``plugins``, ``database_url``, ``settings_factory``, ``write_registry``,
``make_engine``, ``engine``, ``app``, ``client``, ``make_token``, ``auth``, ``live_worker``,
``photos``. Helpers: ``draft``, ``submit``, ``wait_for_enrichments``, ``bearer``,
``LiveWorker``.

This module imports only the standard library and pytest at import time (it loads in every
pytest run of the environment); the engine is imported inside the fixtures.
"""

from __future__ import annotations

import mimetypes
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import pytest

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from core.config import Settings
    from core.engine import Dispatcher, Engine

PG_ENV = "OBSERVATORY_TEST_DATABASE_URL"
API = "/api/v1"

DEFAULT_REGISTRY = """
services: {}
projects:
  - slug: demo
    name: Demo
    timezone: Europe/Madrid
    services: {}
"""

Media = Mapping[str, bytes] | Iterable[tuple[str, bytes]]


# -- helpers ------------------------------------------------------------------------------------


def draft(**overrides: Any) -> dict[str, Any]:
    """A valid draft (what an app submits); keyword arguments replace its parts, e.g.
    ``draft(fields={"species": "Vulpes vulpes"}, client_id="phone-1")``."""
    base: dict[str, Any] = {
        "observed_at": "2026-05-01T09:30:00+02:00",
        "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 8},
        "fields": {"note": "a fox crossing the path"},
    }
    base.update(overrides)
    return base


def bearer(token: str | None) -> dict[str, str]:
    """The headers that present ``token``; none for an anonymous caller (None)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _media_items(media: Media | None) -> list[tuple[str, bytes, str]]:
    items = media.items() if isinstance(media, Mapping) else (media or [])
    return [(name, data, mimetypes.guess_type(name)[0] or "application/octet-stream") for name, data in items]


def _is_client(target: Any) -> bool:
    return hasattr(target, "app") and hasattr(target, "post")


def _engine_of(target: Engine | TestClient) -> Engine:
    return target.app.state.engine if _is_client(target) else target  # type: ignore[union-attr]


def _token(target: TestClient, role: str, project: str | None) -> str:
    from core.tokens import create_token

    return create_token(_engine_of(target), role, project, f"test kit {role}").token


def _read(engine: Engine, observation_id: int) -> dict[str, Any]:
    from core.db.session import transaction
    from core.read_model import read_observation

    with transaction(engine.readers) as session:
        return read_observation(session, observation_id).data


def submit(
    target: Engine | TestClient,
    project: str,
    data: Mapping[str, Any] | None = None,
    *,
    media: Media | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Submit ``data`` (``draft()`` by default) to ``project`` and return the stored observation.

    ``target`` is an engine (``core.lifecycle.submit``, no contributor) or the ``client``
    fixture (``POST /api/v1/projects/{project}/observations`` as ``token``; a new contributor
    token of ``project`` when None; multipart when there is media). ``media`` maps file names
    to bytes (e.g. ``{"chelsea.jpg": photos["chelsea.jpg"]}``). A refusal raises: the engine's
    ``ValidationFailed``, or an AssertionError with the API's answer.
    """
    import json

    body = dict(data if data is not None else draft())
    files = _media_items(media)
    if not _is_client(target):
        from core import lifecycle

        uploads = [lifecycle.Upload(content, name, kind) for name, content, kind in files]
        result = lifecycle.submit(target, project, body, uploads, actor="test")  # type: ignore[arg-type]
        return _read(target, result.observation_id)  # type: ignore[arg-type]
    client: Any = target
    headers = bearer(token or _token(target, "contributor", project))
    url = f"{API}/projects/{project}/observations"
    if files:
        response = client.post(url, data={"draft": json.dumps(body)}, headers=headers,
                               files=[("media", item) for item in files])
    else:
        response = client.post(url, json=body, headers=headers)
    assert response.status_code in (200, 201), f"POST {url} answered {response.status_code}: {response.text}"
    return response.json()


def wait_for_enrichments(
    target: Engine | TestClient, observation_id: int, *, token: str | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll until the observation's enrichments have all ended (done or failed) and it is
    graded; return it. Fails the test after ``timeout`` seconds, naming what was still waiting.

    ``target`` is an engine (read from the database) or the ``client`` fixture (``GET
    /api/v1/observations/{id}`` as ``token``; a new operator token when None). With the inline
    worker (the default) the observation is already complete when ``submit`` returns; with
    ``live_worker`` this waits for the worker process.
    """
    if _is_client(target):
        headers = bearer(token or _token(target, "operator", None))

        def read() -> dict[str, Any]:
            response = target.get(f"{API}/observations/{observation_id}", headers=headers)  # type: ignore[union-attr]
            assert response.status_code == 200, f"GET observation {observation_id}: {response.text}"
            return response.json()
    else:
        def read() -> dict[str, Any]:
            return _read(target, observation_id)  # type: ignore[arg-type]

    deadline = time.monotonic() + timeout
    while True:
        obs = read()
        waiting = {name: e["status"] for name, e in obs["enrichments"].items() if e["status"] not in ("done", "failed")}
        if not waiting and obs["grade"] is not None:
            return obs
        if time.monotonic() > deadline:
            pytest.fail(f"observation {observation_id} still waits after {timeout} s: enrichments {waiting or 'ended'}, "
                        f"grade {obs['grade']!r} (is a worker running? the live_worker fixture starts one)")
        time.sleep(0.1)


def sample_photos() -> dict[str, bytes]:
    """Real photos shipped with scikit-image, encoded with OpenCV: four JPEGs and a PNG."""
    import cv2
    import skimage.data

    out = {}
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        rgb = getattr(skimage.data, name)()
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        out[f"{name}.jpg"] = buf.tobytes()
    ok, buf = cv2.imencode(".png", skimage.data.camera())
    assert ok
    out["camera.png"] = buf.tobytes()
    return out


def _plugin_modules(plugins: str | Mapping[str, str]) -> str:
    if isinstance(plugins, Mapping):
        return ",".join(f"{name}={module}" for name, module in plugins.items())
    return plugins


_delete_order: dict[tuple[str, frozenset[str]], list[str]] = {}


def empty_tables(engine: Engine) -> None:
    """Delete every row of the engine's database, plugins' own tables included (the schema and
    the migration revision stay)."""
    import sqlalchemy as sa

    names = frozenset(sa.inspect(engine.db).get_table_names()) - {"alembic_version"}
    key = (engine.settings.database_url, names)
    if key not in _delete_order:  # read once per set of tables: references first, then what they reference
        metadata = sa.MetaData()
        metadata.reflect(engine.db, only=sorted(names))
        _delete_order[key] = [table.name for table in reversed(metadata.sorted_tables)]
    with engine.db.begin() as conn:
        for name in _delete_order[key]:
            conn.execute(sa.table(name).delete())


class LiveWorker:
    """Real ``observatory worker`` processes, started with the environment the test's settings
    wrote (``settings_factory`` sets ``OBSERVATORY_*``); their output goes to files in
    ``log_dir``."""

    def __init__(self, env: dict[str, str], log_dir: Path, cwd: Path | None = None):
        self.env, self.log_dir, self.cwd = env, log_dir, cwd
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int = 1) -> subprocess.Popen[bytes]:
        """Start one more worker process."""
        log = (self.log_dir / f"worker-{len(self.procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--concurrency", str(concurrency), "--loglevel", "INFO"],
            env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a worker and its pool processes, and wait for it to end."""
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop every worker still running (SIGTERM, then SIGKILL after 15 s)."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)

    def logs(self) -> str:
        """The end of every worker's output, for a failure message."""
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.log_dir.glob("worker-*.log")))


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def registry() -> str:
    """The registry.yaml text that ``make_engine()`` and ``engine`` start on. The kit's: one
    project ``demo`` (Europe/Madrid) with no service. Override it in your package's conftest.py
    to offer your service and enable it."""
    return DEFAULT_REGISTRY


@pytest.fixture
def plugins() -> str:
    """Extra plugin modules to load, ``"name=module.path,..."`` (``OBSERVATORY_PLUGIN_MODULES``).
    Empty by default: installed plugins (entry points ``observatory``) are found on their own."""
    return ""


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once for the test session: a SQLite file in a temporary folder, or a
    new database on the PostgreSQL server of ``OBSERVATORY_TEST_DATABASE_URL`` (dropped at the
    end). ``make_engine`` empties it for every test."""
    from core.db.migrate import upgrade

    base = os.environ.get(PG_ENV)
    if not base:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url
        return
    import sqlalchemy as sa

    name = f"obs_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def write_registry(tmp_path: Path) -> Callable[[str], Path]:
    """``write_registry(text) -> Path``: writes ``text`` (dedented) as the test's registry.yaml."""

    def write(text: str) -> Path:
        path = tmp_path / "registry.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def settings_factory(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, registry: str, plugins: str,
    write_registry: Callable[[str], Path],
) -> Iterator[Callable[..., Settings]]:
    """``settings_factory(registry_text=None, **settings) -> Settings``: settings for a test.

    The registry is ``registry_text`` (the ``registry`` fixture's when None), written to the
    test's folder; the database is ``database_url``; data, media and the file-system broker go
    under ``tmp_path / "data"``; ``plugins`` are loaded as ``plugin_modules``. Keyword arguments
    override any setting (``plugin_modules=``, ``broker_url=``...). Each value is also set as
    ``OBSERVATORY_*`` for the test, so processes it starts (CLI, workers) see the same."""
    from core.config import Settings, get_settings

    def make(registry_text: str | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "registry_path": write_registry(registry if registry_text is None else registry_text),
            "plugin_modules": plugins,
            "enrich_retry_backoff_s": 0.01,
            **overrides,
        }
        for key, value in values.items():
            monkeypatch.setenv(f"OBSERVATORY_{key.upper()}", str(value))
        get_settings.cache_clear()
        return Settings(**values)

    yield make
    get_settings.cache_clear()


@pytest.fixture
def make_engine(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., Engine]]:
    """``make_engine(registry_text=None, *, plugins=None, dispatcher=None, **settings) -> Engine``.

    Starts an engine on ``registry_text`` (the ``registry`` fixture's when None) over emptied
    tables. ``plugins`` (``"name=module"`` text or a ``{name: module}`` mapping) replaces the
    ``plugins`` fixture's modules; ``dispatcher`` defaults to an ``InlineDispatcher`` (enrichments,
    checks and grading run inside ``submit``, retries included); other keywords are settings.
    A registry or plugin error raises as at start-up (``RegistryError``, ``PluginError``).
    Every engine made is closed after the test."""
    from core.engine import Engine
    from core.dispatch import InlineDispatcher

    started: list[Engine] = []

    def make(registry_text: str | None = None, *, plugins: str | Mapping[str, str] | None = None,
             dispatcher: Dispatcher | None = None, **settings: Any) -> Engine:
        if plugins is not None:
            settings["plugin_modules"] = _plugin_modules(plugins)
        engine = Engine.start(settings_factory(registry_text, **settings), dispatcher=dispatcher or InlineDispatcher())
        started.append(engine)
        empty_tables(engine)
        return engine

    yield make
    for engine in started:
        engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    """An engine on the ``registry`` fixture, over emptied tables, running enrichments inline."""
    return make_engine()


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    """The engine's FastAPI application (``core.api.app.create_app``) on ``engine``, plugins'
    routes included."""
    from core.api.app import create_app

    return create_app(engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An in-process HTTP client of ``app`` (FastAPI's TestClient; paths start with ``/api/v1``).
    ``raise_server_exceptions`` is off, so a bug answers 500 as it would to an app."""
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_token(engine: Engine) -> Callable[..., str]:
    """``make_token(role, project=None, name="") -> str``: a new API token (and account) with
    ``role`` (operator, admin, moderator, expert, contributor) in ``project``
    (``core.tokens.create_token``); send it with ``auth(token)``."""

    def make(role: str, project: str | None = None, name: str = "") -> str:
        from core.tokens import create_token

        return create_token(engine, role, project, name or f"test {role} {project or ''}".strip()).token

    return make


@pytest.fixture
def auth() -> Callable[[str | None], dict[str, str]]:
    """``auth(token) -> headers``; ``auth(None)`` gives no header (anonymous)."""
    return bearer


@pytest.fixture
def live_worker(engine: Engine, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveWorker]:
    """A real worker: ``observatory worker`` in a separate process, on the test's broker (the
    file-system transport under ``tmp_path`` unless a ``broker_url`` setting says otherwise).

    ``engine`` (and so ``client``) queues its enrichments to it from then on instead of running
    them inline; wait for them with ``wait_for_enrichments``. ``live_worker.logs()`` shows its
    output, ``live_worker.start()`` adds a process. Stopped after the test."""
    from core.dispatch import CeleryDispatcher

    engine.dispatcher = CeleryDispatcher()
    env = dict(os.environ)
    paths = [str(request.config.rootpath), os.getcwd(), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))  # plugin_modules import there too
    worker = LiveWorker(env, tmp_path, cwd=Path.cwd())
    worker.start()
    try:
        yield worker
    finally:
        engine.dispatcher.flush(5.0)
        worker.stop()


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """Real photos (``sample_photos``): ``chelsea.jpg``, ``coffee.jpg``, ``astronaut.jpg``,
    ``rocket.jpg`` and ``camera.png``, as bytes."""
    return sample_photos()
