"""Push sync's storage: every item an app sends is received once (``mobile_sync_items``, unique by
project and uuid), waits there while media it names are missing (``awaiting_media``: not an
observation yet, never published nor enriched), and is stored with ``core.lifecycle.submit_many``
(client_id = the uuid) once they are all here. Media sent inside a sync request are kept in the
media store and remembered per account (``mobile_sync_media``); media uploaded with tus are found
through ``plugins.mobile_bridge.tus.uploaded_media``.

Retries, whole or in part, in any order, from several connections at once, store nothing twice:
the item row is inserted or read (its unique constraint), and the observation is inserted or read
(core's unique (project, client_id)). An item checks for its media after its row is committed, and
``media_arrived`` looks for waiting rows after the file is committed, so whichever comes last sees
the other and the item is never left waiting for a file that has arrived.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import (JSON, BigInteger, Column, Float, Index, Integer, PrimaryKeyConstraint, String, Table,
                        UniqueConstraint, and_, bindparam, delete, select, update)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core import lifecycle
from core.db.models import Observation, UTCDateTime, utcnow
from core.engine import Engine
from core.types import Problem, ProjectContext
from plugins.mobile_bridge.db import metadata

AWAITING, CREATED, REJECTED = "awaiting_media", "created", "rejected"

ITEMS = Table(
    "mobile_sync_items", metadata,
    Column("id", Integer, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("uuid", String(64), nullable=False),
    Column("account_id", Integer, nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("draft", JSON, nullable=False),
    Column("media", JSON, nullable=False),
    Column("form_version", String(64), nullable=True),
    Column("problems", JSON, nullable=True),
    Column("observation_id", Integer, nullable=True, index=True),
    Column("device_created_at", UTCDateTime, nullable=False),
    Column("device_sent_at", UTCDateTime, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("clock_offset_s", Float, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project", "uuid", name="uq_mobile_sync_item"),
)
"""One row per item received: its device times and receipt time, and what became of it."""

WAITS = Table(
    "mobile_sync_waits", metadata,
    Column("item_id", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    PrimaryKeyConstraint("item_id", "sha256"),
    Index("ix_mobile_sync_waits_sha256", "sha256"),
)
"""The media an item awaiting media names (deleted once it is stored)."""

RECEIVED_MEDIA = Table(
    "mobile_sync_media", metadata,
    Column("account_id", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("account_id", "sha256"),
)
"""Media files an account sent inside sync requests (the bytes are in the engine's media store)."""


@dataclass
class Incoming:
    """One item of a batch whose shape is right: what it asks to store."""

    index: int
    uuid: str
    draft: dict[str, Any]
    media: list[dict[str, Any]]
    device_created_at: datetime
    device_sent_at: datetime | None
    form_version: str | None
    digest: str = ""

    def __post_init__(self) -> None:
        self.digest = digest_of(self.draft, self.media)


@dataclass
class Answer:
    """What the sync answers about one item."""

    index: int
    uuid: str | None
    status: str
    observation_id: int | None = None
    problems: list[dict[str, Any]] | None = None
    missing: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "uuid": self.uuid, "status": self.status}
        if self.observation_id is not None:
            out["observation_id"] = self.observation_id
        if self.problems is not None:
            out["problems"] = self.problems
        if self.missing is not None:
            out["missing"] = self.missing
        return out


@dataclass
class _Row:
    id: int
    uuid: str
    account_id: int
    state: str
    digest: str
    draft: dict[str, Any]
    media: list[dict[str, Any]]
    form_version: str | None
    problems: list[dict[str, Any]] | None
    observation_id: int | None


@dataclass
class _ToStore:
    row: _Row
    index: int | None = None
    uploads: list[lifecycle.Upload] = field(default_factory=list)


def digest_of(draft: dict[str, Any], media: list[dict[str, Any]]) -> str:
    """What tells a retry (the same content) from other content under one uuid."""
    text = json.dumps({"draft": draft, "media": media}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def problem_dict(problem: Problem, form_version: str | None = None, current_version: str | None = None) -> dict[str, Any]:
    """A problem as the sync answers it; an item made with an older form says so in the message."""
    message = problem.message
    out: dict[str, Any] = {"path": [str(p) if not isinstance(p, int) else p for p in problem.path],
                           "message": message, "code": problem.code}
    if form_version is not None and current_version is not None and form_version != current_version:
        out["message"] = f"{message} (the item was made with form version {form_version}; " \
                         f"the current form is version {current_version})"
        out["form_version"] = form_version
    return out


def _insert(engine: Engine) -> Any:
    return pg_insert if engine.db.dialect.name == "postgresql" else sqlite_insert


def _rows(conn: Any, where: Any) -> list[_Row]:
    c = ITEMS.c
    result = conn.execute(select(c.id, c.uuid, c.account_id, c.state, c.digest, c.draft, c.media, c.form_version,
                                 c.problems, c.observation_id).where(where))
    return [_Row(*r) for r in result]


def clock_offset(received_at: datetime, created_at: datetime, sent_at: datetime | None) -> float | None:
    """How far ahead (+) or behind (-) the device's clock was, as far as its times tell: its time of
    sending against the receipt; without one, only a creation time in the future tells anything."""
    if sent_at is not None:
        return (sent_at - received_at).total_seconds()
    ahead = (created_at - received_at).total_seconds()
    return ahead if ahead > 0 else None


# -- receiving -------------------------------------------------------------------------------------


def receive(engine: Engine, project: ProjectContext, account_id: int, items: list[Incoming],
            uploads: dict[str, lifecycle.Upload], answers: dict[int, Answer]) -> None:
    """Settle each item of ``items`` (fills ``answers`` by index): insert or read its row, then store
    it if its media are all here, or leave it awaiting them."""
    items, twins = _without_twins(items, answers)
    if not items:
        return
    _remember_media(engine, account_id, items, uploads)
    rows = _insert_or_read(engine, project.slug, account_id, items)
    settled: list[tuple[Incoming, _Row]] = []
    for item in items:
        row = rows[item.uuid]
        if row.account_id != account_id or (row.state == CREATED and row.digest != item.digest):
            answers[item.index] = _conflict(item)
        elif row.state == CREATED:
            answers[item.index] = Answer(item.index, item.uuid, "duplicate", row.observation_id)
        else:
            settled.append((item, row))
    present = present_media(engine, account_id, {m["sha256"] for item, _ in settled for m in item.media}, uploads)
    to_store, waiting = [], []
    for item, row in settled:
        missing = sorted({m["sha256"] for m in item.media} - set(present))
        if missing:
            waiting.append((item, row, missing))
        else:
            to_store.append(_ToStore(row, item.index, [_upload(present[m["sha256"]], m) for m in item.media]))
    _settle_waiting(engine, project, waiting, answers)
    for answer in store(engine, project, to_store):
        answers[answer.index] = answer
    for index, first_index in twins.items():  # a repeat answers as the first did, a duplicate of what it made
        first = answers[first_index]
        status = "duplicate" if first.status == "created" else first.status
        answers[index] = Answer(index, first.uuid, status, first.observation_id, first.problems, first.missing)


def _without_twins(items: list[Incoming], answers: dict[int, Answer]) -> tuple[list[Incoming], dict[int, int]]:
    """The items whose uuid comes first in the batch, and the later ones with the same content
    (index -> the first's index); a later one with other content is answered as a conflict."""
    first: dict[str, Incoming] = {}
    unique, twins = [], {}
    for item in items:
        earlier = first.get(item.uuid)
        if earlier is None:
            first[item.uuid] = item
            unique.append(item)
        elif earlier.digest != item.digest:
            answers[item.index] = _conflict(item)
        else:
            twins[item.index] = earlier.index
    return unique, twins


def _conflict(item: Incoming) -> Answer:
    conflict = lifecycle.client_id_conflict(item.uuid)
    return Answer(item.index, item.uuid, "rejected", problems=[{
        "path": ["uuid"], "code": conflict.code,
        "message": f"uuid {item.uuid!r} is already used in this project with other content; an observation "
                   "once created is changed with PATCH /api/v1/mobile/observations/{id}, a new one needs a new uuid"}])


def _insert_or_read(engine: Engine, slug: str, account_id: int, items: list[Incoming]) -> dict[str, _Row]:
    """Each item's row: inserted if new, else the one stored; a row not yet stored as an observation
    takes the item's content when it differs (the newest sync of an unsent item holds)."""
    now = utcnow()
    values = [{"project": slug, "uuid": i.uuid, "account_id": account_id, "state": AWAITING, "digest": i.digest,
               "draft": i.draft, "media": i.media, "form_version": i.form_version, "problems": None,
               "observation_id": None, "device_created_at": i.device_created_at, "device_sent_at": i.device_sent_at,
               "received_at": now, "clock_offset_s": clock_offset(now, i.device_created_at, i.device_sent_at),
               "updated_at": now} for i in items]
    by_uuid = {i.uuid: i for i in items}
    # rows are locked in one order (uuid for the inserts, id for the updates) by every connection:
    # two syncs of overlapping batches in other orders would otherwise deadlock on PostgreSQL
    values.sort(key=lambda v: v["uuid"])
    with engine.db.begin() as conn:
        conn.execute(_insert(engine)(ITEMS).on_conflict_do_nothing(), values)
        rows = {r.uuid: r for r in _rows(conn, and_(ITEMS.c.project == slug, ITEMS.c.uuid.in_(list(by_uuid))))}
        for row in sorted(rows.values(), key=lambda r: r.id):
            item = by_uuid[row.uuid]
            if row.account_id == account_id and row.state != CREATED and row.digest != item.digest:
                changed = conn.execute(update(ITEMS).where(ITEMS.c.id == row.id, ITEMS.c.state != CREATED).values(
                    state=AWAITING, digest=item.digest, draft=item.draft, media=item.media,
                    form_version=item.form_version, problems=None, updated_at=now)).rowcount
                if changed:
                    conn.execute(delete(WAITS).where(WAITS.c.item_id == row.id))
                    row.state, row.digest, row.draft, row.media = AWAITING, item.digest, item.draft, item.media
                    row.form_version, row.problems = item.form_version, None
        waits = [{"item_id": r.id, "sha256": m["sha256"]} for r in rows.values() if r.state == AWAITING
                 and r.account_id == account_id for m in r.media]
        if waits:
            conn.execute(_insert(engine)(WAITS).on_conflict_do_nothing(),
                         sorted(_unique(waits), key=lambda w: (w["item_id"], w["sha256"])))
    return rows


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({tuple(r.values()): r for r in rows}.values())


def _settle_waiting(engine: Engine, project: ProjectContext, waiting: list[tuple[Incoming, _Row, list[str]]],
                    answers: dict[int, Answer]) -> None:
    """Items still missing media: checked now without them (an app learns of a bad field at once),
    then left awaiting, or marked rejected."""
    if not waiting:
        return
    _valid, refused = lifecycle.validate_many(engine, project.slug, [(row.draft, [], row.account_id)
                                                                      for _item, row, _missing in waiting])
    rejected = []
    current = _current_form_version(engine, project, [row for _item, row, _missing in waiting])
    for position, (item, row, missing) in enumerate(waiting):
        if position in refused:
            problems = [problem_dict(p, row.form_version, current) for p in refused[position]]
            rejected.append({"item_id": row.id, "problems": problems})
            answers[item.index] = Answer(item.index, item.uuid, "rejected", problems=problems)
        else:
            answers[item.index] = Answer(item.index, item.uuid, AWAITING, missing=missing)
    if rejected:
        _mark_rejected(engine, rejected)


def _current_form_version(engine: Engine, project: ProjectContext, rows: Iterable[_Row]) -> str | None:
    if not any(r.form_version for r in rows):
        return None
    from plugins.mobile_bridge.forms import form_version

    return form_version(engine, project)


def _mark_rejected(engine: Engine, rejected: list[dict[str, Any]]) -> None:
    with engine.db.begin() as conn:
        conn.execute(update(ITEMS).where(ITEMS.c.id == bindparam("item_id"), ITEMS.c.state != CREATED)
                     .values(state=REJECTED, problems=bindparam("problems"), updated_at=utcnow()), rejected)
        conn.execute(delete(WAITS).where(WAITS.c.item_id.in_([r["item_id"] for r in rejected])))


# -- media -----------------------------------------------------------------------------------------


def _remember_media(engine: Engine, account_id: int, items: list[Incoming], uploads: dict[str, lifecycle.Upload]) -> None:
    """Keep the files sent inside the request that its items name (others are ignored), so an item
    that still waits for another file need not send these again."""
    named = {m["sha256"] for item in items for m in item.media}
    kept = [sha for sha in uploads if sha in named]
    if not kept:
        return
    for sha in kept:
        engine.media.put(uploads[sha].data)
    now = utcnow()
    with engine.db.begin() as conn:
        conn.execute(_insert(engine)(RECEIVED_MEDIA).on_conflict_do_nothing(), [
            {"account_id": account_id, "sha256": sha, "size": len(uploads[sha].data), "received_at": now}
            for sha in kept])


def _tus_file(engine: Engine, account_id: int, sha256: str) -> Path | None:
    from plugins.mobile_bridge import tus

    return tus.uploaded_media(engine, account_id, sha256)


def present_media(engine: Engine, account_id: int, shas: set[str],
                  uploads: dict[str, lifecycle.Upload] | None = None) -> dict[str, lifecycle.Upload | Path]:
    """The files of ``account_id`` with these sha256 that are here: sent in this request, sent in
    an earlier sync request, or uploaded with tus."""
    found: dict[str, lifecycle.Upload | Path] = {sha: uploads[sha] for sha in shas if uploads and sha in uploads}
    rest = shas - set(found)
    if rest:
        with engine.readers() as session:
            kept = session.scalars(select(RECEIVED_MEDIA.c.sha256).where(
                RECEIVED_MEDIA.c.account_id == account_id, RECEIVED_MEDIA.c.sha256.in_(sorted(rest))))
            for sha in kept:
                path = engine.media.path_for(sha)
                if path.exists():
                    found[sha] = path
    for sha in shas - set(found):
        path = _tus_file(engine, account_id, sha)
        if path is not None and path.exists():
            found[sha] = path
    return found


def _upload(source: lifecycle.Upload | Path, ref: dict[str, Any]) -> lifecycle.Upload:
    if isinstance(source, lifecycle.Upload):
        return lifecycle.Upload(source.data, source.filename, ref["content_type"])
    return lifecycle.Upload(source.read_bytes(), None, ref["content_type"])


def _size_problems(row: _Row, uploads: list[lifecycle.Upload]) -> list[dict[str, Any]]:
    return [{"path": ["media", i, "size"], "code": "media_size_mismatch",
             "message": f"the file with sha256 {ref['sha256']} has {len(u.data)} bytes, not the {ref['size']} announced"}
            for i, (ref, u) in enumerate(zip(row.media, uploads)) if len(u.data) != ref["size"]]


# -- storing ---------------------------------------------------------------------------------------


def store(engine: Engine, project: ProjectContext, entries: list[_ToStore]) -> list[Answer]:
    """Store items whose media are all here (``submit_many``, client_id = uuid); mark their rows
    created (with the observation id) or rejected. Answers for the entries that came with an index."""
    answers: list[Answer] = []
    ready, rejected = [], []
    for entry in entries:
        problems = _size_problems(entry.row, entry.uploads)
        if problems:
            rejected.append({"item_id": entry.row.id, "problems": problems})
            if entry.index is not None:
                answers.append(Answer(entry.index, entry.row.uuid, "rejected", problems=problems))
        else:
            ready.append(entry)
    if ready:
        ready.sort(key=lambda e: e.row.uuid)  # one lock order for every connection (client_id = uuid)
        by_account = [e.row.account_id for e in ready]
        results = lifecycle.submit_many(engine, project.slug, [(e.row.draft, e.uploads) for e in ready],
                                        by_account, actor="mobile_bridge sync")
        current = _current_form_version(engine, project, [e.row for e in ready])
        created = []
        for entry, result in zip(ready, results):
            uuid = entry.row.uuid
            if result.problems:
                problems = [problem_dict(p, entry.row.form_version, current) for p in result.problems]
                rejected.append({"item_id": entry.row.id, "problems": problems})
                answer = Answer(entry.index or 0, uuid, "rejected", problems=problems)
            else:
                created.append({"item_id": entry.row.id, "observation_id": result.observation_id})
                answer = Answer(entry.index or 0, uuid, "created" if result.created else "duplicate",
                                result.observation_id)
            if entry.index is not None:
                answers.append(answer)
        if created:
            _mark_created(engine, sorted(created, key=lambda c: c["item_id"]))
    if rejected:
        _mark_rejected(engine, sorted(rejected, key=lambda r: r["item_id"]))
    return answers


def _mark_created(engine: Engine, created: list[dict[str, Any]]) -> None:
    with engine.db.begin() as conn:
        conn.execute(update(ITEMS).where(ITEMS.c.id == bindparam("item_id")).values(
            state=CREATED, observation_id=bindparam("observation_id"), problems=None, updated_at=utcnow()), created)
        conn.execute(delete(WAITS).where(WAITS.c.item_id.in_([c["item_id"] for c in created])))


def media_arrived(engine: Engine, sha256: str, account_id: int) -> list[int]:
    """A file of ``account_id`` is here now (a tus upload finished): each item of that account
    waiting for it whose media are now all here is stored. Returns the ids of the observations
    stored or found (for the caller's log); never stores an item twice, whoever calls it."""
    with engine.readers() as session:
        ids = list(session.scalars(select(WAITS.c.item_id).join(ITEMS, ITEMS.c.id == WAITS.c.item_id).where(
            WAITS.c.sha256 == sha256, ITEMS.c.account_id == account_id, ITEMS.c.state == AWAITING)))
    if not ids:
        return []
    with engine.readers() as session:
        conn = session.connection()
        rows = _rows(conn, and_(ITEMS.c.id.in_(ids), ITEMS.c.state == AWAITING))
        slugs = dict(conn.execute(select(ITEMS.c.id, ITEMS.c.project).where(ITEMS.c.id.in_(ids))).all())
    present = present_media(engine, account_id, {m["sha256"] for r in rows for m in r.media})
    stored: list[int] = []
    contexts = engine.registry.contexts()
    for slug in sorted({slugs[r.id] for r in rows}):
        entries = [_ToStore(r, None, [_upload(present[m["sha256"]], m) for m in r.media]) for r in rows
                   if slugs[r.id] == slug and all(m["sha256"] in present for m in r.media)]
        if entries and slug in contexts:
            store(engine, contexts[slug], entries)
            with engine.readers() as session:
                stored += [i for i in session.scalars(select(ITEMS.c.observation_id).where(
                    ITEMS.c.id.in_([e.row.id for e in entries]), ITEMS.c.observation_id.is_not(None)))]
    return stored


# -- reading ---------------------------------------------------------------------------------------


def item_state(engine: Engine, slug: str, uuid: str, account_id: int) -> dict[str, Any] | None:
    """An item of ``account_id`` as it stands: its state, observation id, missing media, problems,
    device times and receipt time; None when this account sent no item with that uuid here."""
    c = ITEMS.c
    with engine.readers() as session:
        row = session.execute(select(c.state, c.observation_id, c.media, c.problems, c.device_created_at,
                                     c.device_sent_at, c.received_at, c.clock_offset_s).where(
            c.project == slug, c.uuid == uuid, c.account_id == account_id)).first()
    if row is None:
        return None
    out: dict[str, Any] = {"uuid": uuid, "status": row.state, "observation_id": row.observation_id,
                           "device_created_at": row.device_created_at, "device_sent_at": row.device_sent_at,
                           "received_at": row.received_at, "clock_offset_s": row.clock_offset_s,
                           "problems": row.problems, "missing": None}
    if row.state == AWAITING:
        wanted = {m["sha256"] for m in row.media}
        out["missing"] = sorted(wanted - set(present_media(engine, account_id, wanted)))
    return out


def receipt_of(engine: Engine, observation_id: int) -> dict[str, Any] | None:
    """The device times and receipt time of an observation that came through sync (None otherwise)."""
    o, c = Observation.__table__.c, ITEMS.c
    with engine.readers() as session:
        row = session.execute(select(c.device_created_at, c.device_sent_at, c.received_at, c.clock_offset_s).join(
            Observation.__table__, and_(o.project == c.project, o.client_id == c.uuid)).where(
            o.id == observation_id)).first()
    return dict(row._mapping) if row is not None else None


def clock_off_by(offset_s: float | None, skew_s: float) -> bool:
    return offset_s is not None and abs(offset_s) > skew_s


def forget_account(engine: Engine, account_id: int) -> int:
    """Delete what sync keeps of an account (its items, received or waiting, with their drafts and
    device times, and its record of the media it sent): for an erasure. Returns the items deleted."""
    with engine.db.begin() as conn:
        ids = select(ITEMS.c.id).where(ITEMS.c.account_id == account_id)
        conn.execute(delete(WAITS).where(WAITS.c.item_id.in_(ids)))
        deleted = conn.execute(delete(ITEMS).where(ITEMS.c.account_id == account_id)).rowcount
        conn.execute(delete(RECEIVED_MEDIA).where(RECEIVED_MEDIA.c.account_id == account_id))
    return int(deleted or 0)
