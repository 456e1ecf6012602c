"""Webhook deliveries: their tables, the signature, and the sender that works through them.

Each feed entry for an account with webhooks becomes one delivery row per matching webhook,
written in the entry's own transaction (``enqueue``), so an entry is never without its
deliveries. A sender thread per engine and process (``wake``) claims due rows with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's writes are serial), POSTs them, and records
each attempt. A failed delivery is tried again after 1, 2, 4 ... minutes (``Policy``), at most
``max_attempts`` times; ``disable_after`` failed attempts in a row disable the webhook, with the
reason, and cancel its pending deliveries. Any process's sender picks up rows another left (a
lease that ran out); the thread ends when nothing is pending, or once its engine is closed.

Why a thread and not a Celery task: the engine's worker app has a fixed set of tasks that a
plugin cannot extend, tests and one-off commands run without a broker, and the database
already holds what is owed, as the core's recovery loop does it.

The secret a webhook signs with is never stored: it is derived from a random salt (stored) and
the installation's key (``OBSERVATORY_MOBILE_WEBHOOK_KEY``, else made once in
``<data_dir>/mobile-webhook.key``, see ``core.secret_keys``), so a copy of the database alone
cannot sign.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import (JSON, Column, Index, Integer, String, Table, Text, and_, or_, select, update)
from sqlalchemy.orm import Session

from core.db.models import UTCDateTime, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError
from core.secret_keys import secret_key
from plugins.mobile_bridge.db import metadata
from plugins.mobile_bridge.feed_store import entry_json, feed

log = logging.getLogger(__name__)

KEY_SETTING = "OBSERVATORY_MOBILE_WEBHOOK_KEY"

webhooks = Table(
    "mobile_webhooks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("events", JSON, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("disabled_reason", Text, nullable=True),
    sqlite_autoincrement=True,
)

deliveries = Table(
    "mobile_webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, nullable=False),
    Column("feed_id", Integer, nullable=False),
    Column("event", String(20), nullable=False),
    # pending, delivered, failed (out of attempts) or cancelled (its webhook disabled, its entry gone)
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("lease_token", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_mobile_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_mobile_webhook_deliveries_webhook", "webhook_id", "id"),
    sqlite_autoincrement=True,
)

attempts = Table(
    "mobile_webhook_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)


@dataclass
class Policy:
    """How deliveries are tried (per engine: ``policy(engine)``; tests shorten the waits)."""

    first_retry_s: float = 60.0
    """the wait after the first failure; doubled after each further one"""
    max_attempts: int = 10
    disable_after: int = 10
    """failed attempts in a row, over all of a webhook's deliveries, that disable it"""
    timeout_s: float = 10.0
    lease_s: float = 60.0
    idle_poll_s: float = 30.0
    """how often a sender with nothing due looks for rows another process made"""
    batch: int = 20

    def retry_in(self, attempts_made: int) -> float:
        return self.first_retry_s * 2 ** (attempts_made - 1)


def policy(engine: Engine) -> Policy:
    return engine.state("mobile_bridge.webhook_policy", Policy)


# -- secrets and signatures --------------------------------------------------------------------


def _key(engine: Engine) -> bytes:
    return secret_key(os.environ.get(KEY_SETTING, ""), engine.settings.data_dir / "mobile-webhook.key",
                      setting=KEY_SETTING, error=EngineError, code="webhook_key_missing")


def new_salt() -> str:
    return secrets.token_hex(16)


def secret_for(engine: Engine, salt: str) -> str:
    """The signing secret of the webhook with ``salt``."""
    return "whsec_" + hmac.new(_key(engine), b"mobile_bridge webhook " + salt.encode(), hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Observatory-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# -- destinations ------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, environment: str) -> str | None:
    """Why ``url`` cannot take webhooks here, or None: https with a public host; outside production
    also http(s) to this machine (loopback), for development and tests."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return "the url must be https://host/..."
    if parts.username is not None or parts.password is not None:
        return "the url must not carry a user name or password"
    if parts.fragment:
        return "the url must not have a #fragment"
    try:
        parts.port
    except ValueError:
        return "the url's port is not a number from 0 to 65535"
    if is_loopback(host):
        return "webhooks to this machine (localhost) are for development and tests" \
            if environment == "production" else None
    if parts.scheme != "https":
        return "the url must use https (http only to localhost, outside production)"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return None if address.is_global else "the url's address is not a public one"


def _not_sent_reason(engine: Engine, url: str) -> str | None:
    # the test environment never reaches outside this machine, whatever a test registers
    if engine.settings.environment == "test" and not is_loopback((urlsplit(url).hostname or "").lower()):
        return "not sent: in the test environment webhooks go to this machine (localhost) only"
    return None


# -- queueing ----------------------------------------------------------------------------------


def enqueue(session: Session, rows: list[dict[str, Any]]) -> int:
    """Deliveries of new feed entries (rows with id, account_id, type) to their accounts' enabled
    webhooks that want that type, in the caller's transaction. Returns how many."""
    accounts = {r["account_id"] for r in rows}
    if not accounts:
        return 0
    hooks = session.execute(select(webhooks.c.id, webhooks.c.account_id, webhooks.c.events).where(
        webhooks.c.account_id.in_(accounts), webhooks.c.disabled_at.is_(None))).all()
    now = utcnow()
    made = [{"webhook_id": h.id, "feed_id": r["id"], "event": r["type"], "status": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now}
            for r in rows for h in hooks if h.account_id == r["account_id"] and r["type"] in h.events]
    if made:
        session.execute(deliveries.insert(), made)
    return len(made)


# -- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    token: str


def claim_due(engine: Engine) -> list[Claimed]:
    """Lease up to ``batch`` due deliveries of enabled webhooks to this sender."""
    rules = policy(engine)
    now = utcnow()
    token = secrets.token_hex(16)
    with transaction(engine.sessions) as session:
        ids = list(session.scalars(
            select(deliveries.c.id).join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now,
                   or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
                   webhooks.c.disabled_at.is_(None))
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id).limit(rules.batch)
            .with_for_update(skip_locked=True, of=deliveries)))
        if ids:
            session.execute(update(deliveries).where(deliveries.c.id.in_(ids))
                            .values(lease_until=now + timedelta(seconds=rules.lease_s), lease_token=token))
    return [Claimed(i, token) for i in ids]


def next_due_in(engine: Engine) -> float | None:
    """Seconds until the next pending delivery is due (0 if one is); None when none is pending."""
    with transaction(engine.readers) as session:
        due = session.execute(
            select(deliveries.c.next_attempt_at, deliveries.c.lease_until)
            .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
            .where(deliveries.c.status == "pending", webhooks.c.disabled_at.is_(None))
            .order_by(deliveries.c.next_attempt_at).limit(1)).first()
    if due is None:
        return None
    at = max(due.next_attempt_at, due.lease_until or due.next_attempt_at)
    return max(0.0, (at - utcnow()).total_seconds())


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.error is None


def _post(engine: Engine, url: str, headers: dict[str, str], body: bytes) -> Outcome:
    started = time.monotonic()
    reason = _not_sent_reason(engine, url)
    if reason:
        return Outcome(None, reason, 0)
    try:
        with httpx.Client(timeout=policy(engine).timeout_s, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
        code: int | None = response.status_code
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code} from the receiver"
    except httpx.TimeoutException:
        code, error = None, f"no answer within {policy(engine).timeout_s:g} s"
    except httpx.HTTPError as exc:
        code, error = None, f"could not connect: {type(exc).__name__}: {exc}"[:500]
    return Outcome(code, error, round((time.monotonic() - started) * 1000))


def deliver(engine: Engine, claimed: Claimed) -> None:
    """One attempt at one claimed delivery, recorded."""
    with transaction(engine.readers) as session:
        found = session.execute(
            select(deliveries.c.feed_id, deliveries.c.event, deliveries.c.attempts, webhooks.c.url, webhooks.c.salt,
                   webhooks.c.account_id)
            .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
            .where(deliveries.c.id == claimed.id, deliveries.c.lease_token == claimed.token)).first()
        entry = session.execute(select(feed).where(feed.c.id == found.feed_id)).first() if found else None
    if found is None:
        return  # the lease ran out and another sender took it, or its webhook was deleted
    if entry is None:
        _finish(engine, claimed, "cancelled")  # the entry is gone (its account erased)
        return
    body = json.dumps({**_without_seen(entry_json(entry)), "account_id": found.account_id},
                      separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "observatory-webhooks",
               "X-Observatory-Event": found.event, "X-Observatory-Delivery": str(claimed.id),
               "X-Observatory-Signature": signature(secret_for(engine, found.salt), int(time.time()), body)}
    outcome = _post(engine, found.url, headers, body)
    _record(engine, claimed, found.attempts + 1, outcome)


def _without_seen(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "seen"}


def _finish(engine: Engine, claimed: Claimed, status: str) -> None:
    with transaction(engine.sessions) as session:
        session.execute(update(deliveries).where(deliveries.c.id == claimed.id)
                        .values(status=status, finished_at=utcnow(), lease_until=None, lease_token=None))


def _record(engine: Engine, claimed: Claimed, attempt: int, outcome: Outcome) -> None:
    rules = policy(engine)
    now = utcnow()
    with transaction(engine.sessions) as session:
        session.execute(attempts.insert().values(delivery_id=claimed.id, attempt=attempt, at=now,
                                                 status_code=outcome.status_code, error=outcome.error,
                                                 duration_ms=outcome.duration_ms))
        webhook_id = session.scalar(select(deliveries.c.webhook_id).where(deliveries.c.id == claimed.id))
        ours = and_(deliveries.c.id == claimed.id, deliveries.c.lease_token == claimed.token)
        done = {"attempts": attempt, "lease_until": None, "lease_token": None}
        if outcome.ok:
            session.execute(update(deliveries).where(ours).values(status="delivered", finished_at=now, **done))
            session.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(consecutive_failures=0))
            return
        session.execute(update(webhooks).where(webhooks.c.id == webhook_id)
                        .values(consecutive_failures=webhooks.c.consecutive_failures + 1))
        failures = session.scalar(select(webhooks.c.consecutive_failures).where(webhooks.c.id == webhook_id)) or 0
        if attempt >= rules.max_attempts:
            session.execute(update(deliveries).where(ours).values(status="failed", finished_at=now, **done))
        else:
            session.execute(update(deliveries).where(ours).values(
                next_attempt_at=now + timedelta(seconds=rules.retry_in(attempt)), **done))
        if failures >= rules.disable_after:
            disable(session, webhook_id, f"disabled after {failures} failed delivery attempts in a row; the last, "
                    f"at {now.isoformat(timespec='seconds')}: {outcome.error}")


def disable(session: Session, webhook_id: int, reason: str) -> None:
    """Disable a webhook with ``reason`` and cancel its pending deliveries."""
    now = utcnow()
    session.execute(update(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.disabled_at.is_(None))
                    .values(disabled_at=now, disabled_reason=reason))
    session.execute(update(deliveries).where(deliveries.c.webhook_id == webhook_id, deliveries.c.status == "pending")
                    .values(status="cancelled", finished_at=now, lease_until=None, lease_token=None))


def deliver_due(engine: Engine) -> int:
    """Claim and attempt what is due; returns how many were attempted."""
    claimed = claim_due(engine)
    for one in claimed:
        try:
            deliver(engine, one)
        except Exception:  # noqa: BLE001 (its lease runs out and it is tried again)
            log.exception("webhook delivery %s could not be attempted", one.id)
    return len(claimed)


class Sender:
    """The delivery thread of one engine in this process: started by ``wake``, it ends when
    nothing is pending or its engine has been closed (``Engine.close`` replaces the pool)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pool = engine.db.pool
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_wake = 0.0

    def wake(self) -> None:
        with self._lock:
            self.last_wake = time.monotonic()
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mobile-webhooks", daemon=True)
                self._thread.start()

    def _closed(self) -> bool:
        return self.engine.db.pool is not self._pool

    def _run(self) -> None:
        rules = policy(self.engine)
        while not self._closed():
            self._wake.clear()
            try:
                if deliver_due(self.engine):
                    continue
                wait = next_due_in(self.engine)
            except Exception:  # noqa: BLE001 (a database blip: try again later)
                log.exception("webhook sender: looking for due deliveries failed")
                wait = rules.idle_poll_s
            with self._lock:
                if wait is None and not self._wake.is_set():
                    self._thread = None
                    return
            self._wake.wait(min(wait if wait is not None else rules.idle_poll_s, rules.idle_poll_s))
        with self._lock:
            self._thread = None

    def running(self) -> bool:
        with self._lock:
            return self._thread is not None


def sender(engine: Engine) -> Sender:
    return engine.state("mobile_bridge.webhook_sender", lambda: Sender(engine))


def wake(engine: Engine) -> None:
    """Something may be due: make sure this process's sender is looking."""
    sender(engine).wake()


def wake_if_due(engine: Engine, every_s: float = 30.0) -> None:
    """From busy routes: wake the sender at most every ``every_s`` (so deliveries left by a process
    that stopped are taken up by one that still runs)."""
    one = sender(engine)
    if not one.running() and time.monotonic() - one.last_wake > every_s:
        one.wake()
