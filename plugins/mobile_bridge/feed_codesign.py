"""Co-design news in the change feed (issue 17): "your feedback on species_id is planned" and
"your observations were used in 12 downloads this month: 9 research, 3 education".

Neither is about one observation (their ``observation_id`` is 0). They are written when the
person reads their feed (``catch_up``), from ``core.feedback`` and ``core.data_use``: a state a
maintainer gave since the feed last told it, and this month's data-use count when it grew.
``mobile_feed_codesign_told`` keeps what was last told, per account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, String, Table, select
from sqlalchemy.orm import Session

from core import data_use, feedback
from core.db.models import UTCDateTime
from core.db.session import transaction
from core.engine import Engine
from plugins.mobile_bridge import feed_store, webhook_delivery
from plugins.mobile_bridge.db import metadata
from plugins.mobile_bridge.feed_store import NewEntry

NOT_ONE_OBSERVATION = 0
"""The ``observation_id`` of an entry about the person rather than one observation."""

told_codesign = Table(
    "mobile_feed_codesign_told", metadata,
    Column("account_id", Integer, primary_key=True, autoincrement=False),
    Column("feedback_at", UTCDateTime, nullable=True),
    Column("data_use_month", String(7), nullable=True),
    Column("data_use_downloads", Integer, nullable=True),
)


def feedback_text(item: dict[str, Any]) -> str:
    """``your feature request to species_id is planned: in the spring release``."""
    kind = {"rating": "rating", "comment": "comment", "feature_request": "feature request"}.get(item["kind"], "feedback")
    text = f"your {kind} to {item['service']} is {item['state']}"
    return f"{text}: {item['state_note']}" if item.get("state_note") else text


def _told(session: Session, account_id: int) -> Any:
    feed_store.insert_ignore(session, told_codesign, [{"account_id": account_id}])
    return session.execute(select(told_codesign).where(told_codesign.c.account_id == account_id)
                           .with_for_update()).one()


def _news(engine: Engine, account_id: int, last: Any) -> tuple[list[tuple[str, NewEntry]], dict[str, Any]]:
    """The entries owed (with their project) and the new ``told`` values."""
    owed: list[tuple[str, NewEntry]] = []
    changes = feedback.state_changes_for(engine, account_id, since=last.feedback_at)
    for item in reversed(changes):  # oldest change first
        payload = {"feedback_id": item["id"], "service": item["service"], "kind": item["kind"],
                   "state": item["state"], "note": item["state_note"], "text": feedback_text(item)}
        owed.append((item["project"] or "", NewEntry(account_id, "feedback", payload)))
    use = data_use.contributor_summary(engine, account_id)
    same_month = last.data_use_month == use["month"]
    if use["downloads"] and (not same_month or use["downloads"] > (last.data_use_downloads or 0)):
        owed.append(("", NewEntry(account_id, "data_use", {k: use[k] for k in ("month", "downloads", "purposes",
                                                                                 "text")})))
    values: dict[str, Any] = {"data_use_month": use["month"], "data_use_downloads": use["downloads"]}
    if changes:
        values["feedback_at"] = datetime.fromisoformat(changes[0]["state_changed_at"])
    return owed, values


class _Nothing:
    """What was told to an account the feed has told nothing yet."""

    feedback_at = None
    data_use_month = None
    data_use_downloads = None


def catch_up(engine: Engine, account_id: int) -> int:
    """Write the co-design entries owed to ``account_id``'s feed; returns how many. A feed read
    with nothing owed (nearly all) reads only: no write lock."""
    with transaction(engine.readers) as session:
        seen = session.execute(select(told_codesign).where(told_codesign.c.account_id == account_id)).one_or_none()
    owed, _ = _news(engine, account_id, seen or _Nothing())
    if not owed:
        return 0
    with transaction(engine.sessions) as session:
        last = _told(session, account_id)  # locked, and read again: a concurrent read told it already
        owed, values = _news(engine, account_id, last)
        session.execute(told_codesign.update().where(told_codesign.c.account_id == account_id).values(**values))
        rows = []
        for project, entry in owed:
            rows += feed_store.add_entries(session, NOT_ONE_OBSERVATION, project, [entry])
        queued = webhook_delivery.enqueue(session, rows)
    if queued:
        webhook_delivery.wake(engine)
    return len(rows)
