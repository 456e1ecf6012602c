"""Observations: create (JSON or multipart), read, list with filters, edit."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from core import lifecycle
from core.api.access import can_edit, can_read, can_see_project, render, visible_filter
from core.api.deps import DbInt, EngineDep, ObsId, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.paging import json_size, rows_within
from core.api.params import IsoDateTime
from core.api.limits import read_body, read_form
from core.api.schemas import ObservationOut, ObservationPage, ObservationPatch, error_responses
from core.db.models import Observation
from core.db.session import transaction
from core.engine import Engine
from core.errors import ValidationFailed
from core.filters import FILTER_PARAMETERS, filter_conditions, parse_filters, query_filters
from core.licences import KNOWN_LICENCES
from core.tokens import Principal
from core.types import Problem
from core.read_model import observation_rows, read_observation, read_observations
from core.views import observation_not_found

router = APIRouter(prefix="/api/v1", tags=["observations"])
KIND_PATTERN = r"^[A-Za-z0-9_.:-]+$"
_NUMBER = r"-?[0-9]+(\.[0-9]+)?"
BBOX_PATTERN = rf"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$"
MEDIA_URL = "/api/v1/observations/{obs_id}/media/{media_id}"

CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DraftIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["draft"],
                    "properties": {
                        "draft": {"$ref": "#/components/schemas/DraftIn",
                                  "description": "the draft, as a JSON part (DraftIn)"},
                        "media": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                },
                "encoding": {"draft": {"contentType": "application/json"}},
            },
        },
    }
}


def read_as(engine: Engine, principal: Principal, obs_id: int) -> dict[str, Any]:
    """The observation as ``principal`` may see it; 404 otherwise, the same 404 as for an id that
    does not exist (a 401 or 403 would tell that it does)."""
    with transaction(engine.readers) as session:
        obs = read_observation(session, obs_id, media_url=MEDIA_URL)
    if not can_read(principal, obs, engine.registry.project(obs.project)):
        raise observation_not_found(obs_id)
    return render(engine, principal, obs, obs.data)


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json(text: bytes | str, where: str) -> Any:
    # Python's parser accepts NaN and Infinity (no database stores them as JSON) and raises
    # plain ValueError on integers past 4300 digits and RecursionError on deep nesting.
    try:
        return json.loads(text, parse_constant=_not_json_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise ValidationFailed([Problem((where,), f"not valid JSON: {exc}", "invalid_json")]) from None
    except RecursionError:
        raise ValidationFailed([Problem((where,), "not valid JSON: nested too deeply", "invalid_json")]) from None


async def _parse_create(request: Request, engine: Engine) -> tuple[Any, list[lifecycle.Upload]]:
    settings = engine.settings
    body = await read_body(request, settings.max_request_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return _json(body, "body"), []
    if kind != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send application/json, or multipart/form-data with 'draft' and 'media'")
    form = await read_form(request, max_files=50, max_fields=20)
    draft = form.get("draft")
    if draft is None:
        raise ValidationFailed([Problem(("draft",), "the multipart body needs a 'draft' field with the JSON draft", "missing")])
    text = await draft.read() if isinstance(draft, UploadFile) else draft
    uploads = []
    for item in form.getlist("media"):
        if not isinstance(item, UploadFile):
            raise ValidationFailed([Problem(("media",), "'media' parts must be files", "not_a_file")])
        data = await item.read()
        uploads.append(lifecycle.Upload(data, item.filename, item.content_type))
    return _json(text, "draft"), uploads


@router.post(
    "/projects/{slug}/observations",
    status_code=201,
    response_model=ObservationOut,
    summary="Submit an observation (JSON, or multipart with media files)",
    description="The same `client_id` with the same content again answers 200 with the first observation; "
    "with other content, 409.",
    responses={200: {"model": ObservationOut, "description": "a retry: the observation stored the first time"},
               **error_responses(401, 403, 404, 409, 413, 422, 429),
               415: {"description": "neither JSON nor multipart"}, 400: {"description": "unreadable multipart"}},
    openapi_extra=CREATE_BODY,
)
async def create_observation(slug: str, request: Request, engine: EngineDep, principal: PrincipalDep) -> Any:
    lifecycle.get_project(engine, slug)
    if not principal.may_submit_to(slug):
        raise deny(principal, f"submitting to project {slug!r}")
    data, uploads = await _parse_create(request, engine)
    def submit_and_read() -> tuple[lifecycle.SubmitResult, dict[str, Any]]:
        result = lifecycle.submit(engine, slug, data, uploads, principal.contributor_id, actor=principal.actor)
        return result, read_as(engine, principal, result.observation_id)

    result, body = await run_in_threadpool(submit_and_read)
    return JSONResponse(ObservationOut.model_validate(body).model_dump(mode="json"),
                        status_code=201 if result.created else 200)


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "invalid_cursor", "the cursor is not one this API gave out") from None
    if not 0 < value <= 2_147_483_647:
        raise ApiError(422, "invalid_cursor", "the cursor is not one this API gave out")
    return value


@router.get("/projects/{slug}/observations", response_model=ObservationPage, summary="List observations",
            description="Newest first, with cursor pagination; a page holds at most `limit` observations and stops "
            "early once their fields pass OBSERVATORY_MAX_PAGE_BYTES (`next_cursor` goes on). Anonymous callers see published observations of "
            "public projects only; contributors see those and their own; staff see all. Besides the filters below, "
            "`field.NAME=value` filters on a field of the kinds' schemas (`field.count>=3`, `field.count<=3`, "
            "`field.category=in:1,2`, operators `gt: gte: lt: lte: ne: in:`): see docs/filters.md. An unknown field, "
            "or a value of the wrong type, is a 422 that names it.",
            responses=error_responses(401, 403, 404, 422, 429))
def list_observations(
    slug: str,
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
    status: Literal["pending", "published", "unpublished", "trashed"] | None = None,
    grade: Literal["casual", "needs_id", "research"] | None = None,
    contributor: Annotated[DbInt | None, Query(description=FILTER_PARAMETERS["contributor"])] = None,
    kind: Annotated[str | None, Query(max_length=64, pattern=KIND_PATTERN, description="an observation kind")] = None,
    since: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["since"])] = None,
    until: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["until"])] = None,
    created_since: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["created_since"])] = None,
    created_until: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["created_until"])] = None,
    updated_since: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["updated_since"])] = None,
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN,
        description="west,south,east,north in degrees (west > east crosses the antimeridian); it tests each "
        "place as you see it, on the project's public grid unless you are staff or the observation is yours",
        examples=["2.0,41.3,2.3,41.5"])] = None,
    polygon: Annotated[str | None, Query(max_length=20_000, description=FILTER_PARAMETERS["polygon"],
        examples=['{"type":"Polygon","coordinates":[[[2.0,41.3],[2.3,41.3],[2.3,41.5],[2.0,41.3]]]}'])] = None,
    has_media: Annotated[Literal["true", "false"] | None, Query(description=FILTER_PARAMETERS["has_media"])] = None,
    licence: Annotated[Literal[KNOWN_LICENCES] | None, Query(description=FILTER_PARAMETERS["licence"])] = None,  # type: ignore[valid-type]
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$",
                                        description="next_cursor of the previous page, as given")] = None,
) -> dict[str, Any]:
    project = lifecycle.get_project(engine, slug)
    if not can_see_project(principal, project):
        raise deny(principal, f"project {slug!r} is not public")
    # the declared parameters are checked above (OpenAPI); the raw text of every filter, field.* included,
    # goes through the one parser the exports and the CLI use
    chosen = parse_filters(engine, project, query_filters(request.query_params.multi_items(), skip=("limit", "cursor")))
    if chosen.contributor is not None and not principal.is_staff_of(slug) \
            and chosen.contributor != principal.contributor_id:
        raise deny(principal, "filtering by another contributor")
    query = visible_filter(observation_rows().where(Observation.project == slug), principal, project)
    query = query.where(*filter_conditions(chosen, project, staff=principal.is_staff_of(slug),
                                           contributor_id=principal.contributor_id))
    after = _decode_cursor(cursor)
    if after is not None:
        query = query.where(Observation.id < after)
    newest_first = query.order_by(Observation.id.desc())
    with transaction(engine.readers) as session:
        # bounded in bytes too (core.api.paging): sizes first, then only the rows that fit
        sizes = session.execute(newest_first.with_only_columns(Observation.id, json_size(Observation.fields))
                                .limit(limit + 1)).all()
        count = rows_within(sizes, limit, engine.settings.max_page_bytes)
        page = read_observations(session, newest_first.where(Observation.id >= sizes[count - 1][0]).limit(count),
                                 media_url=MEDIA_URL) if count else []
    items = [render(engine, principal, o, o.data) for o in page]
    next_cursor = base64.urlsafe_b64encode(str(page[-1].data["id"]).encode()).decode().rstrip("=") \
        if len(sizes) > count else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/observations/{obs_id}", response_model=ObservationOut, summary="One observation",
            description="404 both for an id that does not exist and for an observation you may not see.",
            responses=error_responses(401, 404, 429))
def get_observation(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    return read_as(engine, principal, obs_id)


@router.patch("/observations/{obs_id}", response_model=ObservationOut, summary="Change fields",
              description="Fields are validated again, enrichments run again, and the change is audited.",
              responses=error_responses(401, 403, 404, 422, 429))
def patch_observation(obs_id: ObsId, patch: ObservationPatch, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:  # before any look-up: the same 401 for every id, existing or not
        raise deny(principal, "editing observations")

    def authorize(obs: Observation) -> None:
        if not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(obs_id)
        if not can_edit(principal, obs):
            raise deny(principal, f"editing observation {obs_id}")

    # one read to check and change (in the edit's own transaction), one to answer
    lifecycle.update_fields(engine, obs_id, patch.fields, actor=principal.actor, authorize=authorize)
    return read_as(engine, principal, obs_id)
