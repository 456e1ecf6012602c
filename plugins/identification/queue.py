"""The expert queue: experts subscribe to taxa and places (``queue_subscriptions``) and read, across
every project that enables the identification service, the needs_id observations they may read
that match, best first, in pages (``queue_query``). Cross-project by design, as Cos4Bio did.

Routes: ``GET|POST /api/v1/identify/subscriptions``, ``DELETE /api/v1/identify/subscriptions/{id}``,
``GET /api/v1/identify/queue``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.api.access import can_see_project
from core.api.deps import MAX_ID, DbInt, EngineDep, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.schemas import ObservationOut, error_responses
from core.db.session import transaction
from core.lifecycle import get_project
from plugins.identification.queue_query import QueueRequest, queue_page
from plugins.identification.queue_subscriptions import (MAX_SUBSCRIPTIONS, SERVICE, find_taxon, require_expert,
                                                        subscribe, subscriptions_of, unsubscribe)

router = APIRouter(prefix="/api/v1/identify", tags=["identification"])
MAX_PAGE = 1000
"""Pages beyond this are refused (422): narrow the queue with ``taxon_id`` or ``project``."""

EXPERTS = ("Experts only: the expert, moderator or admin role in a project that enables identifications, or an "
           "operator (403 otherwise, 401 without a token).")


def _degrees(limit: int, description: str) -> Any:
    # the range is stated in the schema and checked by core.place_filter.check_bbox (422 invalid_bbox)
    return Field(allow_inf_nan=False, description=description,
                 json_schema_extra={"minimum": -limit, "maximum": limit})


class Place(BaseModel):
    model_config = ConfigDict(extra="forbid")

    west: float = _degrees(180, "-180..180; west > east crosses the antimeridian")
    south: float = _degrees(90, "-90..90, at most north")
    east: float = _degrees(180, "-180..180")
    north: float = _degrees(90, "-90..90")


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        # neither (or both null) is checked too: 422 empty_subscription
        "anyOf": [{"required": ["taxon_id"], "properties": {"taxon_id": {"type": "integer"}}},
                  {"required": ["place"], "properties": {"place": {"type": "object"}}}],
        "examples": [{"taxon_id": 3}, {"place": {"west": 2.05, "south": 41.32, "east": 2.25, "north": 41.47}},
                     {"taxon_id": 3, "place": {"west": -10.0, "south": 35.0, "east": 5.0, "north": 44.0}}]})

    taxon_id: int | None = Field(None, ge=1, le=MAX_ID, description="a taxon: it and every taxon below it")
    place: Place | None = Field(None, description="a box: observations whose place, as you may see it, is in it")


class QueueTaxonOut(BaseModel):
    id: int
    name: str = Field(description="the scientific name")
    rank: str


class SubscriptionOut(BaseModel):
    id: int
    taxon: QueueTaxonOut | None
    place: Place | None
    created_at: str


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class PhotoOut(BaseModel):
    id: int
    url: str | None
    content_type: str
    width: int | None
    height: int | None


class SuggestionOut(BaseModel):
    taxon_id: int | None = Field(description="the taxon of species_id's best suggestion, where the taxonomy has it")
    name: str | None = Field(description="its scientific name")
    common_name: str | None
    score: float | None


class QueueItem(BaseModel):
    observation: ObservationOut = Field(description="as you may see it: the public form (place on its public "
                                        "cell, no contributor) unless you are staff of its project")
    photos: list[PhotoOut]
    suggestion: SuggestionOut | None = Field(description="the machine suggestion (species_id), if any")
    taxon: QueueTaxonOut | None = Field(description="the observation's taxon as matched: the identifications' taxon, "
                                   "or the suggestion's while there is none")
    identifications_count: int
    agreements: int
    disagreements: int
    community_taxon: QueueTaxonOut | None


class QueuePage(BaseModel):
    total_results: int
    page: int
    per_page: int
    results: list[QueueItem]


@router.get("/subscriptions", response_model=SubscriptionList, summary="Your expert subscriptions",
            description=EXPERTS, responses=error_responses(401, 403, 429))
def list_subscriptions(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    account = require_expert(engine, principal, "the expert queue")
    with transaction(engine.readers) as session:
        return {"items": [s.public() for s in subscriptions_of(session, account)]}


@router.post("/subscriptions", status_code=201, response_model=SubscriptionOut,
             summary="Subscribe to a taxon, a place, or both",
             description=f"{EXPERTS} A taxon counts with every taxon below it (a group like Aves); 422 "
             "`unknown_taxon` for an id the taxonomy lacks, `empty_taxon_group` for a group with no taxa below it, "
             "`invalid_bbox` for a box off the globe, `empty_subscription` for neither. The same subscription again "
             f"answers 200 with the one you have; at most {MAX_SUBSCRIPTIONS} (409 `too_many_subscriptions`).",
             responses={200: {"model": SubscriptionOut, "description": "you had this subscription already"},
                        **error_responses(401, 403, 409, 422, 429)})
def post_subscription(body: SubscriptionIn, engine: EngineDep, principal: PrincipalDep) -> Any:
    account = require_expert(engine, principal, "the expert queue")
    place = (body.place.west, body.place.south, body.place.east, body.place.north) if body.place else None
    found, created = subscribe(engine, account, body.taxon_id, place)
    return JSONResponse(found.public(), status_code=201 if created else 200)


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Delete one of your subscriptions",
               description=f"{EXPERTS} 404 `subscription_not_found` for one that is not yours.",
               responses=error_responses(401, 403, 404, 422, 429))
def delete_subscription(subscription_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> Response:
    unsubscribe(engine, require_expert(engine, principal, "the expert queue"), subscription_id)
    return Response(status_code=204)


@router.get("/queue", response_model=QueuePage, summary="Observations waiting for your identification",
            description=f"{EXPERTS} The needs_id observations of every project that enables identifications, that "
            "you may read (published ones of public projects; all of projects where you are staff), matching any "
            "of your subscriptions: its taxon (the identifications' taxon, or species_id's best suggestion while "
            "there is none) at or below a subscribed taxon, its place (as you may see it: an obscured place on its "
            "public cell) in a subscribed box. Never a private place unless you are staff of its project; never your "
            "own observations nor those you identify already. Best first: no identification yet, then with "
            "disagreements, then the rest; oldest submitted first within each. `taxon_id` and `project` narrow it "
            "(422 `unknown_taxon` / `empty_taxon_group`; 404 `unknown_project`; 409 `identifications_off` for a "
            "project without the service). No subscription: an empty queue.",
            responses=error_responses(401, 403, 404, 409, 422, 429))
def get_queue(engine: EngineDep, principal: PrincipalDep,
              page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
              per_page: Annotated[int, Query(ge=1, le=200)] = 30,
              taxon_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="only this taxon and below")] = None,
              project: Annotated[str | None, Query(min_length=1, max_length=64, description="only this project (its "
                                                   "slug)")] = None) -> dict[str, Any]:
    account = require_expert(engine, principal, "the expert queue")
    if project is not None:
        context = get_project(engine, project)
        if not can_see_project(principal, context):
            raise deny(principal, f"project {project!r} is not public")
        if not context.enables(SERVICE):
            raise ApiError(409, "identifications_off", f"project {project!r} does not use the identification service")
        projects = [context]
    else:
        projects = [engine.registry.project(p) for p in engine.registry.projects_enabling(SERVICE)]
    with transaction(engine.readers) as session:
        taxon = find_taxon(session, taxon_id) if taxon_id is not None else None
        request = QueueRequest(principal, subscriptions_of(session, account), projects, taxon, page, per_page)
        return queue_page(engine, session, request)
