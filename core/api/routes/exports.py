"""Downloads: a project's observations as CSV or GeoJSON, and as a Darwin Core Archive for GBIF.

Both take the list's filters (``core.filters``); both serve published observations as the public
sees them, and staff of the project may ask for ``scope=all`` (audited, ``core.export.audited``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from core import data_use
from core.api.access import can_see_project
from core.api.deps import DbInt, EngineDep, PrincipalDep, deny
from core.api.params import IsoDateTime
from core.api.schemas import error_responses
from core.dwca import archive, check_dataset
from core.engine import Engine
from core.export import ExportOptions, export
from core.filters import FILTER_PARAMETERS, parse_filters, query_filters
from core.licences import KNOWN_LICENCES
from core.lifecycle import get_project
from core.tokens import Principal
from core.types import ProjectContext

router = APIRouter(prefix="/api/v1", tags=["export"])
TYPES = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}
OWN_PARAMETERS = frozenset({"format", "scope", "excel", "gbif_only", "purpose", "purpose_text"})
"""The export's own parameters; every other query parameter is a filter."""
FILTERS_TEXT = ("Filters are those of the observation list (`status`, `kind`, `since`, `bbox`, `polygon`, "
                "`licence`, ... and `field.NAME` for a field of the kinds' schemas: `field.count>=3`, "
                "`field.category=in:1,2`); see docs/filters.md.")


def filter_query(
    status: Literal["pending", "published", "unpublished", "trashed"] | None = None,
    grade: Literal["casual", "needs_id", "research"] | None = None,
    contributor: Annotated[DbInt | None, Query(description=FILTER_PARAMETERS["contributor"])] = None,
    kind: Annotated[str | None, Query(max_length=64, description=FILTER_PARAMETERS["kind"])] = None,
    since: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["since"])] = None,
    until: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["until"])] = None,
    created_since: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["created_since"])] = None,
    created_until: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["created_until"])] = None,
    updated_since: Annotated[IsoDateTime | None, Query(description=FILTER_PARAMETERS["updated_since"])] = None,
    bbox: Annotated[str | None, Query(max_length=200, description=FILTER_PARAMETERS["bbox"])] = None,
    polygon: Annotated[str | None, Query(max_length=20_000, description=FILTER_PARAMETERS["polygon"])] = None,
    has_media: Annotated[Literal["true", "false"] | None, Query(description=FILTER_PARAMETERS["has_media"])] = None,
    licence: Annotated[Literal[KNOWN_LICENCES] | None,  # type: ignore[valid-type]
                       Query(description=FILTER_PARAMETERS["licence"])] = None,
) -> None:
    """Declares the filters (OpenAPI, unknown-parameter check); their text is parsed by core.filters."""


FilterQuery = Depends(filter_query)
Purpose = Annotated[Literal[data_use.PURPOSES] | None,  # type: ignore[valid-type]
                    Query(description="why you download: research, education, policy, commercial or other (required "
                          "where the project's `download_purpose` says so: 422 `purpose_required`). Counted per "
                          "observation and shown to contributors; who downloaded is never recorded")]
PurposeText = Annotated[str | None, Query(max_length=data_use.MAX_TEXT, description="the purpose in your words")]
PURPOSE_TEXT = (" A download may say why (`purpose`, `purpose_text`); each complete download is counted per "
                "observation and purpose, never who downloaded (docs/codesign.md).")


def export_options(request: Request, engine: Engine, principal: Principal, project: ProjectContext, scope: str,
                   gbif_only: bool) -> ExportOptions:
    """Who may export what, and the filters asked: 401/403 for a project or scope the caller may not
    have, 422 for a filter that does not parse."""
    if not can_see_project(principal, project):
        raise deny(principal, f"project {project.slug!r} is not public")
    staff = principal.is_staff_of(project.slug)
    if scope == "all" and not staff:
        raise deny(principal, "exporting personal data (scope=all)")
    params = query_filters(request.query_params.multi_items(), skip=OWN_PARAMETERS)
    chosen = parse_filters(engine, project, params)
    if chosen.contributor is not None and not staff and chosen.contributor != principal.contributor_id:
        # whose observations these are is personal data, even when each of them is public
        raise deny(principal, "filtering by another contributor")
    return ExportOptions(scope=scope, filters=chosen, filter_params=params, gbif_only=gbif_only,
                         actor=principal.actor)


@router.get("/projects/{slug}/export", summary="Download observations as CSV or GeoJSON",
            description="Published observations as the public sees them: no contributor, places as each "
            "observation's privacy allows (private ones empty, obscured ones on the project's cell). Staff of the "
            "project may ask for `scope=all`: every observation, exact places, the contributor's account id; "
            "each such export is audited. CSV has one column per field of the kinds' schemas (`field.NAME`), "
            "`fields_other` for the rest, plugins' columns, licence and place-privacy columns; `excel=true` "
            "writes a UTF-8 byte order mark and `;` between cells. " + FILTERS_TEXT + PURPOSE_TEXT,
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}},
                       **error_responses(401, 403, 404, 422, 429)},
            dependencies=[FilterQuery])
def export_project(
    slug: str, request: Request, engine: EngineDep, principal: PrincipalDep,
    format: Literal["csv", "geojson"] = "csv",
    scope: Literal["public", "all"] = "public",
    excel: Annotated[bool, Query(description="CSV for spreadsheets: UTF-8 byte order mark, `;` between cells")] = False,
    gbif_only: Annotated[bool, Query(description="only observations under a licence GBIF accepts "
                                                 "(CC0, CC BY, CC BY-NC)")] = False,
    purpose: Purpose = None, purpose_text: PurposeText = None,
) -> StreamingResponse:
    project = get_project(engine, slug)
    options = export_options(request, engine, principal, project, scope, gbif_only)
    given = data_use.check_purpose(engine, slug, purpose, purpose_text)
    chunks = data_use.counted_export(engine, project, options, given,
                                     export(engine, project, format, options=options, excel=excel and format == "csv"))
    name = f"{slug}-observations.{format}"
    return StreamingResponse(chunks, media_type=TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/projects/{slug}/export/dwca", summary="Download a Darwin Core Archive (for GBIF)",
            description="A zip with meta.xml, eml.xml (the project's `dataset` settings), occurrence.txt (the "
            "Occurrence core) and multimedia.txt (the Simple Multimedia extension, one row per photo). Published "
            "observations by default, places as the public sees them; `gbif_only=true` keeps observations under a "
            "licence GBIF accepts; staff may ask for `scope=all` (every status; audited). 409 `dataset_incomplete` "
            "names each registry.yaml key GBIF needs that is missing. " + FILTERS_TEXT + PURPOSE_TEXT,
            response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}, **error_responses(401, 403, 404, 409, 422, 429)},
            dependencies=[FilterQuery])
def export_dwca(
    slug: str, request: Request, engine: EngineDep, principal: PrincipalDep,
    scope: Literal["public", "all"] = "public",
    gbif_only: Annotated[bool, Query(description="only observations under a licence GBIF accepts "
                                                 "(CC0, CC BY, CC BY-NC)")] = False,
    purpose: Purpose = None, purpose_text: PurposeText = None,
) -> StreamingResponse:
    project = get_project(engine, slug)
    options = export_options(request, engine, principal, project, scope, gbif_only)
    check_dataset(project)
    given = data_use.check_purpose(engine, slug, purpose, purpose_text)
    chunks = data_use.counted_export(engine, project, options, given, archive(engine, project, options), "dwca")
    return StreamingResponse(chunks, media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{slug}-dwca.zip"'})
