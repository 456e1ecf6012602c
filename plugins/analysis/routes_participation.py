"""``GET /api/v1/analytics/participation``: participation analytics of one or more projects, side
by side, for their staff (admins and moderators of every project named) and operators.

The answer holds figures, tables and profile counts only: no contributor id, no name."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.schemas import error_responses
from core.registry import SLUG
from plugins.analysis.participation import MAX_PROJECTS, analysis_project, participation_of

router = APIRouter(prefix="/api/v1", tags=["analytics"])

PROJECTS_PATTERN = SLUG.pattern.rstrip("$") + "(," + SLUG.pattern.lstrip("^").rstrip("$") + ")*$"
Profile = Literal["hardworking", "spasmodic", "persistent", "lasting", "moderate"]


class MonthOut(BaseModel):
    month: str = Field(description="YYYY-MM, in the project's time zone")
    active: int = Field(description="contributors with an observation this month")
    new: int = Field(description="of them, contributors whose first month it is")
    returning: int = Field(description="of them, contributors first seen in an earlier month")


class CohortOut(BaseModel):
    cohort: str = Field(description="YYYY-MM: the first month of the cohort's contributors")
    size: int = Field(description="contributors in the cohort")
    shares: list[float | None] = Field(description="share of the cohort active in month k after its first "
                                       "(k = 0, 1, ...; up to the last month of the data)")


class CentroidOut(BaseModel):
    profile: Profile
    size: int
    activity_ratio: float | None
    obs_per_active_day: float | None
    relative_duration: float | None
    periodicity_variation: float | None


class ProfilesOut(BaseModel):
    min_active_days: int = Field(description="active days a contributor needs to be profiled")
    n_profiled: int
    n_below_min_active_days: int = Field(description="contributors with fewer active days (no profile)")
    counts: dict[str, int] = Field(description="contributors per profile (hardworking, spasmodic, persistent, "
                                   "lasting, moderate)")
    centroids: list[CentroidOut] = Field(description="each profile's members' mean metrics")


class ProjectParticipationOut(BaseModel):
    project: str
    timezone: str = Field(description="the project's time zone: days and months are its local ones")
    n_observations: int = Field(description="observations with a contributor, the trash left out")
    n_contributors: int
    gini: float | None = Field(description="Gini coefficient of observations per contributor (0: equal)")
    top10_share: float | None = Field(description="share of observations by the top 10% of contributors")
    one_day_share: float | None = Field(description="share of contributors active on one day only")
    median_active_days: float | None
    median_duration_days: float | None = Field(description="first to last active day, inclusive")
    median_activity_ratio: float | None = Field(description="active days / duration")
    median_obs_per_active_day: float | None
    monthly: list[MonthOut]
    retention: list[CohortOut]
    profiles: ProfilesOut


class ParticipationOut(BaseModel):
    projects: list[ProjectParticipationOut] = Field(description="one per project named, in the order named")


@router.get("/analytics/participation", response_model=ParticipationOut,
            summary="Participation analytics of projects, side by side",
            description="Per project: contributors, contribution inequality (Gini, the top 10%'s share), the share "
            "who never came back after their first day, new and returning contributors per month, retention by "
            "cohort of first month and engagement profiles (Ponciano & Brasileiro) of contributors with enough "
            "active days. Each metric is defined in docs/analysis.md, 'Participation'. Operators, and admins and "
            "moderators of every project named; figures only, no contributor ids or names.",
            responses=error_responses(401, 403, 404, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def participation(
    engine: EngineDep,
    principal: PrincipalDep,
    projects: Annotated[str, Query(min_length=1, max_length=64 * MAX_PROJECTS + MAX_PROJECTS,
                                   pattern=PROJECTS_PATTERN,
                                   description=f"project slugs, comma-separated (at most {MAX_PROJECTS})")],
    min_active_days: Annotated[int | None, Query(ge=2, le=3660, description="active days a contributor needs "
                                                 "to be profiled (default: each project's "
                                                 "analysis.profile_min_active_days)")] = None,
) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "reading participation analytics")
    slugs = list(dict.fromkeys(projects.split(",")))
    if len(slugs) > MAX_PROJECTS:
        raise ApiError(422, "too_many_projects", f"at most {MAX_PROJECTS} projects at a time ({len(slugs)} given)")
    for slug in slugs:
        analysis_project(engine, slug)  # 404 for an unknown project or one without the service
    refused = [slug for slug in slugs if not principal.is_staff_of(slug)]
    if refused:
        raise deny(principal, f"reading participation analytics of {', '.join(map(repr, refused))}")
    return {"projects": participation_of(engine, slugs, min_active_days)}
