"""Shared fixtures: a real database (SQLite by default, PostgreSQL with
OBSERVATORY_TEST_DATABASE_URL), a registry written per test, and an engine that runs
enrichments inline. Broker tests start real worker processes (tests/test_worker_e2e.py)."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from core.config import Settings, get_settings
from core.db.migrate import upgrade
from core.db.models import Base
from core.engine import Engine
from core.worker import InlineDispatcher

PG_ENV = "OBSERVATORY_TEST_DATABASE_URL"
TEST_PLUGINS = ",".join(
    f"{name}=tests.support.{name}" for name in ("flaky", "recorder", "sleepy")
)

BASE_REGISTRY = """
services:
  flaky:
    summary: fails the first N attempts
    config: {timeout_s: 5}
    settings:
      type: object
      properties:
        failures: {type: integer, minimum: 0, default: 1}
  recorder:
    summary: records which observations it saw
    settings: {type: object}
  sleepy:
    summary: sleeps
    config: {timeout_s: 2}
    settings:
      type: object
      properties:
        seconds: {type: number, default: 30}
projects:
  - slug: alpha
    name: Alpha
    timezone: Europe/Madrid
    services: {recorder: {}, flaky: {failures: 1}}
  - slug: beta
    name: Beta
    public: false
    services: {}
"""


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for the test session."""
    base = os.environ.get(PG_ENV)
    if not base:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url
        return
    name = f"obs_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _empty_tables(engine: Engine) -> None:
    with engine.db.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def write_registry(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "registry.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def settings_factory(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    def make(registry_text: str = BASE_REGISTRY, **overrides: Any) -> Settings:
        registry = tmp_path / "registry.yaml"
        registry.write_text(textwrap.dedent(registry_text))
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "registry_path": registry,
            "plugin_modules": TEST_PLUGINS,
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
    started: list[Engine] = []

    def make(registry_text: str = BASE_REGISTRY, **overrides: Any) -> Engine:
        engine = Engine.start(settings_factory(registry_text, **overrides), dispatcher=InlineDispatcher())
        _empty_tables(engine)
        started.append(engine)
        return engine

    yield make
    for engine in started:
        engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real photos from scikit-image, encoded as JPEG and PNG."""
    import cv2
    import skimage.data

    out = {}
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        rgb = getattr(skimage.data, name)()
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        out[f"{name}.jpg"] = buf.tobytes()
    ok, buf = cv2.imencode(".png", skimage.data.camera())
    out["camera.png"] = buf.tobytes()
    return out


def draft(**overrides: Any) -> dict[str, Any]:
    """A valid draft; keyword arguments replace its parts."""
    base: dict[str, Any] = {
        "observed_at": "2026-05-01T09:30:00+02:00",
        "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 8},
        "fields": {"note": "a fox crossing the path"},
    }
    base.update(overrides)
    return base
