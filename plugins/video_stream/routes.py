"""video_stream's API: deployments, jobs (from an upload, a path, a URL or a tus upload), their
progress (also as Server-Sent Events: ``progress_stream``), cancelling, and the outputs.

Who may: a project's staff (admin, moderator) and operators do everything here; contributors and
experts get 403 (a job spends the workers' time for the whole project, deployments give camera
places exactly, and events of people are staff-only); anonymous callers 401. A job of another
project answers as a missing one (404). The machine observations the jobs make are read through
the core API, with its own access rules.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select

from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import MAX_ID, EngineDep, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.limits import read_body
from core.api.schemas import ErrorOut, error_responses
from core.engine import Engine
from core.errors import ValidationFailed
from core.tokens import Principal
from plugins.video_stream import jobs, progress_stream, submission
from plugins.video_stream.db import events
from plugins.video_stream.submission import Refused
from plugins.video_stream.upload import receive_form

router = APIRouter(prefix="/api/v1", tags=["video"])
router.include_router(progress_stream.router)

JobId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="a video job's id")]
Slug = Annotated[str, PathParam(max_length=64, description="a project's slug")]
OUTPUTS = {"summary.csv": "text/csv", "summary.json": "application/json", "contact_sheet.png": "image/png",
           "camtrap-dp.zip": "application/zip", "megadetector.json": "application/json"}
OutputName = Literal["summary.csv", "summary.json", "contact_sheet.png", "camtrap-dp.zip", "megadetector.json"]
GAPS_SHOWN = 100


def signed_in(principal: Principal, what: str) -> None:
    if principal.anonymous:
        raise deny(principal, what)


def staff_project(engine: Engine, principal: Principal, slug: str, what: str) -> Any:
    """The project, for its staff, if it uses video_stream: 401, 404, 403 or 404 ``video_off``."""
    signed_in(principal, what)
    project = submission.get_project(engine, slug)
    submission.require_staff(principal, slug, what)
    return submission.video_project(engine, project.slug)


# -- deployments ------------------------------------------------------------------------------


class DeploymentIn(jobs.DeploymentIn):
    """A camera at a place over a period (the store's checks; a time without a zone is the project's)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [{
        "deployment_id": "cam-01", "location_name": "Fox path by the pond", "lat": 41.412, "lon": 2.131,
        "start": "2026-05-01T08:00:00+02:00", "end": "2026-05-15T08:00:00+02:00", "camera_model": "Reconyx HF2X",
        "camera_height_m": 0.6, "bait": False, "habitat": "Mediterranean oak forest"}]})


class DeploymentOut(BaseModel):
    deployment_id: str
    location_name: str | None = None
    lat: float
    lon: float
    start: datetime | None = None
    end: datetime | None = None
    camera_model: str | None = None
    camera_height_m: float | None = None
    bait: bool | None = None
    habitat: str | None = None
    created_at: datetime


class DeploymentPage(BaseModel):
    items: list[DeploymentOut]
    next_cursor: str | None = Field(description="the last item's deployment_id: send it as `cursor` for the next "
                                    "page (null: no more)")


@router.post("/projects/{slug}/video/deployments", status_code=201, response_model=DeploymentOut,
             summary="Add a deployment (a camera at a place over a period)",
             description="Project staff. `deployment_id` is unique in the project (409 `deployment_exists`).",
             responses=error_responses(401, 403, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def post_deployment(slug: Slug, body: DeploymentIn, engine: EngineDep, principal: PrincipalDep) -> Any:
    project = staff_project(engine, principal, slug, "adding a deployment")
    try:
        created = jobs.create_deployment(engine, project, principal, body.model_dump())
    except ValidationFailed as exc:
        raise submission.refused_as(exc, "deployment") from None
    return submission.deployment_dict(created)


@router.get("/projects/{slug}/video/deployments", response_model=DeploymentPage,
            summary="The project's deployments, by deployment_id",
            responses=error_responses(401, 403, 404, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def get_deployments(slug: Slug, engine: EngineDep, principal: PrincipalDep,
                    cursor: Annotated[str | None, Query(max_length=100)] = None,
                    per_page: Annotated[int, Query(ge=1, le=500)] = 100) -> Any:
    project = staff_project(engine, principal, slug, "reading deployments")
    rows = submission.list_deployments(engine, project.slug, after=cursor, limit=per_page)
    return {"items": [submission.deployment_dict(r) for r in rows],
            "next_cursor": rows[-1].deployment_id if len(rows) == per_page else None}


# -- jobs -------------------------------------------------------------------------------------


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"deployment": "cam-01", "path": "/srv/camera-traps/cam-01/IMG_0042.MP4", "settings": {"sample_fps": 4}},
        {"deployment": "pier", "url": "rtsp://camera.example.org/live", "settings": {"sensitivity": 0.4}}]})

    deployment: str = Field(min_length=1, max_length=100, description="the deployment_id the video comes from")
    path: str | None = Field(None, min_length=1, max_length=4096,
                             description="a file the server may read, inside the operator's allowed_folders")
    url: str | None = Field(None, min_length=1, max_length=submission.MAX_URL,
                            description="http(s) (a file, or a live stream with `stream: true`) or rtsp (live)")
    upload_id: str | None = Field(None, min_length=1, max_length=64,
                                  description="a finished tus upload of yours (the mobile bridge's /api/v1/mobile/uploads)")
    stream: bool | None = Field(None, description="an http(s) URL is a live stream (rtsp always is)")
    settings: dict[str, Any] | None = Field(None, description="the registry's video_stream settings for this job: "
                                            "sample_fps, roi, min_area, sensitivity, model, classes_of_interest, "
                                            "top_k; the project's settings fill in the rest")
    start_time: datetime | None = Field(None, description="when the video starts, if its metadata does not say "
                                        "(without a zone: the project's local time)")

    @model_validator(mode="after")
    def _one_source(self) -> "JobIn":
        given = [n for n in ("path", "url", "upload_id") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one source, not {' and '.join(given)}")
        return self


JOB_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": JobIn.model_json_schema()},  # inline: no route declares JobIn as a body
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["deployment", "file"],
        "properties": {
            "deployment": {"type": "string", "minLength": 1, "maxLength": 100},
            "file": {"type": "string", "format": "binary", "description": "the video"},
            "settings": {"type": "string", "description": "the settings as JSON text, e.g. {\"sample_fps\": 4}"},
            "start_time": {"type": "string", "format": "date-time"},
        }}},
}}}


class ProgressOut(BaseModel):
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    frames_done: int = Field(description="sampled frames processed")
    frames_total: int | None = Field(description="sampled frames to process (null: a live stream)")
    percent: float | None
    fps: float | None = Field(description="frames processed per second, lately")
    eta_s: float | None = Field(description="seconds left, at that pace")
    error: str | None = None
    error_code: str | None = None


class JobError(BaseModel):
    code: str
    message: str


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 7, "uuid": "0b7f8c1e-4a0e-4a37-9a51-2f6f0c2b9d10", "project": "wildlife", "deployment": "cam-01",
        "source_kind": "upload", "source": None, "filename": "IMG_0042.MP4",
        "settings": {"sample_fps": 2, "min_area": 0.002, "sensitivity": 0.5, "classes_of_interest": [], "top_k": 3},
        "state": "running", "cancel_requested": False,
        "progress": {"state": "running", "frames_done": 40, "frames_total": 120, "percent": 33.3, "fps": 18.5,
                     "eta_s": 4.3, "error": None},
        "video": {"fps": 10.0, "width": 640, "height": 360, "frame_count": 600, "duration_s": 60.0, "codec": "h264",
                  "start_time": "2026-05-03T04:12:00+00:00", "metadata_start_time": "2026-05-03T04:12:00+00:00",
                  "start_time_source": "metadata"},
        "gaps": [], "gaps_total": 0, "error": None, "events": 1, "observations": 1, "outputs": {},
        "created_at": "2026-05-03T09:00:00+00:00", "started_at": "2026-05-03T09:00:01+00:00", "finished_at": None}]})

    id: int
    uuid: str
    project: str
    deployment: str | None = Field(description="its deployment_id")
    source_kind: Literal["upload", "path", "url", "stream"]
    source: str | None = Field(description="the path or the URL (a password in it shown as ***); null for an upload")
    filename: str | None
    settings: dict[str, Any]
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    cancel_requested: bool
    progress: ProgressOut
    video: dict[str, Any] | None = Field(description="what the video says of itself (fps, width, height, "
                                         "frame_count, duration_s, codec, metadata_start_time), and start_time: the "
                                         "absolute start its events are timed from, with start_time_source (metadata, "
                                         "setting, job_created: an estimate, stream_clock)")
    gaps: list[dict[str, Any]] = Field(description=f"a stream's outages ({{start, end, reason}}), the last "
                                       f"{GAPS_SHOWN}")
    gaps_total: int
    error: JobError | None
    events: int = Field(description="events found so far (animals, people or vehicles passing)")
    observations: int = Field(description="machine observations made from them")
    outputs: dict[str, str] = Field(description="output name -> its URL, once the job is done")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: int | None = Field(description="send it as `cursor` for the next (older) page; null: no more")


def _counts(engine: Engine, job_ids: list[int]) -> dict[int, tuple[int, int]]:
    """job id -> (events, events with an observation)."""
    if not job_ids:
        return {}
    with engine.db.connect() as conn:
        rows = conn.execute(select(events.c.job, func.count(), func.count(events.c.observation_id))
                            .where(events.c.job.in_(job_ids)).group_by(events.c.job))
        return {r[0]: (r[1], r[2]) for r in rows}


def job_out(engine: Engine, job: dict[str, Any], *, deployment: str | None = None,
            counts: tuple[int, int] | None = None) -> dict[str, Any]:
    """A job as the API (and the CLI's --json) shows it."""
    if deployment is None:
        deployment = submission.deployment_ids(engine, {job["deployment"]}).get(job["deployment"])
    if counts is None:
        counts = _counts(engine, [job["id"]]).get(job["id"], (0, 0))
    source = None
    if job["source_kind"] == "path":
        source = job["source"]
    elif job["source_kind"] in ("url", "stream"):
        source = jobs.shown_source(job["source_kind"], job["source"])
    gaps = list(job.get("gaps") or [])
    progress = dict(jobs.job_progress(job))
    progress.setdefault("state", job["state"])
    error = {"code": job.get("error_code") or "failed", "message": job.get("error") or ""} \
        if job.get("error") or job.get("error_code") else None
    outputs = {name: f"/api/v1/video/jobs/{job['id']}/outputs/{name}" for name in (job.get("outputs") or {})
               if name in OUTPUTS}
    return {"id": job["id"], "uuid": job["uuid"], "project": job["project"], "deployment": deployment,
            "source_kind": job["source_kind"], "source": source, "filename": job.get("filename"),
            "settings": job.get("settings") or {}, "state": job["state"],
            "cancel_requested": bool(job.get("cancel_requested")), "progress": progress, "video": job.get("video"),
            "gaps": gaps[-GAPS_SHOWN:], "gaps_total": len(gaps), "error": error, "events": counts[0],
            "observations": counts[1], "outputs": outputs, "created_at": job["created_at"],
            "started_at": job.get("started_at"), "finished_at": job.get("finished_at")}


def _invalid(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])


async def _json_job(request: Request) -> JobIn:
    body = await read_body(request, 64 * 1024)
    try:
        return JobIn.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _form_job(fields: dict[str, str]) -> JobIn:
    unknown = sorted(set(fields) - {"deployment", "settings", "start_time", "stream"})
    if unknown:
        raise ApiError(422, "invalid_upload", f"unknown field(s) {', '.join(unknown)}; a multipart job takes "
                       "deployment, settings (JSON text), start_time and the file")
    data: dict[str, Any] = {k: v for k, v in fields.items() if k in ("deployment", "start_time")}
    if "settings" in fields:
        try:
            data["settings"] = json.loads(fields["settings"])
        except ValueError as exc:
            raise Refused(f"settings: not valid JSON: {exc}", code="invalid_settings") from None
    try:
        return JobIn.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _create(engine: Engine, project: Any, principal: Principal, job: JobIn, upload: tuple[Path, str] | None) -> dict[str, Any]:
    """Check everything (cheap checks first), then store the job."""
    settings = submission.job_settings(engine, project, job.settings, job.start_time)
    submission.find_deployment(engine, project.slug, job.deployment)
    if upload is not None:
        submission.probe(engine, upload[0])
        kind, source, filename = "upload", str(upload[0]), upload[1]
    elif job.path is not None:
        kind, source, filename = "path", str(submission.checked_path(engine, job.path)), Path(job.path).name
    elif job.url is not None:
        kind, source, filename = submission.url_kind(job.url, job.stream), job.url, None
    elif job.upload_id is not None:
        path, name = submission.tus_upload_path(engine, project, principal, job.upload_id)
        kind, source, filename = "upload", str(path), name
    else:
        raise Refused("give the video: a multipart file, or one of path, url, upload_id", code="no_source")
    created = submission.submit(engine, project, principal, deployment=job.deployment, source_kind=kind,
                                source=source, filename=filename, settings=settings)
    return job_out(engine, created, deployment=job.deployment, counts=(0, 0))


@router.post("/projects/{slug}/video/jobs", status_code=201, response_model=JobOut,
             summary="Submit a video: an upload (multipart), a path, a URL or a tus upload",
             description="Project staff. JSON names a `path` (inside the operator's allowed folders), a `url` "
             "(http(s) or rtsp) or an `upload_id` (a finished tus upload of the mobile bridge, for large files); "
             "multipart sends the video itself as `file` (streamed to disk, up to the service's "
             "max_upload_bytes). A file is probed first: not a video, truncated, no frames, an unreadable codec "
             "or a resolution over max_pixels is refused (422, with that code) and nothing is stored.",
             responses={**error_responses(401, 403, 404, 413, 422, 429),
                        400: {"model": ErrorOut, "description": "unreadable multipart, or a body cut off"},
                        415: {"model": ErrorOut, "description": "neither JSON nor multipart"}},
             openapi_extra={**TOKEN_REQUIRED_EXTRA, **JOB_BODY})
async def post_job(slug: Slug, request: Request, engine: EngineDep, principal: PrincipalDep) -> Any:
    project = await run_in_threadpool(staff_project, engine, principal, slug, "submitting a video")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        job = await _json_job(request)
        out = await run_in_threadpool(_create, engine, project, principal, job, None)
        return JSONResponse(JobOut.model_validate(out).model_dump(mode="json"), status_code=201)
    if kind != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send application/json (path, url or upload_id), or "
                       "multipart/form-data with the video as 'file'")
    form = await receive_form(request, lambda name: submission.new_upload_path(engine, name),
                              submission.max_upload_bytes(engine))
    try:
        if form.path is None:
            raise Refused("the multipart body has no video: send it as the file part 'file'", code="no_source")
        job = _form_job(form.fields)
        out = await run_in_threadpool(_create, engine, project, principal, job, (form.path, form.filename))
    except BaseException:
        form.discard()
        raise
    return JSONResponse(JobOut.model_validate(out).model_dump(mode="json"), status_code=201)


@router.get("/projects/{slug}/video/jobs", response_model=JobPage, summary="The project's video jobs, newest first",
            description="Project staff; `state` and `deployment` filter, `cursor` continues a page.",
            responses=error_responses(401, 403, 404, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def get_jobs(slug: Slug, engine: EngineDep, principal: PrincipalDep,
             state: Literal["queued", "running", "done", "failed", "cancelled"] | None = None,
             deployment: Annotated[str | None, Query(max_length=100)] = None,
             cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
             per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    project = staff_project(engine, principal, slug, "reading video jobs")
    row_id = submission.find_deployment(engine, project.slug, deployment)["id"] if deployment is not None else None
    rows = jobs.list_jobs(engine, project.slug, state=state, deployment=row_id, before_id=cursor, limit=per_page)
    names = submission.deployment_ids(engine, {r["deployment"] for r in rows})
    counts = _counts(engine, [r["id"] for r in rows])
    items = [job_out(engine, r, deployment=names.get(r["deployment"]), counts=counts.get(r["id"], (0, 0)))
             for r in rows]
    return {"items": items, "next_cursor": rows[-1]["id"] if len(rows) == per_page else None}


@router.get("/video/jobs/{job_id}", response_model=JobOut,
            summary="A video job: state, progress (frames, percent, fps, time left), gaps, error, outputs",
            description="Staff of the job's project; any other caller gets the 404 of a missing job.",
            responses=error_responses(401, 404, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def get_job(job_id: JobId, engine: EngineDep, principal: PrincipalDep) -> Any:
    signed_in(principal, "reading a video job")
    return job_out(engine, submission.job_of(engine, principal, job_id))


@router.post("/video/jobs/{job_id}/cancel", response_model=JobOut, summary="Cancel a video job",
             description="Staff of the job's project. A queued job is cancelled at once; a running one stops "
             "within a second or two (its events so far stay; a live stream stopped so ends `done`, with its "
             "outputs). Asking again is harmless; 409 `job_ended` for a job that is done or failed.",
             responses=error_responses(401, 404, 409, 422, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def post_cancel(job_id: JobId, engine: EngineDep, principal: PrincipalDep) -> Any:
    signed_in(principal, "cancelling a video job")
    submission.job_of(engine, principal, job_id)
    return job_out(engine, jobs.request_cancel(engine, job_id))


@router.get("/video/jobs/{job_id}/outputs/{name}", summary="A job's output file",
            description="Staff of the job's project, once the job is done: `summary.csv` and `summary.json` "
            "(events per class over time), `contact_sheet.png` (keyframes with their boxes), `camtrap-dp.zip` "
            "(a Camtrap DP 1.0 package) and `megadetector.json` (MegaDetector batch output format 1.6). 404 "
            "`output_not_ready` before.",
            responses={200: {"description": "the file", "content": {t: {} for t in dict.fromkeys(OUTPUTS.values())}},
                       **error_responses(401, 404, 422, 429)},
            response_class=FileResponse, openapi_extra=TOKEN_REQUIRED_EXTRA)
def get_output(job_id: JobId, name: OutputName, engine: EngineDep, principal: PrincipalDep) -> FileResponse:
    signed_in(principal, "reading a video job's outputs")
    job = submission.job_of(engine, principal, job_id)
    stored = (job.get("outputs") or {}).get(name)
    if not stored:
        raise ApiError(404, "output_not_ready", f"video job {job_id} has no {name} ({job['state']}); outputs are "
                       "written when the job is done")
    folder = jobs.job_folder(engine, job_id).resolve()
    path = (folder / stored).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise ApiError(404, "output_not_ready", f"video job {job_id}'s {name} is missing from its folder")
    download = f"{job['uuid'][:8]}-{name}"
    return FileResponse(path, media_type=OUTPUTS[name], filename=download)
