"""The identification API: identify an observation, list its identifications with the community
taxon and grade, withdraw and restore one's own, vote on data quality, and the observer's
opt-out of the community taxon (docs/identification.md). The work is done in ``store``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import MAX_ID, DbInt, EngineDep, ObsId, PrincipalDep, deny
from core.api.routes.comments import BODY_PATTERN
from core.api.schemas import error_responses
from plugins.identification import listing, store

router = APIRouter(prefix="/api/v1", tags=["identifications"])

Metric = Annotated[Literal["wild", "location", "date", "evidence", "recent", "needs_id"],
                   Path(description="a data-quality metric (``needs_id`` disagree: no further ID possible)")]


class IdentificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"taxon_id": 42, "body": "The white tail tip says red fox", "vision": False}]})

    taxon_id: int = Field(ge=1, le=MAX_ID, description="a taxon of the engine's taxonomy (`GET /api/v1/taxa?q=`)")
    body: str | None = Field(None, min_length=1, max_length=store.MAX_BODY, pattern=BODY_PATTERN,
                             description="an optional note, up to 5000 characters")
    vision: bool = Field(False, strict=True, description="whether the machine suggestion helped choose the taxon")
    disagreement: bool | None = Field(None, strict=True, description="an identification of an ancestor of the community taxon "
                                      "that says it is not (only) that taxon: iNaturalist's explicit disagreement")


class IdentifiedTaxonOut(BaseModel):
    id: int
    name: str | None
    rank: str | None
    rank_level: float | None


class IdentificationOut(BaseModel):
    id: int
    uuid: str
    observation_id: int
    taxon: IdentifiedTaxonOut
    body: str | None
    vision: bool
    disagreement: bool | None
    category: str | None = Field(description="leading, improving, supporting or maverick (current ones only), as "
                                 "iNaturalist computes it")
    current: bool = Field(description="the identifier's latest, not withdrawn")
    withdrawn: bool
    expert: bool = Field(description="made by an expert (or staff) of the project")
    author: str | None = Field(description="the identifier's display name; null once their account is erased")
    yours: bool
    created_at: str
    updated_at: str
    own: bool | None = Field(None, description="staff and the observer only: made by the observer")
    author_id: int | None = Field(None, description="staff only: the identifier's account id")


class MetricOut(BaseModel):
    agree: int
    disagree: int
    passes: bool = Field(description="half or more of the votes agree, or there are none")


class SummaryOut(BaseModel):
    observation_id: int
    community_taxon: IdentifiedTaxonOut | None
    community_score: float | None
    taxon: IdentifiedTaxonOut | None = Field(description="the observation's taxon: the community taxon, or the observer's own "
                                   "identification when they opted out")
    prefers_community_taxon: bool
    identifications_count: int
    agreements: int
    disagreements: int
    grade: str | None
    quality: dict[str, MetricOut]
    your_votes: dict[str, bool] = Field(description="the caller's votes, metric -> agree")


class IdentificationsOut(BaseModel):
    items: list[IdentificationOut]
    summary: SummaryOut


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"agree": True}]})

    agree: bool = Field(strict=True, description="true: agree, false: disagree")


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"prefers_community_taxon": False}]})

    prefers_community_taxon: bool = Field(strict=True, description="false: the observation's taxon is your own "
                                          "identification's")


ERRORS = "404 for an observation you may not read (as for one that does not exist); 409 `identifications_off` " \
    "when its project does not enable the service."


@router.get("/observations/{obs_id}/identifications", response_model=IdentificationsOut,
            response_model_exclude_unset=True, summary="An observation's identifications and community taxon",
            description="Every identification, oldest first (current or not; withdrawn ones marked), with its "
            "category, and the summary: community taxon and score, the observation's taxon, grade, quality votes. "
            "Identifiers are shown by display name. " + ERRORS, responses=error_responses(401, 404, 409, 422, 429))
def list_identifications(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    return listing.of_observation(engine, principal, obs_id)


@router.post("/observations/{obs_id}/identifications", status_code=201, response_model=IdentificationOut,
             response_model_exclude_unset=True, summary="Identify an observation",
             description="Anyone with an account who may read the observation. It replaces the caller's current "
             "identification of it. 422 `unknown_taxon` for a taxon that does not exist. " + ERRORS,
             responses=error_responses(401, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def post_identification(obs_id: ObsId, body: IdentificationIn, engine: EngineDep,
                        principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "identifying")
    return store.add(engine, principal, obs_id, body.taxon_id, body=body.body, vision=body.vision,
                     disagreement=body.disagreement)


@router.post("/identifications/{ident_id}/withdraw", response_model=IdentificationOut,
             response_model_exclude_unset=True, summary="Withdraw your identification",
             description="Only its author. It stays, not current, marked withdrawn; asking again changes nothing.",
             responses=error_responses(401, 403, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def withdraw_identification(ident_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "withdrawing an identification")
    return store.withdraw(engine, principal, ident_id)


@router.post("/identifications/{ident_id}/restore", response_model=IdentificationOut,
             response_model_exclude_unset=True, summary="Restore your identification",
             description="Only its author: it becomes current again, and the author's other current one does not.",
             responses=error_responses(401, 403, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def restore_identification(ident_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "restoring an identification")
    return store.restore(engine, principal, ident_id)


@router.put("/observations/{obs_id}/quality/{metric}", response_model=SummaryOut,
            summary="Vote on a data-quality metric",
            description="Agree or disagree (iNaturalist's data-quality assessment); changes your vote. 409 "
            "`already_voted` for the same vote again, 422 `invalid_request` for a metric not in the list. " + ERRORS,
            responses=error_responses(401, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def put_vote(obs_id: ObsId, metric: Metric, body: VoteIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "voting")
    return store.vote(engine, principal, obs_id, metric, body.agree)


@router.delete("/observations/{obs_id}/quality/{metric}", status_code=204, response_class=Response,
               summary="Take back your data-quality vote",
               description="404 `vote_not_found` when you have none on that metric. " + ERRORS,
               responses=error_responses(401, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def delete_vote(obs_id: ObsId, metric: Metric, engine: EngineDep, principal: PrincipalDep) -> Response:
    if principal.anonymous:
        raise deny(principal, "voting")
    store.unvote(engine, principal, obs_id, metric)
    return Response(status_code=204)


@router.put("/observations/{obs_id}/taxon-preference", response_model=SummaryOut,
            summary="The observer opts in to or out of the community taxon",
            description="Only the observer. `prefers_community_taxon: false`: the observation's taxon is the "
            "observer's own identification, whatever the community says (iNaturalist's opt-out). " + ERRORS,
            responses=error_responses(401, 403, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def put_preference(obs_id: ObsId, body: PreferenceIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "choosing the taxon preference")
    return store.set_preference(engine, principal, obs_id, body.prefers_community_taxon)
