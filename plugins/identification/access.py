"""Which observations a caller may identify, vote on and read the identifications of: those they
may read (``core.api.access.can_read``; any other answers the 404 of a missing one), in a
project that enables the service (else 409 ``identifications_off``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.api.access import can_read
from core.db.models import Observation
from core.engine import Engine
from core.errors import Conflict
from core.tokens import Principal
from core.types import ProjectContext
from core.views import observation_not_found
from plugins.identification.recompute import lock_observation

SERVICE = "identification"


def service_off(project: str) -> Conflict:
    return Conflict(f"project {project!r} does not take identifications (the identification service is off there)",
                    code="identifications_off")


def readable_observation(engine: Engine, session: Session, principal: Principal, obs_id: int, *,
                         lock: bool) -> tuple[Observation, ProjectContext]:
    """The observation (its row locked when ``lock``) and its project; 404 when the caller may not
    read it (word for word a missing one's), 409 ``identifications_off`` without the service."""
    obs = lock_observation(session, obs_id) if lock else session.get(Observation, obs_id)
    if obs is None:
        raise observation_not_found(obs_id)
    project = engine.registry.project(obs.project)
    if not can_read(principal, obs, project):
        raise observation_not_found(obs_id)
    if not project.enables(SERVICE):
        raise service_off(obs.project)
    return obs, project
