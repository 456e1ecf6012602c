"""Edits from the phone, with versions.

An observation's **version** is 1 when it is stored, plus one for every edit since: the count of
its ``edit`` entries in the engine's audit log. Every way of editing writes one (this PATCH,
core's ``PATCH /api/v1/observations/{id}``, ``observatory submit --edit``), so no edit is missed;
moderation and comments do not change the version. Each entry holds the observation before and
after, so the fields an edit changed are known.

``PATCH /api/v1/mobile/observations/{id}`` ``{"base_version": n, "fields": {...}}``:

- ``n`` is the current version: the edit applies (version n + 1);
- ``n`` is older, and no edit since ``n`` changed a field this one sets: it merges (applied on
  top of the current fields);
- otherwise 409 ``edit_conflict`` with ``mine`` (the base version and the fields sent),
  ``theirs`` (the current version, its fields, and those changed since ``n``) and
  ``conflicting_fields``; nothing changes. A ``base_version`` past the current one is a 409
  ``version_unknown`` of the same shape.

Only the observation's contributor or the project's staff may edit (core's ``can_edit``). The
check and the change happen in one transaction with the observation's row locked (PostgreSQL
``FOR UPDATE``; SQLite's writers take the write lock at ``BEGIN``), so two edits from one base
never both apply.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import lifecycle
from core.api.access import can_edit, can_read
from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import EngineDep, ObsId, PrincipalDep, deny
from core.api.schemas import ErrorBody, error_responses
from core.db.models import AuditEntry, Observation
from core.db.session import transaction
from core.engine import Engine
from core.lifecycle import FIELDS_DESCRIPTION
from core.views import observation_not_found

router = APIRouter(prefix="/api/v1/mobile", tags=["mobile"])

EDIT = "edit"
OTHER_PARTS = ("kind", "observed_at", "location", "media")


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"base_version": 1, "fields": {"note": "two foxes, not one"}}]})

    base_version: int = Field(ge=1, le=2_147_483_647, description="the version the edit was made from")
    fields: dict[str, Any] = Field(description="fields to set; a null value removes the field. " + FIELDS_DESCRIPTION)


class EditOut(BaseModel):
    observation_id: int
    version: int = Field(description="the observation's version after the edit")
    merged: bool = Field(description="true when the edit was made from an older version and merged")
    fields: dict[str, Any]


class VersionOut(BaseModel):
    observation_id: int
    version: int
    fields: dict[str, Any]


class MineOut(BaseModel):
    base_version: int
    fields: dict[str, Any]


class TheirsOut(BaseModel):
    version: int
    fields: dict[str, Any]
    changed_fields: list[str] = Field(description="what the edits since the base version changed")


class EditConflictOut(BaseModel):
    error: ErrorBody
    mine: MineOut
    theirs: TheirsOut
    conflicting_fields: list[str]


class EditConflict(Exception):
    def __init__(self, body: dict[str, Any]):
        super().__init__(body["error"]["message"])
        self.body = body


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> set[str]:
    """What one edit changed: the names of fields, and the other parts by name."""
    before, after = before or {}, after or {}
    old, new = before.get("fields") or {}, after.get("fields") or {}
    changed = {k for k in set(old) | set(new) if old.get(k, _MISSING) != new.get(k, _MISSING)}
    return changed | {part for part in OTHER_PARTS if before.get(part) != after.get(part)}


_MISSING = object()


def edits_of(session: Session, obs_id: int) -> list[set[str]]:
    """What each edit of the observation changed, oldest first (edit k took version k to k + 1)."""
    rows = session.execute(select(AuditEntry.before, AuditEntry.after).where(
        AuditEntry.observation_id == obs_id, AuditEntry.action == EDIT).order_by(AuditEntry.id))
    return [_changed(before, after) for before, after in rows]


def version_of(session: Session, obs_id: int) -> int:
    """The observation's version: 1 plus the number of its edits."""
    count = session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.observation_id == obs_id, AuditEntry.action == EDIT))
    return 1 + int(count or 0)


def observation_version(engine: Engine, obs_id: int) -> int:
    with transaction(engine.readers) as session:
        return version_of(session, obs_id)


def _conflict(code: str, message: str, base: int, fields: dict[str, Any], current: int, stored: dict[str, Any],
              changed: set[str], conflicting: set[str]) -> EditConflict:
    return EditConflict({"error": {"code": code, "message": message},
                         "mine": {"base_version": base, "fields": fields},
                         "theirs": {"version": current, "fields": stored, "changed_fields": sorted(changed)},
                         "conflicting_fields": sorted(conflicting)})


def check_base(session: Session, obs: Observation, base: int, fields: dict[str, Any]) -> tuple[int, bool]:
    """Whether an edit from ``base`` may apply now: (the current version, whether it merges); raise
    EditConflict otherwise. Locks the observation's row first (PostgreSQL) and reads it afresh."""
    session.refresh(obs, with_for_update=True)
    edits = edits_of(session, obs.id)
    current = 1 + len(edits)
    if base == current:
        return current, False
    if base > current:
        raise _conflict("version_unknown", f"observation {obs.id} is at version {current}; there is no version "
                        f"{base} to edit from", base, fields, current, dict(obs.fields), set(), set())
    changed = set().union(*edits[base - 1:])
    conflicting = changed & set(fields)
    if conflicting:
        raise _conflict("edit_conflict", f"observation {obs.id} changed since version {base} (it is at version "
                        f"{current}), in fields this edit sets too: {', '.join(sorted(conflicting))}", base, fields,
                        current, dict(obs.fields), changed, conflicting)
    return current, True


def edit(engine: Engine, principal: Any, obs_id: int, base: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Apply an edit made from version ``base`` (see the module's rules)."""
    outcome: dict[str, Any] = {}

    def authorize(obs: Observation) -> None:
        if not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(obs_id)
        if not can_edit(principal, obs):
            raise deny(principal, f"editing observation {obs_id}")
        session = Session.object_session(obs)
        assert session is not None
        current, merged = check_base(session, obs, base, fields)
        outcome.update(version=current + 1, merged=merged)

    lifecycle.update_fields(engine, obs_id, fields, actor=principal.actor, authorize=authorize)
    with transaction(engine.readers) as session:
        stored = session.scalar(select(Observation.fields).where(Observation.id == obs_id))
    return {"observation_id": obs_id, "version": outcome["version"], "merged": outcome["merged"],
            "fields": stored or {}}


@router.patch(
    "/observations/{obs_id}", response_model=EditOut, summary="Edit an observation from a version",
    description="`base_version` is the version the app's copy had (GET .../version). The current version applies; "
    "an older one merges when no edit since changed the fields this one sets; otherwise 409 with both versions "
    "(`mine`, `theirs`) and the `conflicting_fields`. Only the observation's contributor or the project's staff.",
    responses={**error_responses(401, 403, 404, 422, 429),
               409: {"model": EditConflictOut, "description": "the observation changed since base_version in the "
                     "same fields (edit_conflict), or base_version is past the current one (version_unknown)"}},
    openapi_extra=TOKEN_REQUIRED_EXTRA,
)
def patch_observation(obs_id: ObsId, body: EditIn, engine: EngineDep, principal: PrincipalDep) -> Any:
    if principal.anonymous:
        raise deny(principal, "editing observations")
    try:
        return edit(engine, principal, obs_id, body.base_version, body.fields)
    except EditConflict as conflict:
        return JSONResponse(EditConflictOut.model_validate(conflict.body).model_dump(mode="json"), status_code=409)


@router.get("/observations/{obs_id}/version", response_model=VersionOut, summary="An observation's version",
            description="The version to edit from, with the fields it has: for its contributor and the project's "
            "staff. 404 for an observation you may not see.",
            responses=error_responses(401, 403, 404, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def get_version(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "reading an observation's version")
    with transaction(engine.readers) as session:
        obs = session.get(Observation, obs_id)
        if obs is None or not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(obs_id)
        if not can_edit(principal, obs):
            raise deny(principal, f"editing observation {obs_id}")
        return {"observation_id": obs_id, "version": version_of(session, obs_id), "fields": dict(obs.fields)}

