"""Moderation: publish, unpublish, trash, restore; each change audited."""

from __future__ import annotations

from fastapi import APIRouter

from core.api.access import can_read
from core.api.deps import EngineDep, ObsId, PrincipalDep, deny
from core.api.schemas import ModerationIn, ModerationOut, error_responses
from core.db.session import transaction
from core.moderation import moderate
from core.views import load_observation, observation_not_found

router = APIRouter(prefix="/api/v1", tags=["moderation"])


@router.post("/observations/{obs_id}/moderation", response_model=ModerationOut,
             summary="Publish, unpublish, trash or restore an observation",
             description="Operators, and admins and moderators of the observation's project. An observation "
             "you may not read answers 404, as an id that does not exist does.",
             responses=error_responses(401, 403, 404, 409, 422, 429))
def moderate_observation(obs_id: ObsId, body: ModerationIn, engine: EngineDep, principal: PrincipalDep) -> dict:
    if principal.anonymous:  # before any look-up: the same 401 for every id, existing or not
        raise deny(principal, "moderating observations")
    with transaction(engine.sessions) as session:
        obs = load_observation(session, obs_id)
        project = obs.project
        # one the caller may not read is answered as if it did not exist: a 401/403 would tell that it does
        if not can_read(principal, obs, engine.registry.project(project)):
            raise observation_not_found(obs_id)
    if not principal.is_staff_of(project):
        raise deny(principal, f"moderating project {project!r}")
    old, new = moderate(engine, obs_id, body.action, actor=principal.actor, reason=body.reason)
    return {"id": obs_id, "old": old, "new": new}
