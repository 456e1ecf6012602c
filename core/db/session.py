"""Database engines and sessions: SQLite (WAL, foreign keys on) by default, PostgreSQL when
``OBSERVATORY_DATABASE_URL`` says so."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    try:  # SQLite built without its math functions: core.privacy snaps places with floor()
        cursor.execute("SELECT floor(0.5)")
    except Exception:
        dbapi_connection.create_function("floor", 1, _floor, deterministic=True)
    cursor.close()


def _floor(value: float | None) -> float | None:
    return None if value is None else float(math.floor(value))


def _begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("readonly") else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` is mapped to psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; a writing transaction takes the write
        # lock up front instead, so concurrent writers wait on busy_timeout rather than fail on
        # lock upgrade. A reading one (execution option readonly) begins deferred: WAL lets it
        # read beside the writer.
        event.listen(engine, "begin", _begin)

        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``readonly`` ones never take SQLite's write lock."""
    bind = engine.execution_options(readonly=True) if readonly else engine
    return sessionmaker(bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed at the end of the block, or rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
