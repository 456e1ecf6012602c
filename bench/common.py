"""What the benchmarks share: the bench project, and temporary, migrated databases (made the
same way tests/conftest.py makes them)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from core.db.migrate import upgrade

TARGET = 0.5
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROJECT = "bench"
REGISTRY = f"""
services:
  noop:
    summary: enriches every observation with nothing (benchmark)
    settings: {{type: object}}
projects:
  - slug: {PROJECT}
    name: Bench
    timezone: Europe/Madrid
    services: {{noop: {{}}}}
"""


@contextmanager
def sqlite_database(folder: Path) -> Iterator[str]:
    url = f"sqlite:///{(folder / 'bench.db').as_posix()}"
    upgrade(url)
    yield url


@contextmanager
def postgresql_database(base_url: str) -> Iterator[str]:
    """A fresh database beside ``base_url``'s, migrated, dropped at the end (as tests/conftest.py does)."""
    name = f"obs_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = base_url.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
