"""The console's exports page: choose a format (CSV, GeoJSON, Darwin Core Archive), a scope and
the API's filters (``core.filters``), and the export is written in the background
(``core.export_jobs``); its page shows the progress (rows done of the total, polled by
``community.js``, or refreshed without JavaScript) and a download link when it is done.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from core import data_use, export_jobs
from core.errors import EngineError
from core.filters import FilterError
from core.licences import KNOWN_LICENCES
from core.projects import project_kinds
from core.types import GRADES, MODERATION_STATUSES, ProjectContext
from core.web.console.comments import engine_refusal
from core.web.guards import require_csrf, staff_project
from core.web.templating import render

router = APIRouter(include_in_schema=False)
PLAIN = ("kind", "status", "grade", "contributor", "bbox", "has_media", "licence")
"""Form fields passed to the filters as they are (empty: not filtered)."""
FIELD_LINE = re.compile(r"^(field\.[^=<>!]+?)\s*(>=|<=|!=|=)\s*(.*)$")
OPERATOR_KEYS = {">=": ">", "<=": "<", "!=": "!", "=": ""}
"""``field.count>=3`` is sent by a URL query as key ``field.count>`` and value ``3`` (``core.filters``)."""


class FormProblem(EngineError):
    code = "invalid_filter_value"
    http_status = 422


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormProblem(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _local_midnight(day: date, project: ProjectContext) -> str:
    return datetime.combine(day, time(0), ZoneInfo(project.timezone)).isoformat()


def filters_of(form: Mapping[str, str], project: ProjectContext) -> dict[str, str]:
    """The ``core.filters`` parameters that the form asks for: plain fields as they are, the
    observed-from/to days as the project's local midnights (to: the whole day), and one
    ``field.NAME`` condition a line (``field.count>=3``)."""
    params = {name: form[name].strip() for name in PLAIN if form.get(name, "").strip()}
    if form.get("observed_from", "").strip():
        params["since"] = _local_midnight(_day(form["observed_from"].strip(), "observed from"), project)
    if form.get("observed_to", "").strip():
        params["until"] = _local_midnight(_day(form["observed_to"].strip(), "observed to") + timedelta(days=1), project)
    for line in form.get("fields", "").splitlines():
        if not line.strip():
            continue
        found = FIELD_LINE.match(line.strip())
        if not found:
            raise FormProblem(f"field filter {line.strip()!r} must look like field.NAME=VALUE, field.NAME>=3 or "
                              "field.NAME<=3")
        key = found.group(1) + OPERATOR_KEYS[found.group(2)]
        if key in params:
            raise FormProblem(f"field filter {found.group(1)} is given twice with the same operator")
        params[key] = found.group(3)
    return params


async def _form_page(request: Request, project: ProjectContext, principal: Any, form: Mapping[str, str],
                     problem: str | None = None, status_code: int = 200) -> Response:
    engine = request.app.state.engine
    jobs = await run_in_threadpool(export_jobs.recent, engine, principal, project.slug)
    kinds = [k.name for k in project_kinds(engine, project)]
    return await render(request, "console/exports.html", {
        "project": project, "section": "exports", "form": form, "problem": problem, "jobs": jobs,
        "kinds": kinds, "statuses": MODERATION_STATUSES, "grades": GRADES,
        "purpose_setting": data_use.setting(engine, project.slug),
        "licences": [name for name in KNOWN_LICENCES if not project.licences or name in project.licences],
    }, status_code=status_code)


@router.get("/console/projects/{slug}/exports")
async def exports_page(request: Request, slug: str) -> Response:
    principal, project = await staff_project(request, slug)
    return await _form_page(request, project, principal, {"format": "csv", "scope": "public"})


@router.post("/console/projects/{slug}/exports")
async def start_export(request: Request, slug: str) -> Response:
    await require_csrf(request)
    principal, project = await staff_project(request, slug)
    raw = await request.form()
    form = {key: str(value) for key, value in raw.items() if isinstance(value, str) and key != "csrf"}
    try:
        params = filters_of(form, project)
        given = data_use.check_purpose(request.app.state.engine, project.slug, form.get("purpose") or None,
                                       form.get("purpose_text") or None)
        job = await run_in_threadpool(export_jobs.start, request.app.state.engine, principal, project,
                                      form.get("format", "csv"), scope=form.get("scope", "public"),
                                      filters=params, gbif_only=form.get("gbif_only") == "1", purpose=given)
    except (FilterError, FormProblem) as exc:
        return await _form_page(request, project, principal, form, exc.message, 422)
    except EngineError as exc:
        if exc.http_status in (409, 422):
            return await _form_page(request, project, principal, form, exc.message, exc.http_status)
        return await engine_refusal(request, exc)
    return RedirectResponse(f"/console/projects/{slug}/exports/{job.id}", status_code=303)


async def _job(request: Request, slug: str, job_id: int) -> tuple[Any, ProjectContext, export_jobs.JobView]:
    principal, project = await staff_project(request, slug)
    job = await run_in_threadpool(export_jobs.get, request.app.state.engine, principal, slug, job_id)
    return principal, project, job


@router.get("/console/projects/{slug}/exports/{job_id}")
async def job_page(request: Request, slug: str, job_id: int) -> Response:
    try:
        _principal, project, job = await _job(request, slug, job_id)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return await render(request, "console/exports.html", {"project": project, "section": "exports", "job": job})


@router.get("/console/projects/{slug}/exports/{job_id}/progress")
async def job_progress(request: Request, slug: str, job_id: int) -> Response:
    try:
        _principal, _project, job = await _job(request, slug, job_id)
    except EngineError as exc:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.http_status)
    return JSONResponse(job.as_json(), headers={"Cache-Control": "no-store"})


@router.get("/console/projects/{slug}/exports/{job_id}/download")
async def job_download(request: Request, slug: str, job_id: int) -> Response:
    principal, _project = await staff_project(request, slug)
    try:
        path, job = await run_in_threadpool(export_jobs.file_of, request.app.state.engine, principal, slug, job_id)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return FileResponse(path, media_type=export_jobs.MEDIA_TYPES[job.format], filename=job.download_name,
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

