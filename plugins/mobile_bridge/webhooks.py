"""Webhooks for an app's own server: register, list, delete, re-enable, read the delivery log.

A webhook belongs to the account of the token that registers it and receives that account's
feed entries of the types it chose, as JSON signed with its secret (shown once, at
registration). Sending, retries and disabling are ``webhook_delivery``'s.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import MAX_ID, DbInt, EngineDep, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.schemas import error_responses
from core.db.models import utcnow
from core.db.session import transaction
from core.engine import Engine
from core.tokens import Principal
from plugins.mobile_bridge import webhook_delivery
from plugins.mobile_bridge.feed_store import TYPES
from plugins.mobile_bridge.webhook_delivery import attempts, deliveries, webhooks

router = APIRouter(prefix="/api/v1/mobile", tags=["mobile"])

MAX_PER_ACCOUNT = 10
EventType = Literal["results", "grade", "moderation", "comment", "identification", "deleted"]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://app.example.org/observatory-hook", "events": ["results", "comment"]}]})

    url: str = Field(min_length=9, max_length=2000, pattern=r"^https?://[^\s]+$",
                     description="https://... (http://localhost:... too, outside production)")
    events: list[EventType] = Field(default_factory=lambda: list(TYPES), min_length=1, max_length=len(TYPES),
                                    description="the feed entry types to send (all by default)")


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    enabled: bool
    disabled_at: str | None = None
    disabled_reason: str | None = Field(None, description="why it was disabled (e.g. repeated failures)")
    consecutive_failures: int = Field(description="failed delivery attempts in a row")
    created_at: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret: shown this once, never again")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class AttemptOut(BaseModel):
    attempt: int
    at: str
    status_code: int | None = Field(description="the receiver's HTTP status; null when there was no answer")
    error: str | None = Field(description="null for a success")
    duration_ms: int


class DeliveryOut(BaseModel):
    id: int = Field(description="as sent in X-Observatory-Delivery")
    feed_id: int
    event: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: str | None = Field(description="pending: when it is tried next")
    created_at: str
    finished_at: str | None
    log: list[AttemptOut] = Field(description="every attempt, oldest first")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: int | None = Field(description="send as `cursor` for older deliveries; null at the end")


def _account(principal: Principal, what: str) -> int:
    if principal.account_id is None:
        raise deny(principal, what)
    return principal.account_id


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "events": list(row.events), "enabled": row.disabled_at is None,
            "disabled_at": _iso(row.disabled_at), "disabled_reason": row.disabled_reason,
            "consecutive_failures": row.consecutive_failures, "created_at": _iso(row.created_at)}


def _owned(engine: Engine, account: int, webhook_id: int) -> Any:
    with transaction(engine.readers) as session:
        row = session.execute(select(webhooks).where(webhooks.c.id == webhook_id,
                                                     webhooks.c.account_id == account)).first()
    if row is None:
        raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id}")
    return row


@router.post("/webhooks", status_code=201, response_model=WebhookCreated, openapi_extra=TOKEN_REQUIRED_EXTRA,
             summary="Register a webhook for your feed",
             description="Your feed entries of the chosen types are POSTed to `url` as JSON, signed: "
             "`X-Observatory-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the secret>`, "
             "with `X-Observatory-Event` and `X-Observatory-Delivery`. Any 2xx answer is a success; otherwise it is "
             "tried again after 1, 2, 4 ... minutes, and 10 failures in a row disable the webhook. The secret is "
             "shown once. 422 `invalid_webhook_url` for a url that may not take webhooks; 409 `too_many_webhooks` "
             f"past {MAX_PER_ACCOUNT}.", responses=error_responses(401, 409, 422, 429))
def create_webhook(body: WebhookIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    account = _account(principal, "registering webhooks")
    problem = webhook_delivery.url_problem(body.url, engine.settings.environment)
    if problem:
        raise ApiError(422, "invalid_webhook_url", f"url {body.url!r}: {problem}")
    salt = webhook_delivery.new_salt()
    secret = webhook_delivery.secret_for(engine, salt)
    with transaction(engine.sessions) as session:
        count = session.scalar(select(func.count()).select_from(webhooks).where(webhooks.c.account_id == account))
        if (count or 0) >= MAX_PER_ACCOUNT:
            raise ApiError(409, "too_many_webhooks", f"an account has at most {MAX_PER_ACCOUNT} webhooks; "
                           "delete one first")
        webhook_id = session.execute(webhooks.insert().values(
            account_id=account, url=body.url, events=sorted(set(body.events), key=TYPES.index), salt=salt,
            created_at=utcnow(), consecutive_failures=0)).inserted_primary_key[0]
    return {**_out(_owned(engine, account, webhook_id)), "secret": secret}


@router.get("/webhooks", response_model=WebhookList, openapi_extra=TOKEN_REQUIRED_EXTRA,
            summary="Your webhooks", description="Without their secrets; a disabled one says why.",
            responses=error_responses(401, 422, 429))
def list_webhooks(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    account = _account(principal, "listing webhooks")
    webhook_delivery.wake_if_due(engine)
    with transaction(engine.readers) as session:
        rows = session.execute(select(webhooks).where(webhooks.c.account_id == account).order_by(webhooks.c.id)).all()
    return {"items": [_out(r) for r in rows]}


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, openapi_extra=TOKEN_REQUIRED_EXTRA,
            summary="One of your webhooks", responses=error_responses(401, 404, 422, 429))
def get_webhook(webhook_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    return _out(_owned(engine, _account(principal, "reading webhooks"), webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, openapi_extra=TOKEN_REQUIRED_EXTRA,
               summary="Delete one of your webhooks", description="With its pending deliveries and its log.",
               responses=error_responses(401, 404, 422, 429))
def delete_webhook(webhook_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> Response:
    _owned(engine, _account(principal, "deleting webhooks"), webhook_id)
    with transaction(engine.sessions) as session:
        gone = select(deliveries.c.id).where(deliveries.c.webhook_id == webhook_id)
        session.execute(attempts.delete().where(attempts.c.delivery_id.in_(gone)))
        session.execute(deliveries.delete().where(deliveries.c.webhook_id == webhook_id))
        session.execute(webhooks.delete().where(webhooks.c.id == webhook_id))
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/enable", response_model=WebhookOut, openapi_extra=TOKEN_REQUIRED_EXTRA,
             summary="Enable a disabled webhook again",
             description="Once its receiver works again: the failure count starts afresh and new entries are sent; "
             "deliveries cancelled when it was disabled stay cancelled (read them from `GET /feed`).",
             responses=error_responses(401, 404, 422, 429))
def enable_webhook(webhook_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    account = _account(principal, "enabling webhooks")
    _owned(engine, account, webhook_id)
    with transaction(engine.sessions) as session:
        session.execute(update(webhooks).where(webhooks.c.id == webhook_id)
                        .values(disabled_at=None, disabled_reason=None, consecutive_failures=0))
    return _out(_owned(engine, account, webhook_id))


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage, openapi_extra=TOKEN_REQUIRED_EXTRA,
            summary="A webhook's delivery log, newest first",
            description="Each delivery with its status and every attempt: the receiver's status code, the time and "
            "the error. `cursor`: the `next_cursor` of the previous page.",
            responses=error_responses(401, 404, 422, 429))
def list_deliveries(webhook_id: DbInt, engine: EngineDep, principal: PrincipalDep,
                    cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    per_page: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    _owned(engine, _account(principal, "reading webhook deliveries"), webhook_id)
    query = select(deliveries).where(deliveries.c.webhook_id == webhook_id)
    if cursor is not None:
        query = query.where(deliveries.c.id < cursor)
    with transaction(engine.readers) as session:
        rows = session.execute(query.order_by(deliveries.c.id.desc()).limit(per_page + 1)).all()
        page = rows[:per_page]
        logs: dict[int, list[dict[str, Any]]] = {r.id: [] for r in page}
        for a in session.execute(select(attempts).where(attempts.c.delivery_id.in_(list(logs)))
                                 .order_by(attempts.c.delivery_id, attempts.c.attempt)):
            logs[a.delivery_id].append({"attempt": a.attempt, "at": _iso(a.at), "status_code": a.status_code,
                                        "error": a.error, "duration_ms": a.duration_ms})
    items = [{"id": r.id, "feed_id": r.feed_id, "event": r.event, "status": r.status, "attempts": r.attempts,
              "next_attempt_at": _iso(r.next_attempt_at) if r.status == "pending" else None,
              "created_at": _iso(r.created_at), "finished_at": _iso(r.finished_at), "log": logs[r.id]}
             for r in page]
    return {"items": items, "next_cursor": page[-1].id if len(rows) > per_page else None}
