"""HTTP routes of the odour service.

* ``GET /api/v1/projects/{slug}/odour/events``: events (JSON, CSV or GeoJSON);
* ``GET /api/v1/projects/{slug}/odour/analyses``: the analyses on offer;
* ``GET /api/v1/projects/{slug}/odour/analyses/{name}``: one analysis as JSON rows, or
  ``{name}.png`` / ``{name}.geojson`` / ``{name}.csv`` (or ``?format=``);
* ``GET`` and ``POST /api/odor/list``: the OdourCollect-compatible list (not under /api/v1,
  where OdourCollect's clients look for it).

Anonymous callers (and tokens that are not staff of the project) get what the public may see:
published reports, contributor counts but no identities, places coarsened as the project asks.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from core.api.access import can_see_project
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.errors import ApiError, error_body
from core.api.limits import read_body
from core.api.schemas import ErrorOut, error_responses
from core.engine import Engine
from core.tokens import Principal
from core.types import ProjectContext
from plugins.odour import event_store, service
from plugins.odour.compat import (
    FilterError,
    body_schema,
    contradiction_answer,
    error_response,
    parse_filters,
    query_schema,
)

router = APIRouter(prefix="/api/v1", tags=["odour"])
compat_router = APIRouter(tags=["odour (OdourCollect-compatible)"])

SINCE = Query(None, description="a date (2024-03-01) or date-time (2024-03-01T08:00:00+01:00); without an offset, "
              "in the project's time zone. Anything else answers 422 `invalid_datetime`",
              examples=["2024-03-01"], json_schema_extra=service.MOMENT_SCHEMA)
UNTIL = Query(None, description="as `since`; exclusive for a date-time, a bare date includes that whole day",
              examples=["2024-03-31"], json_schema_extra=service.MOMENT_SCHEMA)
LIMIT = Query(event_store.PAGE_DEFAULT, ge=1, le=event_store.PAGE_MAX,
              description=f"events per page (at most {event_store.PAGE_MAX})")
CURSOR = Query(None, min_length=1, max_length=200,
               description="`next_cursor` of the previous page; absent for the first page")
CATEGORY = Query(None, ge=1, le=9, description="odour category id (1 waste .. 8 other, 9 no odour)")
SCOPE = Query(None, description="staff only: `all` (default for staff) or `public` to see what the public sees")
TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "geojson": "application/geo+json",
         "png": "image/png"}


def _visible_project(engine: Engine, principal: Principal, slug: str) -> ProjectContext:
    project = service.odour_project(engine, slug)
    if not can_see_project(principal, project):
        raise deny(principal, f"project {slug!r} is not public")
    return project


def _public(principal: Principal, project: ProjectContext, scope: str | None) -> bool:
    staff = principal.is_staff_of(project.slug)
    if scope == "all" and not staff:
        raise deny(principal, "seeing unpublished reports and contributors")
    return not staff or scope == "public"


@router.get(
    "/projects/{slug}/odour/events",
    summary="Odour events of a project (JSON, CSV or GeoJSON)",
    description="Reports of one odour category linked in time and space and made by at least `min_contributors` "
    "people (docs/odour.md). The public gets published reports only, with contributor counts; staff get every "
    "report but the trash, with contributor ids. The public's events are found on the public places "
    "(each report's location privacy: open on the project's `location_precision`, obscured on its "
    "`obscured_precision` cell; private reports are left out). Events that overlap [since, until), in start "
    "order, a page at a time "
    "(`limit`, `next_cursor`); `possible` lists the possible reports of the time the page covers. Kept in memory "
    "and brought up to date as reports arrive (docs/odour.md).",
    responses={200: {"content": {"application/json": {}, "text/csv": {}, "application/geo+json": {}}},
               503: {"model": ErrorOut, "description": "more reports than the events kept in memory allow"},
               **error_responses(401, 403, 404, 422, 429)},
)
def list_events(
    slug: str,
    engine: EngineDep,
    principal: PrincipalDep,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    category: int | None = CATEGORY,
    format: Literal["json", "csv", "geojson"] = "json",
    scope: Literal["public", "all"] | None = SCOPE,
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
) -> Response:
    project = _visible_project(engine, principal, slug)
    public = _public(principal, project, scope)
    payload = service.events(
        engine, project, public=public, category=category,
        since=service.parse_moment(since, project, "since"),
        until=service.parse_moment(until, project, "until", end=True),
        limit=limit, cursor=cursor, possible_max=event_store.POSSIBLE_MAX,
    )
    headers = {"X-Next-Cursor": payload["next_cursor"]} if payload["next_cursor"] else {}
    if format == "csv":
        return Response(service.events_csv(payload), media_type=TYPES["csv"],
                        headers={"Content-Disposition": f'attachment; filename="{slug}-odour-events.csv"', **headers})
    if format == "geojson":
        return JSONResponse(service.events_geojson(payload), media_type=TYPES["geojson"], headers=headers)
    return JSONResponse(payload, headers=headers)


@router.get("/projects/{slug}/odour/analyses", summary="The odour analyses on offer",
            responses=error_responses(401, 403, 404, 429))
def list_analyses(slug: str, engine: EngineDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    _visible_project(engine, principal, slug)
    return [
        {"name": name, "title": engine.host.analyses[service.ANALYSIS_PREFIX + name].title,
         "url": f"/api/v1/projects/{slug}/odour/analyses/{name}",
         "formats": ["json", "csv", "png"] + (["geojson"] if name == "heatmap" else [])}
        for name in service.analysis_names(engine)
    ]


def _split_format(name: str, format: str | None) -> tuple[str, str]:
    base, dot, suffix = name.rpartition(".")
    if dot and suffix in TYPES:
        if format is not None and format != suffix:
            raise ApiError(422, "invalid_request", f"the name ends in .{suffix} but format is {format!r}")
        return base, suffix
    return name, format or "json"


@router.get(
    "/projects/{slug}/odour/analyses/{name}",
    summary="Run an odour analysis: JSON rows, CSV, a PNG chart, or GeoJSON (heat map)",
    description="`name` is one of `hour_weekday`, `categories`, `intensity`, `heatmap`, optionally with a "
    "suffix `.json`, `.csv`, `.png` or `.geojson` (or `format=`). The public's analyses use published reports "
    "that are not private, on their public places; staff's use every report but the trash.",
    responses={200: {"content": {"application/json": {}, "text/csv": {}, "image/png": {},
                                 "application/geo+json": {}}},
               **error_responses(401, 403, 404, 422, 429)},
)
def run_analysis(
    slug: str,
    name: str,
    engine: EngineDep,
    principal: PrincipalDep,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    category: int | None = CATEGORY,
    format: Literal["json", "csv", "png", "geojson"] | None = None,
    scope: Literal["public", "all"] | None = SCOPE,
) -> Response:
    project = _visible_project(engine, principal, slug)
    public = _public(principal, project, scope)
    name, fmt = _split_format(name, format)
    result = service.run_analysis(
        engine, project, name, public=public, category=category,
        since=service.parse_moment(since, project, "since"),
        until=service.parse_moment(until, project, "until", end=True),
    )
    if fmt == "png":
        if not result.get("png"):
            raise ApiError(404, "no_chart", f"the analysis {name!r} has no chart for these reports (none to draw)")
        return Response(result["png"], media_type=TYPES["png"])
    if fmt == "geojson":
        if "geojson" not in result:
            raise ApiError(404, "no_geojson", f"the analysis {name!r} has no GeoJSON form; only the heat map has")
        return JSONResponse(result["geojson"], media_type=TYPES["geojson"])
    if fmt == "csv":
        return Response(service.rows_csv(result["rows"]), media_type=TYPES["csv"],
                        headers={"Content-Disposition": f'attachment; filename="{slug}-odour-{name}.csv"'})
    return JSONResponse(json.loads(json.dumps(service.json_part(result), default=str)))


# --------------------------------------------------------------------------- OdourCollect

FILTERS_MAX_BYTES = 64 * 1024


def _filter_error(errors: dict[str, list[str]], status: int = 400, code: str = "invalid_filters") -> JSONResponse:
    """400 in OdourCollect's shape (``status_code``, ``data.errors``, empty ``content``) and the
    engine's (``error`` with one detail per filter), so that either kind of client reads it."""
    exc = FilterError(errors)
    details = [{"path": [name], "message": message, "code": "invalid_filter"}
               for name, messages in errors.items() for message in messages]
    body = {**error_response(exc), **error_body(code, f"invalid filters: {exc}", details), "status_code": status}
    return JSONResponse(body, status_code=status)


def _compat_projects(engine: Engine, principal: Principal, slug: Any) -> list[ProjectContext] | JSONResponse:
    visible = [p for p in service.odour_projects(engine) if can_see_project(principal, p)]
    if slug in (None, ""):
        return visible
    if not isinstance(slug, str):
        return _filter_error({"project": [f"project must be a project slug (text), got {type(slug).__name__}"]})
    chosen = [p for p in visible if p.slug == str(slug)]
    if not chosen:  # no report passes, as for other filters no report can pass (the schema cannot list slugs)
        names = ", ".join(p.slug for p in visible) or "none"
        return JSONResponse(contradiction_answer(
            [("project", f"project {str(slug)[:100]!r} is not an odour project you may read (projects: {names})")], {}))
    return chosen


def _answer(engine: Engine, principal: Principal, params: dict[str, Any]) -> JSONResponse:
    try:  # every filter checked first: a bad one is a 400 whatever the project
        parse_filters(params)
    except FilterError as exc:
        return _filter_error(exc.errors)
    projects = _compat_projects(engine, principal, params.get("project"))
    if isinstance(projects, JSONResponse):
        return projects
    try:
        return JSONResponse(service.compat_list(engine, params, projects))
    except FilterError as exc:
        return _filter_error(exc.errors)


COMPAT_DESCRIPTION = (
    "OdourCollect's `/api/odor/list`, for its clients (pyodcollect): published odour reports of the projects that "
    "enable odour (or of `project`). Filters: `type` (category 1..9, 0 all), `subtype` (1..89, 0 all), "
    "`minIntensity`/`maxIntensity` (0..6), `minAnnoy`/`maxAnnoy` (hedonic tone -4..4), `date_init`/`date_end` "
    "(yyyy-mm-dd, both inclusive). The list is both top-level `content` and `data.content`. `id_user` is a "
    "keyed hash, never the account id. Invalid filters answer 400."
)


class OdorRow(BaseModel):
    id: int
    id_odor_type: int | None = Field(description="subtype 1..89")
    id_user: int = Field(description="a keyed hash of the contributor (0: none), never the account id")
    color: int = Field(description="OdourCollect's marker colour number 1..7")
    id_odor_intensity: int = Field(description="intensity + 1 (1..7)")
    id_odor_duration: int = Field(description="0 none, 1 punctual, 2 continuous in the last hour, 3 all day")
    id_odor_annoy: int = Field(description="hedonic tone + 5 (1..9)")
    published_at: str = Field(description="yyyy-mm-dd hh:mm:ss, the project's local time", examples=["2024-03-05 10:00:00"])
    latitude: float
    longitude: float


class OdorListData(BaseModel):
    date_init: str | None = None
    message: str
    content: list[OdorRow]
    warnings: dict[str, list[str]] | None = Field(None, description="filters no report can pass together "
                                                  "(min above max, a subtype of another type, an unknown project)")


class OdorListOut(BaseModel):
    status_code: int = Field(examples=[200])
    content: list[OdorRow] = Field(description="the rows, where pyodcollect reads them")
    data: OdorListData = Field(description="the same rows, where OdourCollect put them")
    truncated: bool = Field(False, description="more reports passed the filters than one answer holds "
                            "(`list_max_reports` per project, the newest are listed); `data.message` says so")


COMPAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": OdorListOut, "description": "the reports that pass the filters"},
    400: {"model": ErrorOut, "description": "invalid filters (also in OdourCollect's shape: status_code, data.errors)"},
    **error_responses(401, 429),
}


def _filter(description: str, name: str | None = None) -> Any:
    """One Query per parameter: a shared Query object gave every parameter the first one's alias,
    so the document (and the check of unknown parameters) knew only ``type``. The schema says
    exactly what :func:`plugins.odour.compat.parse_filters` takes (patterns, ranges, dates); the
    check itself is the parser's, so that a refusal keeps OdourCollect's 400 shape."""
    extra = query_schema(name) if name else None
    return Query(None, description=description, json_schema_extra=extra)



@compat_router.get("/api/odor/list", summary="OdourCollect-compatible list of reports (query parameters)",
                   description=COMPAT_DESCRIPTION, response_model=None, responses=COMPAT_RESPONSES)
def compat_list_get(
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
    type: str | None = _filter("odour category 1..9, 0 or absent for all", "type"),
    subtype: str | None = _filter("odour subtype 1..89, 0 or absent for all; must belong to `type`", "subtype"),
    minIntensity: str | None = _filter("intensity 0..6", "minIntensity"),  # OdourCollect's names
    maxIntensity: str | None = _filter("intensity 0..6", "maxIntensity"),
    minAnnoy: str | None = _filter("hedonic tone -4..4", "minAnnoy"),
    maxAnnoy: str | None = _filter("hedonic tone -4..4", "maxAnnoy"),
    date_init: str | None = _filter("yyyy-mm-dd, inclusive, in each project's time zone", "date_init"),
    date_end: str | None = _filter("yyyy-mm-dd, inclusive, in each project's time zone", "date_end"),
    project: str | None = _filter("a project slug (this engine's addition)"),
) -> JSONResponse:
    return _answer(engine, principal, dict(request.query_params))


@compat_router.post("/api/odor/list", summary="OdourCollect-compatible list of reports (JSON or form body)",
                    description=COMPAT_DESCRIPTION, response_model=None, responses=COMPAT_RESPONSES,
                    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                        **body_schema(), "example": {"type": 5, "subtype": 0, "minIntensity": None,
                                                      "maxIntensity": None, "minAnnoy": None, "maxAnnoy": None,
                                                      "date_init": "2024-03-01", "date_end": "2024-03-31"}}}}}})
async def compat_list_post(request: Request, engine: EngineDep, principal: PrincipalDep) -> JSONResponse:
    try:  # a few filters: a body past FILTERS_MAX_BYTES is not a client of this endpoint
        await read_body(request, FILTERS_MAX_BYTES)
    except ApiError as too_large:
        return _filter_error({"body": [too_large.message]}, status=413, code=too_large.code)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=50)
        except Exception as exc:  # noqa: BLE001 (a malformed form body, whatever the parser raises)
            return _filter_error({"body": [f"the form body cannot be read: {exc}"]})
        params: Any = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        body = await request.body()
        try:
            params = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError) as exc:
            return _filter_error({"body": [f"the body is not valid JSON: {exc}"]})
    if not isinstance(params, dict):  # null, a list, a number: the schema says an object
        return _filter_error({"body": [f"the body must be a JSON object of filters, got {type(params).__name__}"]})
    params = {**dict(request.query_params), **params}
    return await run_in_threadpool(_answer, engine, principal, params)
