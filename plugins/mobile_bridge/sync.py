"""Push sync: an app sends the observations it queued offline, in batches, and gets one answer
per item (created, duplicate, rejected, awaiting_media). The storage is ``sync_store``'s.

``POST /api/v1/mobile/projects/{slug}/sync``: JSON ``{"items": [...]}``, or multipart with the
same JSON as the part ``batch`` and media files as parts ``media`` (matched to items by sha256).
``GET /api/v1/mobile/projects/{slug}/sync/{uuid}``: where an item stands, and its missing media.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from core import lifecycle
from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.limits import read_body, read_form
from core.api.schemas import error_responses
from core.engine import Engine
from core.errors import ValidationFailed
from core.types import Flag, ObservationView, Problem, ProjectContext
from plugins.mobile_bridge.projects import SERVICE, bridge_project, bridge_settings
from plugins.mobile_bridge.sync_store import (Answer, Incoming, clock_off_by, item_state, media_arrived, receipt_of,
                                              receive)

__all__ = ["router", "media_arrived", "device_clock_flags", "sync_items"]

router = APIRouter(prefix="/api/v1/mobile", tags=["mobile"])

UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MAX_ITEMS = 500
MAX_MEDIA_PER_ITEM = 20
MAX_FILES = 500
DRAFT_KEYS = ("kind", "observed_at", "location", "fields", "licence", "location_privacy")


class MediaRef(BaseModel):
    """A media file an item expects: it is matched by its sha256."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sha256: str = Field(pattern=SHA256_PATTERN, description="lower-case hex sha256 of the file")
    size: int = Field(ge=1, le=1 << 40, description="its size in bytes")
    content_type: str = Field(min_length=3, max_length=100, pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$",
                              examples=["image/jpeg"])


class SyncItem(BaseModel):
    """One queued observation: a draft (``kind``, ``observed_at``, ``location``, ``fields``,
    ``licence``, ``location_privacy``, checked as ``POST /api/v1/projects/{slug}/observations``
    checks them) with the device's own uuid, times and the media it expects."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "uuid": "6f1c2a7e-3b9d-4c1e-9a51-0d2c8f4b7e10", "kind": "generic",
        "observed_at": "2026-05-01T09:30:00+02:00", "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 8},
        "fields": {"note": "a fox"}, "device_created_at": "2026-05-01T09:31:10+02:00",
        "device_sent_at": "2026-05-01T18:02:00+02:00",
        "media": [{"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "size": 50163,
                   "content_type": "image/jpeg"}]}]})

    uuid: str = Field(pattern=UUID_PATTERN, description="made by the device; the observation's client_id")
    kind: Any = None
    observed_at: Any = None
    location: Any = None
    fields: Any = None
    licence: Any = None
    location_privacy: Any = None
    form_version: str | None = Field(None, max_length=64, description="the form version the item was made with "
                                     "(GET .../form); a rejection of an item made with an older one names it")
    device_created_at: AwareDatetime = Field(description="when the device made the item, with its offset")
    device_sent_at: AwareDatetime | None = Field(None, description="when the device sent this request, with its "
                                                 "offset: tells how far off the device's clock is")
    media: list[MediaRef] = Field(default_factory=list, max_length=MAX_MEDIA_PER_ITEM)


ITEMS_DESCRIPTION = (
    f"at most {MAX_ITEMS} items, each a SyncItem: uuid, kind, observed_at, location, fields, licence?, "
    "location_privacy?, form_version?, device_created_at, device_sent_at?, media [{sha256, size, content_type}]. "
    "An item that does not fit is rejected alone (status rejected, with problems); the others go on.")


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"items": SyncItem.model_config["json_schema_extra"]["examples"]}]})  # type: ignore[index]

    items: list[dict[str, Any]] = Field(max_length=MAX_ITEMS, description=ITEMS_DESCRIPTION)


class ProblemOut(BaseModel):
    path: list[str | int]
    message: str
    code: str
    form_version: str | None = Field(None, description="the item's form version, when it is not the current one")


class SyncItemOut(BaseModel):
    index: int = Field(description="the item's position in the batch")
    uuid: str | None = Field(None, description="left out only for an item without a readable uuid")
    status: Literal["created", "duplicate", "rejected", "awaiting_media"]
    observation_id: int | None = None
    problems: list[ProblemOut] | None = None
    missing: list[str] | None = Field(None, description="sha256 of the media not here yet (awaiting_media)")


class SyncOut(BaseModel):
    items: list[SyncItemOut]


class SyncStateOut(BaseModel):
    uuid: str
    status: Literal["created", "rejected", "awaiting_media"]
    observation_id: int | None
    missing: list[str] | None = Field(description="sha256 of the media not here yet (awaiting_media)")
    problems: list[ProblemOut] | None
    device_created_at: datetime
    device_sent_at: datetime | None
    received_at: datetime = Field(description="when the server first received the item")
    clock_offset_s: float | None = Field(description="how far ahead (+) or behind (-) the device's clock was")


_BATCH_SCHEMA = SyncIn.model_json_schema()  # self-contained: no $defs
SYNC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _BATCH_SCHEMA},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["batch"],
                    "properties": {
                        "batch": {**_BATCH_SCHEMA, "description": "the batch, as a JSON part (SyncIn)"},
                        "media": {"type": "array", "items": {"type": "string", "format": "binary"},
                                  "description": "files the items name, matched by their sha256"},
                    },
                },
                "encoding": {"batch": {"contentType": "application/json"}},
            },
        },
    }
}


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json(text: bytes | str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_not_json_constant)
    except ValueError as exc:
        raise ValidationFailed([Problem((where,), f"not valid JSON: {exc}", "invalid_json")]) from None
    except RecursionError:
        raise ValidationFailed([Problem((where,), "not valid JSON: nested too deeply", "invalid_json")]) from None


def _batch(data: Any, where: str) -> list[Any]:
    try:
        return SyncIn.model_validate(data).items
    except ValidationError as exc:
        problems = [Problem((where, *e["loc"]), e["msg"], e["type"]) for e in exc.errors()]
        raise ValidationFailed(problems) from None


async def _read_sync(request: Request, engine: Engine) -> tuple[list[Any], dict[str, lifecycle.Upload]]:
    body = await read_body(request, engine.settings.max_request_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return _batch(_json(body, "body"), "body"), {}
    if kind != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send application/json, or multipart/form-data with 'batch' "
                       "and 'media'")
    form = await read_form(request, max_files=MAX_FILES, max_fields=10)
    batch = form.get("batch")
    if batch is None:
        raise ValidationFailed([Problem(("batch",), "the multipart body needs a 'batch' part with the JSON batch",
                                        "missing")])
    text = await batch.read() if isinstance(batch, UploadFile) else batch
    files: dict[str, lifecycle.Upload] = {}
    for part in form.getlist("media"):
        if not isinstance(part, UploadFile):
            raise ValidationFailed([Problem(("media",), "'media' parts must be files", "not_a_file")])
        data = await part.read()
        files[hashlib.sha256(data).hexdigest()] = lifecycle.Upload(data, part.filename, part.content_type)
    return _batch(_json(text, "batch"), "batch"), files


def _shape_problems(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"path": [p for p in e["loc"]], "message": e["msg"], "code": e["type"]} for e in exc.errors()]


def _incoming(index: int, raw: dict[str, Any], licence: str | None) -> Incoming:
    item = SyncItem.model_validate(raw)
    uuid = item.uuid.lower()
    draft: dict[str, Any] = {"client_id": uuid, **{k: raw[k] for k in DRAFT_KEYS if k in raw}}
    if draft.get("licence") is None and licence is not None:
        draft["licence"] = licence  # the licence the person chose at sign-up
    return Incoming(index, uuid, draft, [m.model_dump() for m in item.media], item.device_created_at,
                    item.device_sent_at, item.form_version)


def sync_items(engine: Engine, project: ProjectContext, account_id: int, raw_items: list[Any],
               files: dict[str, lifecycle.Upload] | None = None) -> list[Answer]:
    """Settle a batch: one answer per item, in order (what the sync route answers)."""
    from plugins.mobile_bridge.devices import chosen_licence

    licence = chosen_licence(engine, account_id, project.slug)
    answers: dict[int, Answer] = {}
    items = []
    for index, raw in enumerate(raw_items):
        uuid = raw.get("uuid") if isinstance(raw, dict) and isinstance(raw.get("uuid"), str) else None
        try:
            items.append(_incoming(index, raw, licence))
        except ValidationError as exc:
            answers[index] = Answer(index, uuid.lower() if uuid else None, "rejected", problems=_shape_problems(exc))
    receive(engine, project, account_id, items, files or {}, answers)
    return [answers[i] for i in range(len(raw_items))]


@router.post(
    "/projects/{slug}/sync", response_model=SyncOut, response_model_exclude_none=True,
    summary="Sync a batch of observations made offline",
    description="One answer per item, in order: `created` (with `observation_id`), `duplicate` (sent before: the "
    "stored `observation_id`), `rejected` (`problems` with field paths; nothing stored) or `awaiting_media` "
    "(`missing`: sha256 of the media not here yet; it is stored by itself when the last one lands). A bad item "
    "never sinks the batch; sending a batch again, whole or in part, stores nothing twice. Media come with the "
    "batch (multipart, parts `media`) or through tus uploads (/api/v1/mobile/uploads).",
    responses={**error_responses(401, 403, 404, 413, 422, 429), 400: {"description": "unreadable multipart"},
               415: {"description": "neither JSON nor multipart"}},
    openapi_extra={**TOKEN_REQUIRED_EXTRA, **SYNC_BODY},
)
async def post_sync(slug: str, request: Request, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "syncing observations")
    project = bridge_project(engine, slug)
    if not principal.may_submit_to(slug):
        raise deny(principal, f"submitting to project {slug!r}")
    raw_items, files = await _read_sync(request, engine)
    account_id = principal.account_id
    assert account_id is not None
    answers = await run_in_threadpool(sync_items, engine, project, account_id, raw_items, files)
    return {"items": [a.as_dict() for a in answers]}


@router.get(
    "/projects/{slug}/sync/{uuid}", response_model=SyncStateOut,
    summary="Where a synced item stands",
    description="Your own items only (another account's uuid answers 404, as an unknown one does).",
    responses=error_responses(401, 403, 404, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA,
)
def get_sync_item(slug: str, uuid: Annotated[str, Path(pattern=UUID_PATTERN)], engine: EngineDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "reading synced items")
    bridge_project(engine, slug)
    if not principal.is_member_of(slug):
        raise deny(principal, f"reading synced items of project {slug!r}")
    assert principal.account_id is not None
    state = item_state(engine, slug, uuid.lower(), principal.account_id)
    if state is None:
        raise ApiError(404, "sync_item_not_found", f"you have sent no item with uuid {uuid} to project {slug!r}")
    return state


def device_clock_flags(observation: ObservationView, project: ProjectContext, engine: Engine) -> list[Flag]:
    """``quality_check``: ``device_clock_off`` when the device that synced the observation had a clock
    off by more than the project's ``clock_skew_s`` (its device times may then be wrong too)."""
    if not project.enables(SERVICE):
        return []
    receipt = receipt_of(engine, observation.id)
    if receipt is None:
        return []
    skew = float(bridge_settings(project).get("clock_skew_s", 600))
    offset = receipt["clock_offset_s"]
    if not clock_off_by(offset, skew):
        return []
    direction = "ahead" if offset > 0 else "behind"
    return [Flag("device_clock_off", f"the device's clock was {abs(offset):.0f} s {direction} when it sent this "
                 f"observation (more than the project's {skew:.0f} s): the times it recorded may be wrong",
                 "warning", round(offset, 1))]
