"""The public map's pages: the list of public projects, a project's map with its information
panel, and the JSON the map's script reads (markers by viewport, one marker's details).

The map is the public's: a private project has no map (the same 404 page as a missing one, for
its members too), and every place is shown as an anonymous visitor may see it, whoever asks.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from core import data_use
from core.engine import Engine
from core.errors import NotFound
from core.filters import query_filters
from core.licences import licence_uri
from core.projects import project_kinds
from core.types import ProjectContext
from core.web.guards import PageRefused
from core.web.map.details import observation_details
from core.web.map.markers import category_fields, map_counts, markers, parse_map_query, taxon_field
from core.web.templating import error_page, gettext_of, render

router = APIRouter(include_in_schema=False)
MAX_ID = 2_147_483_647
JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def public_projects(engine: Engine) -> list[ProjectContext]:
    """The projects with a public map, by name."""
    return sorted((p for p in engine.registry.contexts().values() if p.public), key=lambda p: p.name.lower())


def find_public(engine: Engine, slug: str) -> ProjectContext | None:
    """Public project ``slug``; None for a private or missing one (the map cannot tell them apart)."""
    project = engine.registry.contexts().get(slug)
    return project if project is not None and project.public else None


async def map_project(request: Request, slug: str) -> ProjectContext:
    """Public project ``slug``, or the 404 page (private and missing alike)."""
    project = find_public(_engine(request), slug)
    if project is None:
        _ = gettext_of(request)
        raise PageRefused(await error_page(request, 404, _("Not found"), _("There is no public map of that project.")))
    return project


def _json_project(request: Request, slug: str) -> ProjectContext:
    project = find_public(_engine(request), slug)
    if project is None:
        raise NotFound(f"there is no public map of project {slug!r}", code="project_not_found")
    return project


@router.get("/map")
async def map_index(request: Request) -> HTMLResponse:
    return await render(request, "map/index.html", {"projects": public_projects(_engine(request))})


def _page_facts(engine: Engine, project: ProjectContext) -> dict[str, Any]:
    kinds = sorted(project_kinds(engine, project), key=lambda k: k.title.lower())
    return {"counts": map_counts(engine, project), "kinds": kinds, "taxon_field": taxon_field(engine, project),
            "categories": category_fields(engine, project)}


@router.get("/map/{slug}")
async def map_page(request: Request, slug: str) -> HTMLResponse:
    engine = _engine(request)
    project = await map_project(request, slug)
    facts = await run_in_threadpool(_page_facts, engine, project)
    return await render(request, "map/project.html", {
        "project": project, "licence_url": licence_uri(project.licence),
        "tile_url": engine.settings.map_tile_url, "tile_attribution": engine.settings.map_tile_attribution,
        "purpose_setting": data_use.setting(engine, project.slug), **facts})


@router.get("/map/{slug}/markers")
async def map_markers(request: Request, slug: str) -> JSONResponse:
    engine = _engine(request)
    project = _json_project(request, slug)
    query = parse_map_query(engine, project, query_filters(request.query_params.multi_items()))
    found = await run_in_threadpool(markers, engine, project, query)
    return JSONResponse(found, headers=JSON_HEADERS)


@router.get("/map/{slug}/observations/{obs_id}")
async def map_observation(request: Request, slug: str, obs_id: str) -> JSONResponse:
    engine = _engine(request)
    project = _json_project(request, slug)
    if not obs_id.isascii() or not obs_id.isdigit() or not 1 <= int(obs_id) <= MAX_ID:
        raise NotFound(f"no observation {obs_id[:20]!r} on this map", code="observation_not_found")
    found = await run_in_threadpool(observation_details, engine, project, int(obs_id))
    return JSONResponse(found, headers=JSON_HEADERS)
