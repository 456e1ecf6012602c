"""Data use (issue 17, ``core.data_use``): how often a project's data and an observation were
downloaded, and why. Counts only: nothing here says who downloaded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from core import data_use
from core.api.access import can_read, can_see_project
from core.api.deps import EngineDep, ObsId, PrincipalDep
from core.api.schemas import error_responses
from core.db.models import Observation
from core.db.session import transaction
from core.errors import NotFound
from core.lifecycle import get_project
from core.views import observation_not_found

router = APIRouter(prefix="/api/v1", tags=["data use"])

PURPOSES_TEXT = ", ".join(data_use.PURPOSES) + f" or {data_use.UNSTATED}"


class MonthUse(BaseModel):
    month: str = Field(description="YYYY-MM (UTC)")
    downloads: int
    observations: int = Field(description="observations sent in all those downloads")
    purposes: dict[str, int] = Field(description=f"downloads per purpose: {PURPOSES_TEXT}")


class ProjectUseOut(BaseModel):
    project: str
    download_purpose: str = Field(description="whether the project's downloads ask why: off, optional, required")
    months: list[MonthUse]


class ObservationUseOut(BaseModel):
    observation_id: int
    downloads: int
    purposes: dict[str, int]


@router.get("/projects/{slug}/data-use", response_model=ProjectUseOut,
            summary="How the project's data was used (for funders)",
            description="Downloads by month and purpose (export, open-data file, Darwin Core Archive, large "
            "iNaturalist-API pages), and how many observations they held. Counts only: never who downloaded. "
            "Anyone who may see the project.", responses=error_responses(401, 404, 422, 429))
def project_data_use(slug: str, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    project = get_project(engine, slug)
    if not can_see_project(principal, project):
        raise NotFound(f"unknown project {slug!r}", code="unknown_project")
    return {"project": slug, "download_purpose": data_use.setting(engine, slug),
            "months": data_use.project_totals(engine, slug)}


@router.get("/observations/{obs_id}/data-use", response_model=ObservationUseOut,
            summary="How often an observation was downloaded, and why",
            description="Whoever may read the observation. Counts only.", responses=error_responses(401, 404, 422, 429))
def observation_data_use(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    with transaction(engine.readers) as session:
        obs = session.get(Observation, obs_id)
        if obs is None or not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(obs_id)
    return data_use.observation_summary(engine, obs_id)
