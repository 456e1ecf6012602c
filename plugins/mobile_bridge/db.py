"""The mobile bridge's own tables, on their own metadata: every module of the plugin defines
its tables on ``metadata``, and ``create_tables`` makes those missing at start-up (on SQLite and
PostgreSQL alike; the engine's migrations do not know them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

metadata = MetaData()


def create_tables(engine: Any) -> None:
    """Create the plugin's tables that do not exist yet (idempotent, safe in every process)."""
    from plugins.mobile_bridge import devices, edits, feed, forms, sync, tus, webhooks  # noqa: F401 (their tables)

    metadata.create_all(engine.db, checkfirst=True)
