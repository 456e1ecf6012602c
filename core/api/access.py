"""Who may see and change which observations, and what the public sees of them."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Select, and_, false, or_

from core.db.models import Observation
from core.engine import Engine
from core.tokens import Principal
from core.types import ProjectContext
from core.views import public_view, with_licence


class Owned(Protocol):
    """What access depends on: a stored observation (ORM object or ``read_model`` record)."""

    @property
    def project(self) -> str: ...
    @property
    def contributor_id(self) -> int | None: ...
    @property
    def status(self) -> str: ...


def can_read(principal: Principal, obs: Owned, project: ProjectContext) -> bool:
    if principal.is_staff_of(obs.project):
        return True
    if principal.contributor_id is not None and obs.contributor_id == principal.contributor_id:
        return True
    return obs.status == "published" and project.public


def can_edit(principal: Principal, obs: Owned) -> bool:
    if principal.is_staff_of(obs.project):
        return True
    return principal.contributor_id is not None and obs.contributor_id == principal.contributor_id \
        and obs.status != "trashed"


def sees_everything(principal: Principal, obs: Owned) -> bool:
    """Staff and the observation's own contributor see personal data and exact places."""
    return principal.is_staff_of(obs.project) or (
        principal.contributor_id is not None and obs.contributor_id == principal.contributor_id
    )


def can_see_project(principal: Principal, project: ProjectContext) -> bool:
    return project.public or principal.is_member_of(project.slug)


def visible_filter(query: Select[Any], principal: Principal, project: ProjectContext) -> Select[Any]:
    """Limit an observations query of one project to what ``principal`` may read."""
    if principal.is_staff_of(project.slug):
        return query
    public = and_(Observation.status == "published") if project.public else false()
    if principal.contributor_id is not None:
        return query.where(or_(public, Observation.contributor_id == principal.contributor_id))
    return query.where(public)


def render(engine: Engine, principal: Principal, obs: Owned, data: dict[str, Any]) -> dict[str, Any]:
    if sees_everything(principal, obs):
        return with_licence(data, engine.registry.project(obs.project))
    return public_view(data, engine.registry.project(obs.project))
