"""``/inat/v1``: an iNaturalist-v1-compatible read API, so that pyinaturalist, MECODA and scripts
written for api.inaturalist.org/v1 read this engine's observations unchanged (docs/inat-api.md).

It answers as the public sees: published observations of public projects that enable the
identification service, whatever token is sent (a wrong one is still a 401). Errors keep
iNaturalist's shape, ``{"error": ..., "status": N}``, with the engine's ``{code, message}`` as the
error. Answers are built as plain JSON (``inat_render``) in a fixed number of queries per page.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Callable, Coroutine, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from core import data_use
from core.api.deps import EngineDep, PrincipalDep
from core.api.errors import ApiError
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError
from plugins.identification import inat_params as p
from plugins.identification import inat_taxa
from plugins.identification.inat_people import handles
from plugins.identification.inat_photos import find_photo, photo_bytes
from plugins.identification.inat_projects import find, project_json, served
from plugins.identification.inat_query import Filters, conditions, count, page_parts, page_query, page_rows
from plugins.identification.inat_render import PHOTO_SIZES, Renderer, envelope, envelope_of
from plugins.identification.inat_schemas import (InatObservationPage, InatProjectPage, InatTaxonDetailPage,
                                                 InatTaxonPage, inat_errors)


def error_response(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return json_response({"error": error, "status": status}, status, headers)


def json_response(body: dict[str, Any] | str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` (a dict, or JSON text already encoded) as a JSON response."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(text.encode(), status, headers=headers, media_type="application/json")


class InatRoute(APIRoute):
    """A route whose errors take iNaturalist's shape: refused parameters, an unknown parameter, a
    wrong token, the rate limit and the engine's errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                details = [{"path": list(e["loc"]), "message": e["msg"], "code": e["type"]} for e in exc.errors()]
                summary = "; ".join(f"{'.'.join(map(str, d['path']))}: {d['message']}" for d in details)
                return error_response(422, "invalid_request", f"the request is invalid: {summary}", details)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, headers=exc.headers)
            except EngineError as exc:
                return error_response(exc.http_status, exc.code, exc.message)

        return answer


router = APIRouter(route_class=InatRoute, tags=["inat"])
DOWNLOAD_PAGE = 100
"""A page of observations this long or longer counts as a download (``core.data_use``)."""


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _scope(engine: Engine, project_id: str | None) -> dict[str, Any]:
    projects = served(engine)
    if project_id is None:
        return projects
    scope = {}
    for value in p.split(project_id):
        project = find(projects, value)
        if project is None:
            raise p.invalid("project_id", f"no project {value!r} here (a number or a slug /inat/v1/projects gives)")
        scope[project.slug] = project
    return scope


def _observers(engine: Engine, *values: str | None) -> list[int] | None:
    given = [v for value in values for v in p.split(value)]
    if not any(value is not None for value in values):
        return None
    named = (handles(engine).account_of("observer", v) for v in given)
    return sorted({account for account in named if account is not None})


def _bbox(values: tuple[float | None, ...]) -> tuple[float, float, float, float] | None:
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise p.invalid("swlat", "a bounding box needs all four of swlat, swlng, nelat and nelng")
    swlat, swlng, nelat, nelng = values
    if swlat > nelat:  # type: ignore[operator]
        raise p.invalid("swlat", "must not be north of nelat")
    return swlat, swlng, nelat, nelng  # type: ignore[return-value]


def _observations(engine: Engine, request: Request, filters: Filters, *, order_by: str, order: str,
                  page: int, per_page: int | None, locale: str | None,
                  first: list[int] | None = None, shown: list[Any] | None = None) -> tuple[int, list[str]]:
    """(total, the page's observations as JSON); ``per_page`` None: all that match, in the order of
    ``first`` (ids) when given."""
    with transaction(engine.readers) as session:
        conn = session.connection()  # Core statements: no ORM layer between them and the database
        where = conditions(conn, filters)
        query = page_query(filters, where, order_by, order)
        if per_page is None:
            rows = page_rows(conn, query)
            total = len(rows)
        else:
            rows = page_rows(conn, query.limit(per_page).offset((page - 1) * per_page)) if per_page else []
            # the last page tells the total; only a full page needs counting
            total = (page - 1) * per_page + len(rows) if 0 < len(rows) < per_page else count(conn, filters, where)
        if first is not None:
            position = {obs_id: i for i, obs_id in enumerate(first)}
            rows.sort(key=lambda row: position[row.id])
        parts = page_parts(conn, rows, p.lexicon(locale))
    if shown is not None:
        shown.extend(rows)
    renderer = Renderer(_base(request), handles(engine), filters.projects, parts.taxa)
    return total, [renderer.observation(row, parts) for row in rows]


OBSERVATIONS_DESCRIPTION = """Observations as iNaturalist's `GET /v1/observations` lists them, in its
envelope `{total_results, page, per_page, results}`: the published observations of the public
projects that enable the identification service. Places as the public sees them (`obscured`: the
place shown is a coarse cell; a private place has no `location` at all); people as pseudonymous
handles. Every filter tests what is shown. See docs/inat-api.md."""


@router.get("/observations", summary="Observations (iNaturalist v1)", description=OBSERVATIONS_DESCRIPTION,
            response_class=Response, responses={200: {"model": InatObservationPage}, **inat_errors(401, 403, 422, 429)})
def list_observations(
    request: Request, engine: EngineDep, _principal: PrincipalDep,
    project_id: Annotated[str | None, Query(pattern=p.WORD_LIST, description="project numbers or slugs")] = None,
    user_id: Annotated[str | None, Query(pattern=p.WORD_LIST, description="observers' handle numbers or logins")] = None,
    user_login: Annotated[str | None, Query(pattern=p.WORD_LIST, description="observers' handles (observer-...)")] = None,
    taxon_id: Annotated[str | None, Query(pattern=p.INT_LIST, description="taxa; their descendants match too")] = None,
    id: Annotated[str | None, Query(pattern=p.INT_LIST, description="observation ids")] = None,  # noqa: A002
    d1: Annotated[str | None, Query(pattern=p.MOMENT, description="observed on or after (a day of the project's "
                                    "time zone, or a date-time)")] = None,
    d2: Annotated[str | None, Query(pattern=p.MOMENT, description="observed on or before")] = None,
    created_d1: Annotated[str | None, Query(pattern=p.MOMENT, description="created on or after")] = None,
    created_d2: Annotated[str | None, Query(pattern=p.MOMENT, description="created on or before")] = None,
    updated_since: Annotated[str | None, Query(pattern=p.MOMENT, description="changed since (its identifications "
                                               "included)")] = None,
    quality_grade: Annotated[str | None, Query(pattern=p.GRADE_LIST, description="casual, needs_id, research")] = None,
    id_above: Annotated[int | None, Query(ge=0, le=p.MAX_ID, description="ids above this one")] = None,
    id_below: Annotated[int | None, Query(ge=0, le=p.MAX_ID, description="ids below this one")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=p.TEXT, description="a word that starts a "
                                   "name (scientific or common, any language) of the observation's taxon")] = None,
    photos: Annotated[p.Flag | None, Query(description="with (true) or without (false) a photo")] = None,
    sounds: Annotated[p.Flag | None, Query(description="with (true) or without (false) a sound")] = None,
    geo: Annotated[p.Flag | None, Query(description="with (true) or without (false) a public place")] = None,
    swlat: Annotated[float | None, Query(ge=-90, le=90, description="bounding box (all four), on public places")] = None,
    swlng: Annotated[float | None, Query(ge=-180, le=180)] = None,
    nelat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    nelng: Annotated[float | None, Query(ge=-180, le=180)] = None,
    order_by: Annotated[p.ORDER_BY, Query(description="id, created_at, observed_on or updated_at")] = "created_at",
    order: p.Order = "desc",
    page: p.Page = 1,
    per_page: p.PerPage = 30,
    locale: p.Locale = None,
    preferred_place_id: p.PlaceId = None,
    purpose: Annotated[Literal[data_use.PURPOSES] | None, Query(  # type: ignore[valid-type]
        description=f"why you download (not iNaturalist's): a page of {DOWNLOAD_PAGE} or more is counted as a "
        "download of its observations, per purpose, never who asked (docs/codesign.md)")] = None,
) -> Response:
    p.window(page, per_page)
    filters = Filters(
        projects=_scope(engine, project_id), ids=p.id_list(id), taxon_ids=p.id_list(taxon_id),
        accounts=_observers(engine, user_id, user_login), d1=p.moment("d1", d1), d2=p.moment("d2", d2),
        created_d1=p.moment("created_d1", created_d1), created_d2=p.moment("created_d2", created_d2),
        grades=p.split(quality_grade) or None, id_above=id_above, id_below=id_below,
        updated_since=p.moment("updated_since", updated_since), q=q, photos=p.flag(photos), sounds=p.flag(sounds),
        geo=p.flag(geo), bbox=_bbox((swlat, swlng, nelat, nelng)))
    if filters.taxon_ids == []:  # every id past the database's range: no such taxon
        raise p.invalid("taxon_id", f"no taxon {taxon_id}")
    shown: list[Any] = []
    total, results = _observations(engine, request, filters, order_by=order_by, order=order, page=page,
                                   per_page=per_page, locale=locale, shown=shown)
    if per_page >= DOWNLOAD_PAGE:
        _count_download(engine, shown, purpose)
    return json_response(envelope(results, total, page, per_page))


def _count_download(engine: Engine, rows: list[Any], purpose: str | None) -> None:
    """A large page is a download (``core.data_use``): counted per project it holds."""
    by_project: dict[str, list[int]] = {}
    for row in rows:
        by_project.setdefault(row.project, []).append(row.id)
    for project, ids in sorted(by_project.items()):
        data_use.record_download(engine, project, ids, purpose, channel="inat_api")


@router.get("/observations/{ids}", summary="Observations by id (iNaturalist v1)",
            description="Up to 200 comma-separated ids, answered in that order; an id that does not exist and "
            "one the public may not see are both left out (as iNaturalist does).",
            response_class=Response, responses={200: {"model": InatObservationPage}, **inat_errors(401, 422, 429)})
def observations_by_id(
    request: Request, engine: EngineDep, _principal: PrincipalDep,
    ids: Annotated[str, Path(pattern=r"^[0-9]{1,19}(,[0-9]{1,19}){0,199}$", description="observation ids")],
    locale: p.Locale = None, preferred_place_id: p.PlaceId = None,
) -> Response:
    wanted = list(dict.fromkeys(p.id_list(ids) or []))
    _, results = _observations(engine, request, Filters(projects=served(engine), ids=wanted), order_by="id",
                               order="desc", page=1, per_page=None, locale=locale, first=wanted) if wanted else (0, [])
    return json_response(envelope(results, len(results), 1, len(results)))


@router.get("/taxa", summary="Taxa (iNaturalist v1)",
            description="The engine's taxonomy, searched by name (`q`: a word that starts a scientific or common "
            "name, any language) and narrowed as iNaturalist's `GET /v1/taxa` does.",
            response_class=Response, responses={200: {"model": InatTaxonPage}, **inat_errors(401, 403, 422, 429)})
def list_taxa(
    engine: EngineDep, _principal: PrincipalDep,
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=p.TEXT,
                                   description="a word that starts a name")] = None,
    taxon_id: Annotated[str | None, Query(pattern=p.INT_LIST, description="these taxa and their descendants")] = None,
    parent_id: Annotated[int | None, Query(ge=1, le=p.MAX_ID, description="children of this taxon")] = None,
    rank: Annotated[str | None, Query(pattern=p.RANKS, description="ranks, e.g. species,genus")] = None,
    rank_level: Annotated[float | None, Query(ge=0, le=100, description="iNaturalist's rank level")] = None,
    is_active: Annotated[Literal["true", "false", "any"], Query(description="active taxa (default)")] = "true",
    id_above: Annotated[int | None, Query(ge=0, le=p.MAX_ID)] = None,
    id_below: Annotated[int | None, Query(ge=0, le=p.MAX_ID)] = None,
    order_by: Annotated[Literal["id", "name"], Query(description="id, or name (scientific)")] = "name",
    order: p.Order = "asc",
    page: p.Page = 1,
    per_page: p.PerPage = 30,
    locale: p.Locale = None,
    preferred_place_id: p.PlaceId = None,
    all_names: Annotated[p.Flag | None, Query(description="every name of each taxon")] = None,
) -> Response:
    p.window(page, per_page)
    taxon_ids = p.id_list(taxon_id)
    if taxon_ids == []:
        raise p.invalid("taxon_id", f"no taxon {taxon_id}")
    filters = inat_taxa.TaxaFilters(q=q, taxon_ids=taxon_ids, parent_id=parent_id, ranks=p.split(rank) or None,
                                    rank_level=rank_level, is_active=None if is_active == "any" else is_active == "true",
                                    id_above=id_above, id_below=id_below)
    with transaction(engine.readers) as session:
        total, results = inat_taxa.search(session, filters, page=page, per_page=per_page, order_by=order_by,
                                          order=order, lexicon=p.lexicon(locale), all_names=all_names == "true")
    return json_response(envelope_of(results, total, page, per_page))


@router.get("/taxa/{ids}", summary="Taxa by id (iNaturalist v1)",
            description="Up to 200 comma-separated ids, in that order, each with its ancestors (root first) and "
            "its active children; an id that does not exist is left out.",
            response_class=Response, responses={200: {"model": InatTaxonDetailPage}, **inat_errors(401, 422, 429)})
def taxa_by_id(
    engine: EngineDep, _principal: PrincipalDep,
    ids: Annotated[str, Path(pattern=r"^[0-9]{1,19}(,[0-9]{1,19}){0,199}$", description="taxon ids")],
    locale: p.Locale = None, preferred_place_id: p.PlaceId = None,
    all_names: Annotated[p.Flag | None, Query(description="every name of each taxon")] = None,
) -> Response:
    wanted = p.id_list(ids) or []
    with transaction(engine.readers) as session:
        results = inat_taxa.details(session, wanted, lexicon=p.lexicon(locale), all_names=all_names == "true")
    return json_response(envelope_of(results, len(results), 1, len(results)))


@router.get("/projects/{ids}", summary="Projects by number or slug (iNaturalist v1)",
            description="Comma-separated project numbers (`project_ids` of observations) or slugs; only the public "
            "projects that enable the identification service; others are left out.",
            response_class=Response, responses={200: {"model": InatProjectPage}, **inat_errors(401, 422, 429)})
def projects_by_id(
    engine: EngineDep, _principal: PrincipalDep,
    ids: Annotated[str, Path(pattern=p.WORD_LIST, description="project numbers or slugs")],
    rule_details: Annotated[p.Flag | None, Query(description="accepted and ignored")] = None,
    locale: p.Locale = None, preferred_place_id: p.PlaceId = None,
) -> Response:
    projects = served(engine)
    found = [project.slug for project in (find(projects, value) for value in p.split(ids)) if project is not None]
    results = [project_json(projects[slug]) for slug in dict.fromkeys(found)]
    return json_response(envelope_of(results, len(results), 1, len(results)))


@router.get("/photos/{photo_id}/{size}.jpg", summary="A photo at one of iNaturalist's sizes",
            description="square (75 px, cropped), thumb (100), small (240), medium (500), large (1024) or original "
            "(at most 2048 px): made once from the stored photo by decoding and encoding it again, so it carries no "
            "metadata (no EXIF place or camera). Only photos of observations this API lists.",
            response_class=Response,
            responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "the photo as a JPEG"}, **inat_errors(401, 404, 422, 429)})
def photo(
    engine: EngineDep, _principal: PrincipalDep,
    photo_id: Annotated[int, Path(ge=1, le=p.MAX_ID, description="the photo's id (photos[].id)")],
    size: Annotated[Literal[tuple(PHOTO_SIZES)], Path(description="the size")],  # type: ignore[valid-type]
) -> Response:
    with transaction(engine.readers) as session:
        found = find_photo(session, photo_id)
    projects = served(engine)
    if found is None or found.status != "published" or found.project not in projects \
            or not found.content_type.startswith("image/"):
        raise ApiError(404, "photo_not_found", f"no photo {photo_id}")
    data = photo_bytes(engine, found.sha256, size)
    if data is None:
        raise ApiError(404, "photo_not_found", f"photo {photo_id} cannot be decoded")
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "public, max-age=300", "ETag": f'"{found.sha256}-{size}-v1"',
                             "X-Content-Type-Options": "nosniff"})
