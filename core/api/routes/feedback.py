"""Feedback (issue 17, ``core.feedback``): verdicts on services' results for an observation, their
acceptance over time, and ratings, comments and feature requests sent to a service's maintainers,
who list, export and mark them. Authors are shown to operators only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from core import feedback
from core.api.access import can_see_project
from core.api.deps import DbInt, EngineDep, ObsId, PrincipalDep, deny
from core.api.params import IsoDateTime
from core.api.schemas import error_responses
from core.errors import NotFound
from core.lifecycle import get_project

router = APIRouter(prefix="/api/v1", tags=["feedback"])

NAME = r"^[A-Za-z0-9_.-]{1,64}$"
Cursor = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=200)]
ServiceName = Annotated[str, Query(pattern=NAME, description="a service's name (`GET /api/v1/services`)")]


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taxon_id: int | None = Field(None, ge=1, le=2**31 - 1, description="the right taxon (`GET /api/v1/taxa`)")
    label: str | None = Field(None, max_length=feedback.MAX_LABEL, description="the right answer in words, where "
                              "no taxon fits (an odour, an event)")


class ResultFeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"service": "species_id", "verdict": "disagree", "correction": {"taxon_id": 42069},
         "reason": "the tail is a fox's, not a dog's"}]})

    service: str = Field(pattern=NAME, description="the service whose result this is about")
    verdict: Literal["agree", "disagree"]
    correction: CorrectionIn | None = Field(None, description="with disagree only")
    reason: str | None = Field(None, max_length=feedback.MAX_TEXT)


class ModelOut(BaseModel):
    name: str | None
    version: str | None


class ResultFeedbackOut(BaseModel):
    id: int
    observation_id: int
    project: str
    service: str
    model: ModelOut = Field(description="the model that gave the result, as its result names it")
    verdict: str
    correction_taxon_id: int | None
    correction_label: str | None
    reason: str | None
    created_at: str
    updated_at: str
    account_id: int | None = Field(None, description="operators only: who said it")


class VerdictCounts(BaseModel):
    agree: int
    disagree: int


class ObservationFeedbackOut(BaseModel):
    observation_id: int
    counts: dict[str, VerdictCounts] = Field(description="per service: verdicts given (never who)")
    mine: list[ResultFeedbackOut] = Field(description="your own verdicts")


class ResultFeedbackPage(BaseModel):
    results: list[ResultFeedbackOut]
    next_cursor: int | None = None


class MonthAcceptance(BaseModel):
    month: str = Field(description="YYYY-MM (UTC)")
    agree: int
    disagree: int
    rate: float | None = Field(description="agree / (agree + disagree)")


class ModelAcceptance(BaseModel):
    model: str | None
    version: str | None
    agree: int
    disagree: int
    rate: float | None


class ServiceAcceptanceOut(BaseModel):
    service: str
    project: str | None
    by_month: list[MonthAcceptance]
    by_model: list[ModelAcceptance]


class ServiceFeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "rating", "rating": 4, "body": "Good on birds, poor on moths", "project": "alpha"},
        {"kind": "feature_request", "body": "Suggest the genus when the species is unsure"}]})

    kind: Literal["rating", "comment", "feature_request"]
    rating: int | None = Field(None, ge=1, le=5, description="1-5; with kind rating only (required there)")
    body: str | None = Field(None, max_length=feedback.MAX_TEXT, description="the comment or request (required "
                             "for those kinds)")
    project: str | None = Field(None, pattern=NAME, description="the project it is about: one you belong to, "
                                "using the service; your role there tags it")


class ServiceFeedbackOut(BaseModel):
    id: int
    service: str
    project: str | None
    role: str = Field(description="the sender's role from their memberships: contributor, moderator or operator")
    kind: str
    rating: int | None
    body: str | None
    state: str = Field(description="new, planned, done or declined")
    state_note: str | None = Field(description="what the maintainers said with the state")
    created_at: str
    state_changed_at: str | None
    account_id: int | None = Field(None, description="operators only")
    author: str | None = Field(None, description="operators only: the sender's display name")


class ServiceFeedbackPage(BaseModel):
    results: list[ServiceFeedbackOut]
    next_cursor: int | None = None


class MarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"state": "planned", "note": "in the spring release"}]})

    state: Literal["new", "planned", "done", "declined"]
    note: str | None = Field(None, max_length=feedback.MAX_TEXT, description="shown to the sender")


@router.post("/observations/{obs_id}/feedback", response_model=ResultFeedbackOut, response_model_exclude_unset=True,
             summary="Say whether a service's result for an observation was right",
             description="Any signed-in person who may read the observation. `verdict` agree or disagree; with "
             "disagree, an optional `correction`: a `taxon_id` of the engine's taxonomy (422 `unknown_taxon` "
             "otherwise) or a `label`. Your later verdict on the same result replaces this one. The model named "
             "in the result is kept with it. 404 `no_result` when the service has no finished result here; 422 "
             "`unknown_service` for a service the engine does not know.",
             responses=error_responses(401, 404, 422, 429))
def give_result_feedback(obs_id: ObsId, body: ResultFeedbackIn, engine: EngineDep,
                         principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "giving feedback on a result")
    correction = body.correction or CorrectionIn()
    return feedback.give_result_feedback(engine, principal, obs_id, body.service, body.verdict,
                                         correction_taxon_id=correction.taxon_id,
                                         correction_label=correction.label, reason=body.reason)


@router.get("/observations/{obs_id}/feedback", response_model=ObservationFeedbackOut,
            response_model_exclude_unset=True, summary="Verdicts on an observation's results",
            description="Whoever may read the observation: how many agreed and disagreed per service (never who), "
            "and your own verdicts.", responses=error_responses(401, 404, 422, 429))
def observation_feedback(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    return feedback.result_feedback_of(engine, principal, obs_id)


@router.get("/projects/{slug}/feedback/results", response_model=ResultFeedbackPage, response_model_exclude_unset=True,
            summary="A project's verdicts on results (staff)",
            description="Operators, admins and moderators of the project; newest first. Who gave a verdict is shown "
            "to operators only.", responses=error_responses(401, 403, 404, 422, 429))
def project_result_feedback(slug: str, engine: EngineDep, principal: PrincipalDep, service: ServiceName | None = None,
                            verdict: Literal["agree", "disagree"] | None = None,
                            model_version: Annotated[str | None, Query(max_length=100)] = None,
                            cursor: Cursor = None, limit: Limit = 100) -> dict[str, Any]:
    get_project(engine, slug)
    if not principal.is_staff_of(slug):
        raise deny(principal, f"reading the feedback on results of {slug!r}")
    return feedback.list_result_feedback(engine, principal, slug, service=service, verdict=verdict,
                                         model_version=model_version, cursor=cursor, limit=limit)


@router.get("/services/{service}/acceptance", response_model=ServiceAcceptanceOut,
            summary="How often people agreed with a service's results",
            description="Current verdicts by month (UTC) and by model version. With `project`: that project's "
            "(anyone who may see the project); without: every project's (operators). 404 `unknown_service` for a "
            "service the engine does not know.",
            responses=error_responses(401, 403, 404, 422, 429))
def acceptance(service: str, engine: EngineDep, principal: PrincipalDep,
               project: Annotated[str | None, Query(pattern=NAME)] = None) -> dict[str, Any]:
    feedback.check_service(engine, service, in_path=True)
    if project is None:
        if not principal.operator:
            raise deny(principal, "reading acceptance over every project (name a project)")
    else:
        context = get_project(engine, project)
        if not can_see_project(principal, context):
            raise NotFound(f"unknown project {project!r}", code="unknown_project")
    return {"service": service, "project": project,
            "by_month": feedback.acceptance_by_month(engine, service, project),
            "by_model": feedback.acceptance_by_model(engine, service, project)}


@router.post("/services/{service}/feedback", status_code=201, response_model=ServiceFeedbackOut,
             response_model_exclude_unset=True, summary="Send a service's maintainers a rating, comment or request",
             description="Any signed-in person. Tagged with your role as your memberships say (not as you say). "
             "The maintainers (operators; admins of the project named) see it without your name; you follow its "
             "state in `GET /api/v1/me/feedback` and your feed. 404 `unknown_service` for a service the engine "
             "does not know.",
             responses=error_responses(401, 404, 422, 429))
def send_service_feedback(service: str, body: ServiceFeedbackIn, engine: EngineDep,
                          principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "sending feedback on a service")
    feedback.check_service(engine, service, in_path=True)
    return feedback.send_service_feedback(engine, principal, service, body.kind, rating=body.rating, body=body.body,
                                          project=body.project)


def _wanted(service: str | None, kind: str | None, state: str | None, role: str | None, project: str | None,
            since: datetime | None) -> feedback.ServiceFeedbackFilter:
    return feedback.ServiceFeedbackFilter(service=service, kind=kind, state=state, role=role, project=project,
                                          since=since)


Kind = Literal["rating", "comment", "feature_request"]
State = Literal["new", "planned", "done", "declined"]
Role = Literal["contributor", "moderator", "operator"]
ProjectParam = Annotated[str | None, Query(pattern=NAME)]


@router.get("/feedback", response_model=ServiceFeedbackPage, response_model_exclude_unset=True,
            summary="Feedback on services, for their maintainers",
            description="Operators see every item with its author; a project's admins see the items about services "
            "their project uses, with the sender's role and never who. Newest first; filters combine.",
            responses=error_responses(401, 403, 422, 429))
def list_service_feedback(engine: EngineDep, principal: PrincipalDep, service: ServiceName | None = None,
                          kind: Kind | None = None, state: State | None = None, role: Role | None = None,
                          project: ProjectParam = None, since: IsoDateTime | None = None, cursor: Cursor = None,
                          limit: Limit = 100) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "reading feedback on services")
    return feedback.list_service_feedback(engine, principal, _wanted(service, kind, state, role, project, since),
                                          cursor=cursor, limit=limit)


@router.get("/feedback/export", response_class=Response, summary="Feedback on services as CSV (co-design session)",
            description="The same items and filters as `GET /api/v1/feedback`, oldest first, as CSV: roles, never "
            "names or ids (operators also get `account_id` and `author`).",
            responses={200: {"content": {"text/csv": {}}}, **error_responses(401, 403, 422, 429)})
def export_service_feedback(engine: EngineDep, principal: PrincipalDep, service: ServiceName | None = None,
                            kind: Kind | None = None, state: State | None = None, role: Role | None = None,
                            project: ProjectParam = None, since: IsoDateTime | None = None) -> Response:
    if principal.anonymous:
        raise deny(principal, "exporting feedback on services")
    text = feedback.export_service_feedback(engine, principal, _wanted(service, kind, state, role, project, since))
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="service-feedback.csv"'})


@router.put("/feedback/{feedback_id}/state", response_model=ServiceFeedbackOut, response_model_exclude_unset=True,
            summary="Mark an item planned, done or declined",
            description="Its maintainers (operators; admins of its project for a service the project uses). The "
            "sender sees the state and note. Audited.", responses=error_responses(401, 403, 404, 422, 429))
def mark_service_feedback(feedback_id: DbInt, body: MarkIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "marking feedback")
    return feedback.mark(engine, principal, feedback_id, body.state, body.note)
