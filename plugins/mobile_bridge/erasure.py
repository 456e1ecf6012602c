"""What the mobile bridge keeps about a person, for their export (``personal_data``) and their
erasure (``erase_account``): profiles and pairing codes, items received or waiting, uploads, feed
entries, follows and webhooks; and their display name copied into others' comment entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from core.db.models import Comment
from core.engine import Engine
from plugins.mobile_bridge import devices, sync_store, tus_store
from plugins.mobile_bridge.feed_store import feed, follows, heads
from plugins.mobile_bridge.webhook_delivery import attempts, deliveries, webhooks
from plugins.mobile_bridge.feed_codesign import told_codesign


def erase_account(engine: Engine, account_id: int) -> None:
    """Delete everything of the account's; in others' feeds, its comments lose their author's
    name (the comment itself stays, authorless, as the engine keeps it). Idempotent."""
    devices.forget_account(engine, account_id)
    sync_store.forget_account(engine, account_id)
    with engine.db.begin() as conn:
        comment_ids = set(conn.scalars(select(Comment.id).where(Comment.account_id == account_id)))
        for entry_id, payload in conn.execute(select(feed.c.id, feed.c.payload).where(feed.c.type == "comment")):
            if payload and payload.get("comment_id") in comment_ids and payload.get("author") is not None:
                conn.execute(update(feed).where(feed.c.id == entry_id).values(payload={**payload, "author": None}))
        hooks = list(conn.scalars(select(webhooks.c.id).where(webhooks.c.account_id == account_id)))
        if hooks:
            sent = select(deliveries.c.id).where(deliveries.c.webhook_id.in_(hooks))
            conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(sent)))
            conn.execute(delete(deliveries).where(deliveries.c.webhook_id.in_(hooks)))
            conn.execute(delete(webhooks).where(webhooks.c.id.in_(hooks)))
        for table in (feed, follows, heads, told_codesign):
            conn.execute(delete(table).where(table.c.account_id == account_id))
        files = list(conn.scalars(select(tus_store.uploads.c.id).where(tus_store.uploads.c.account_id == account_id)))
        conn.execute(delete(tus_store.uploads).where(tus_store.uploads.c.account_id == account_id))
    for upload_id in files:  # an unfinished upload's bytes (finished ones belong to the media store)
        tus_store.part_path(engine, upload_id).unlink(missing_ok=True)


def personal_data(engine: Engine, account_id: int) -> dict[str, Any]:
    """The account's own rows, as JSON-able lists."""
    tables = {"profiles": devices.PROFILES, "items": sync_store.ITEMS, "feed": feed, "follows": follows,
              "uploads": tus_store.uploads}
    with engine.readers() as session:
        out: dict[str, Any] = {
            name: [dict(row._mapping) for row in session.execute(select(table).where(table.c.account_id == account_id))]
            for name, table in tables.items()}
        out["webhooks"] = [{k: v for k, v in row._mapping.items() if k != "salt"}
                           for row in session.execute(select(webhooks).where(webhooks.c.account_id == account_id))]
    return out
