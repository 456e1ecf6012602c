"""The public map's open-data download: accept the project's licence, then get its public export.

``POST /map/{slug}/download`` (the dialog's form: CSRF token, ``accept=yes``, ``format`` csv or
geojson) counts one acceptance (``core.licence_acceptances``: a number per project, licence and
day, never who) and streams the export the API's ``/projects/{slug}/export`` streams to the public
(``core.export``, scope ``public``: published observations, no contributor, places as their
privacy allows). Without acceptance nothing is counted or sent (400 page saying why). The
dialog asks what the data is for (the project's ``download_purpose``: off, optional, required);
the download is counted per observation and purpose by ``core.data_use`` once it has left.

``GET /map/{slug}/acceptances`` gives the project's staff the counts as JSON.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from core import data_use
from core.api.routes.exports import TYPES
from core.errors import ValidationFailed
from core.export import FORMATS, ExportOptions, export
from core.licence_acceptances import acceptance_counts, count_acceptance
from core.web.guards import require_csrf, staff_project
from core.web.map.pages import map_project
from core.web.templating import error_page, gettext_of

router = APIRouter(include_in_schema=False)


@router.post("/map/{slug}/download")
async def download(request: Request, slug: str) -> Response:
    await require_csrf(request)
    project = await map_project(request, slug)
    engine = request.app.state.engine
    form = await request.form()
    _ = gettext_of(request)
    fmt = str(form.get("format") or "csv")
    if fmt not in FORMATS:
        return await error_page(request, 400, _("Download refused"),
                                _("Choose a format: CSV or GeoJSON."))
    if form.get("accept") != "yes":
        return await error_page(request, 400, _("Download refused"),
                                _("The open data can only be downloaded after accepting its licence."))
    try:
        given = data_use.check_purpose(engine, project.slug, str(form.get("purpose") or "") or None,
                                       str(form.get("purpose_text") or "") or None)
    except ValidationFailed as refused:
        code = refused.problems[0].code if refused.problems else ""
        message = _("This project asks what its data will be used for: choose a purpose.") \
            if code == "purpose_required" else refused.message
        return await error_page(request, 422, _("Download refused"), message)
    await run_in_threadpool(count_acceptance, engine, project)
    options = ExportOptions(scope="public", actor="map")
    # counted once the file has left (core.data_use: per observation and purpose, never who)
    chunks = data_use.counted_export(engine, project, options, given, export(engine, project, fmt, options=options),
                                     "open_data")
    name = f"{project.slug}-open-data.{fmt}"
    return StreamingResponse(chunks, media_type=TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/map/{slug}/acceptances")
async def acceptances(request: Request, slug: str) -> JSONResponse:
    _principal, project = await staff_project(request, slug)
    counts = await run_in_threadpool(acceptance_counts, request.app.state.engine, project)
    return JSONResponse(counts, headers={"Cache-Control": "no-store"})
