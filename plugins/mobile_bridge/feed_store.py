"""The change feed's tables and the reads and writes on them.

An entry goes to one account; its id is the account's cursor. Entries of one account are
written under a lock on that account's row of ``mobile_feed_heads``, so on PostgreSQL too an
entry's id is taken only after every earlier entry of the account has committed: a reader
that has seen id N never meets a new entry below N (a client's cursor never skips one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import (JSON, Column, Index, Integer, String, Table, func, select, update)
from sqlalchemy.orm import Session

from core.db.models import UTCDateTime, utcnow
from core.db.session import transaction
from core.engine import Engine
from plugins.mobile_bridge.db import metadata

TYPES = ("results", "grade", "moderation", "comment", "identification", "deleted")

feed = Table(
    "mobile_feed", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False),
    Column("observation_id", Integer, nullable=False),
    Column("project", String(100), nullable=False),
    Column("type", String(20), nullable=False),
    Column("payload", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=True),
    Index("ix_mobile_feed_account_id", "account_id", "id"),
    sqlite_autoincrement=True,  # ids are cursors: never reused, even after the newest is deleted
)

heads = Table(
    "mobile_feed_heads", metadata,
    Column("account_id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Integer, nullable=True),
)

follows = Table(
    "mobile_follows", metadata,
    Column("account_id", Integer, primary_key=True, autoincrement=False),
    Column("observation_id", Integer, primary_key=True, autoincrement=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_mobile_follows_observation", "observation_id"),
)

told = Table(
    "mobile_feed_told", metadata,
    Column("observation_id", Integer, primary_key=True, autoincrement=False),
    Column("grade", String(20), nullable=True),
    Column("results_digest", String(64), nullable=True),
)
"""What the feed last said of an observation's assessment: a new one is told only when it differs."""


@dataclass(frozen=True)
class NewEntry:
    account_id: int
    type: str
    payload: dict[str, Any] | None


def insert_ignore(session: Session, table: Table, values: list[dict[str, Any]]) -> None:
    """Insert rows, skipping those whose key exists (SQLite and PostgreSQL)."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).values(values).on_conflict_do_nothing())


def add_entries(session: Session, observation_id: int, project: str, entries: Iterable[NewEntry]) -> list[dict[str, Any]]:
    """Write ``entries`` in the caller's transaction; returns them as rows (with their ids)."""
    entries = list(entries)
    if not entries:
        return []
    accounts = sorted({e.account_id for e in entries})
    insert_ignore(session, heads, [{"account_id": a, "last_id": None} for a in accounts])
    # in account order, so that two writers never wait on each other crosswise
    session.execute(select(heads.c.account_id).where(heads.c.account_id.in_(accounts))
                    .order_by(heads.c.account_id).with_for_update())
    now = utcnow()
    rows = []
    for entry in entries:
        row = {"account_id": entry.account_id, "observation_id": observation_id, "project": project,
               "type": entry.type, "payload": entry.payload, "created_at": now, "seen_at": None}
        row["id"] = session.execute(feed.insert().values(row)).inserted_primary_key[0]
        session.execute(update(heads).where(heads.c.account_id == entry.account_id).values(last_id=row["id"]))
        rows.append(row)
    return rows


def entry_json(row: Any) -> dict[str, Any]:
    """An entry as the API, the event stream and webhooks show it."""
    data = row._mapping if hasattr(row, "_mapping") else row
    return {"id": data["id"], "type": data["type"], "observation_id": data["observation_id"],
            "project": data["project"], "created_at": _iso(data["created_at"]), "seen": data["seen_at"] is not None,
            "data": data["payload"]}


def _iso(value: datetime) -> str:
    return value.isoformat()


def entries_after(engine: Engine, account_id: int, cursor: int, limit: int) -> list[dict[str, Any]]:
    """The account's entries after ``cursor``, oldest first, at most ``limit``."""
    with transaction(engine.readers) as session:
        rows = session.execute(select(feed).where(feed.c.account_id == account_id, feed.c.id > cursor)
                               .order_by(feed.c.id).limit(limit)).all()
    return [entry_json(r) for r in rows]


def unread_count(engine: Engine, account_id: int) -> int:
    with transaction(engine.readers) as session:
        return int(session.scalar(select(func.count()).select_from(feed)
                                  .where(feed.c.account_id == account_id, feed.c.seen_at.is_(None))) or 0)


def last_id(engine: Engine, account_id: int) -> int:
    """The account's newest entry id (0 when it has none): where a stream with no cursor starts."""
    with transaction(engine.readers) as session:
        return int(session.scalar(select(func.max(feed.c.id)).where(feed.c.account_id == account_id)) or 0)


def mark_seen(engine: Engine, account_id: int, up_to: int) -> int:
    """Mark the account's unseen entries up to ``up_to`` (included) seen; returns how many."""
    with transaction(engine.sessions) as session:
        return session.execute(
            update(feed).where(feed.c.account_id == account_id, feed.c.id <= up_to, feed.c.seen_at.is_(None))
            .values(seen_at=utcnow())).rowcount


def followers(session: Session, observation_id: int) -> list[int]:
    return list(session.scalars(select(follows.c.account_id).where(follows.c.observation_id == observation_id)
                                .order_by(follows.c.account_id)))


def follow(engine: Engine, account_id: int, observation_id: int) -> None:
    with transaction(engine.sessions) as session:
        insert_ignore(session, follows, [{"account_id": account_id, "observation_id": observation_id,
                                          "created_at": utcnow()}])


def unfollow(engine: Engine, account_id: int, observation_id: int) -> None:
    with transaction(engine.sessions) as session:
        session.execute(follows.delete().where(follows.c.account_id == account_id,
                                               follows.c.observation_id == observation_id))
