"""video_stream's job store: deployments, jobs and their states, progress, cancellation, and the
lease a worker holds while it runs a job (claim, heartbeat, checkpoint, finish).

States: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``. A running job belongs
to the worker holding its lease (``lease_token`` until ``lease_until``); the worker renews it
every second or so, and every write it makes is conditional on still holding it, so a worker
that was presumed dead and comes back can change nothing. A job whose lease ran out goes back
to ``queued`` (``recovery.recover_work``) and resumes from its checkpoint on another worker.
A queued job's ``lease_until`` says when its message is presumed lost and is sent again.
"""

from __future__ import annotations

import math
import uuid as uuid_module
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.db.models import utcnow
from core.errors import Conflict, EngineError, NotFound, ValidationFailed
from core.types import Problem, ProjectContext
from plugins.video_stream.db import deployments, events, jobs

TASK = "video_stream.process"
SERVICE = "video_stream"
STATES = ("queued", "running", "done", "failed", "cancelled")
ENDED = ("done", "failed", "cancelled")
SOURCE_KINDS = ("upload", "path", "url", "stream")
URL_SCHEMES = ("http", "https", "rtsp", "rtsps")

# operator config (registry.yaml services.video_stream.config) read here, with their defaults
DEFAULTS = {
    "lease_s": 30.0,             # a worker that has not renewed its job's lease this long is presumed dead
    "checkpoint_every_s": 5.0,   # a running job stores its checkpoint at least this often
    "resend_after_s": 900.0,     # a queued job no worker took this long is sent to the workers again
    "max_attempts": 5,           # a job whose worker died this many times fails (worker_lost)
    "job_max_fps": 0.0,          # sampled frames one job processes per second at most (0: no limit)
}


class JobRefused(EngineError):
    """A job or deployment that cannot be made as asked (a 4xx: nothing was stored)."""

    http_status = 422


class LeaseLost(Exception):
    """The worker no longer holds the job's lease (another took it over, or it was cancelled)."""


def config_value(engine: Any, key: str) -> Any:
    """An operator setting of the service, its default when registry.yaml leaves it out."""
    spec = engine.registry.services.get(SERVICE)
    config = dict(spec.config or {}) if spec is not None else {}
    value = config.get(key, DEFAULTS.get(key))
    return type(DEFAULTS[key])(value) if key in DEFAULTS and value is not None else value


def _project(engine: Any, project: ProjectContext | str) -> ProjectContext:
    if isinstance(project, ProjectContext):
        return project
    try:
        return engine.registry.project(project)
    except KeyError:
        raise NotFound(f"unknown project {project!r}", code="unknown_project") from None


def _problems(exc: ValidationError) -> list[Problem]:
    return [Problem(tuple(str(p) for p in err["loc"]), err["msg"].removeprefix("Value error, "), err["type"])
            for err in exc.errors()]


def _aware(value: datetime | None, tz: str) -> datetime | None:
    """A time in UTC; one without an offset is read in the project's time zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(timezone.utc)


# -- deployments ---------------------------------------------------------------------------------

_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"


class DeploymentIn(BaseModel):
    """A camera at a place over a period, as Camtrap DP's deployments table names it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    deployment_id: str = Field(min_length=1, max_length=100, pattern=_NO_CONTROL,
                               description="Camtrap DP deploymentID, unique in the project")
    lat: float = Field(ge=-90, le=90, description="latitude, WGS 84 degrees")
    lon: float = Field(ge=-180, le=180, description="longitude, WGS 84 degrees")
    location_name: str | None = Field(None, max_length=200, pattern=_NO_CONTROL)
    start: datetime | None = Field(None, description="when the camera started (ISO 8601)")
    end: datetime | None = Field(None, description="when it stopped (ISO 8601); not before start")
    camera_model: str | None = Field(None, max_length=200, pattern=_NO_CONTROL)
    camera_height_m: float | None = Field(None, ge=0, le=1000)
    bait: bool | None = None
    habitat: str | None = Field(None, max_length=200, pattern=_NO_CONTROL)

    @field_validator("lat", "lon", mode="before")
    @classmethod
    def _a_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number of degrees")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> "DeploymentIn":
        if self.start and self.end:
            start = self.start if self.start.tzinfo else self.start.replace(tzinfo=timezone.utc)
            end = self.end if self.end.tzinfo else self.end.replace(tzinfo=timezone.utc)
            if start > end:
                raise ValueError("start is after end")
        return self


def create_deployment(engine: Any, project: ProjectContext | str, principal: Any, data: Mapping[str, Any]) -> dict:
    """Store a deployment of ``project``; ValidationFailed (422) for bad values, Conflict (409,
    deployment_exists) for a deploymentID the project has already."""
    context = _project(engine, project)
    if not context.enables(SERVICE):
        raise JobRefused(f"project {context.slug!r} does not enable video_stream", code="service_not_enabled")
    try:
        parsed = DeploymentIn.model_validate(dict(data) if isinstance(data, Mapping) else data)
    except ValidationError as exc:
        raise ValidationFailed(_problems(exc)) from None
    values = parsed.model_dump()
    values["start"] = _aware(parsed.start, context.timezone)
    values["end"] = _aware(parsed.end, context.timezone)
    if values["start"] and values["end"] and values["start"] > values["end"]:
        raise ValidationFailed([Problem(("end",), "end is before start", "start_after_end")])
    values.update(project=context.slug, created_by=getattr(principal, "account_id", None), created_at=utcnow())
    try:
        with engine.db.begin() as conn:
            new_id = conn.execute(insert(deployments).values(**values)).inserted_primary_key[0]
    except IntegrityError:
        raise Conflict(f"project {context.slug!r} has a deployment {parsed.deployment_id!r} already",
                       code="deployment_exists") from None
    found = get_deployment(engine, context.slug, new_id)
    assert found is not None
    return found


def get_deployment(engine: Any, project: ProjectContext | str, deployment: int | str | Mapping[str, Any]) -> dict | None:
    """A deployment of ``project`` by row id (int), Camtrap DP deploymentID (str) or row (dict)."""
    slug = project.slug if isinstance(project, ProjectContext) else project
    if isinstance(deployment, Mapping):
        deployment = int(deployment["id"])
    column = deployments.c.id if isinstance(deployment, int) else deployments.c.deployment_id
    with engine.db.connect() as conn:
        row = conn.execute(select(deployments).where(deployments.c.project == slug, column == deployment)).first()
    return dict(row._mapping) if row else None


def list_deployments(engine: Any, project: ProjectContext | str) -> list[dict]:
    slug = project.slug if isinstance(project, ProjectContext) else project
    with engine.db.connect() as conn:
        rows = conn.execute(select(deployments).where(deployments.c.project == slug).order_by(deployments.c.id))
        return [dict(r._mapping) for r in rows]


# -- jobs ----------------------------------------------------------------------------------------


def shown_source(kind: str, source: str) -> str:
    """The source as it may be shown: a URL without its user name and password."""
    if kind not in ("url", "stream"):
        return source
    parts = urlsplit(source)
    if parts.username is None and parts.password is None:
        return source
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def _job_dict(row: Any) -> dict:
    job = dict(row._mapping)
    job["source_shown"] = shown_source(job["source_kind"], job["source"])
    return job


def _parse_start_time(value: Any, tz: str) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        raise ValidationFailed([Problem(("settings", "start_time"), "the video's start time must be ISO 8601 "
                                        "text, e.g. 2026-05-01T06:30:00+02:00", "invalid_start_time")])
    aware = _aware(value, tz)
    assert aware is not None
    if not datetime(1900, 1, 1, tzinfo=timezone.utc) <= aware <= utcnow() + timedelta(days=1):
        raise ValidationFailed([Problem(("settings", "start_time"), "the video's start time is not a plausible "
                                        "time of recording", "invalid_start_time")])
    return aware.isoformat()


def job_settings(engine: Any, project: ProjectContext, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The project's settings with ``given`` over them, checked against the service's schema;
    ``start_time`` (the video's start when its metadata lacks it) is the job's own."""
    given = dict(given or {})
    start_time = given.pop("start_time", None)
    merged = {**project.settings(SERVICE), **{k: v for k, v in given.items() if v is not None}}
    spec = engine.registry.services.get(SERVICE)
    schema = spec.settings if spec is not None else {"type": "object"}
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(merged), key=lambda e: list(e.path))
    if errors:
        raise ValidationFailed([Problem(("settings", *map(str, e.path)), e.message, f"schema_{e.validator}")
                                for e in errors])
    if start_time is not None:
        merged["start_time"] = _parse_start_time(start_time, project.timezone)
    return merged


def _check_source(engine: Any, kind: str, source: str) -> str:
    if kind not in SOURCE_KINDS:
        raise JobRefused(f"source_kind must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}",
                         code="invalid_source_kind")
    if not isinstance(source, str) or not source or "\x00" in source or len(source) > 4000:
        raise JobRefused("the source must be a path or a URL", code="invalid_source")
    if kind in ("url", "stream"):
        parts = urlsplit(source)
        if parts.scheme.lower() not in URL_SCHEMES or not parts.hostname:
            raise JobRefused(f"a {kind} must be an {', '.join(URL_SCHEMES)} URL with a host, not {source!r}",
                             code="invalid_url")
        return source
    if kind == "path":
        from plugins.video_stream.source import VideoError, check_path

        try:
            resolved = check_path(source, list(config_value(engine, "allowed_folders") or []))
        except VideoError as exc:
            raise JobRefused(exc.message, code=exc.code) from None
    else:
        resolved = Path(source)
    if not resolved.is_file():
        raise JobRefused(f"no video file at {source!r}", code="not_found")
    return str(resolved)


def create_job(engine: Any, *, project: ProjectContext | str, deployment: int | str | Mapping[str, Any],
               source_kind: str, source: str, filename: str | None = None,
               settings: Mapping[str, Any] | None = None, principal: Any = None, job_uuid: str | None = None,
               start: bool = True) -> dict:
    """Store a queued job and (``start``) hand it to a worker after the commit.

    ``source`` is a file the workers read (an upload's or a ``path`` inside the operator's
    allowed folders) or a URL (http(s), rtsp). ``settings`` go over the project's (checked
    against the service's schema; ``start_time`` is the video's start when its metadata lacks
    it). Refusals raise (4xx) and store nothing."""
    context = _project(engine, project)
    if not context.enables(SERVICE):
        raise JobRefused(f"project {context.slug!r} does not enable video_stream", code="service_not_enabled")
    found = get_deployment(engine, context, deployment)
    if found is None:
        raise NotFound(f"project {context.slug!r} has no deployment {deployment!r}", code="unknown_deployment")
    source = _check_source(engine, source_kind, source)
    merged = job_settings(engine, context, settings)
    now = utcnow()
    values = {
        "uuid": job_uuid or str(uuid_module.uuid4()), "project": context.slug, "deployment": found["id"],
        "source_kind": source_kind, "source": source, "filename": filename, "settings": merged, "state": "queued",
        "cancel_requested": False, "frames_done": 0, "attempts": 0,
        "lease_until": now + timedelta(seconds=config_value(engine, "resend_after_s")),
        "created_by": getattr(principal, "account_id", None), "created_at": now, "updated_at": now,
    }
    with engine.db.begin() as conn:
        job_id = conn.execute(insert(jobs).values(**values)).inserted_primary_key[0]
    if start:
        from core.tasks import start_task

        start_task(engine, TASK, job_id=job_id)
    job = get_job(engine, job_id)
    assert job is not None
    return job


def get_job(engine: Any, job_id: int | str) -> dict | None:
    """A job by row id, or by uuid (text)."""
    column = jobs.c.uuid if isinstance(job_id, str) and not job_id.isdigit() else jobs.c.id
    key = job_id if column is jobs.c.uuid else int(job_id)
    with engine.db.connect() as conn:
        row = conn.execute(select(jobs).where(column == key)).first()
    return _job_dict(row) if row else None


def list_jobs(engine: Any, project: ProjectContext | str, *, state: str | None = None,
              deployment: int | None = None, before_id: int | None = None, limit: int = 50) -> list[dict]:
    """A project's jobs, newest first; ``before_id`` pages on."""
    slug = project.slug if isinstance(project, ProjectContext) else project
    query = select(jobs).where(jobs.c.project == slug)
    if state is not None:
        if state not in STATES:
            raise JobRefused(f"state must be one of {', '.join(STATES)}", code="invalid_state")
        query = query.where(jobs.c.state == state)
    if deployment is not None:
        query = query.where(jobs.c.deployment == deployment)
    if before_id is not None:
        query = query.where(jobs.c.id < before_id)
    with engine.db.connect() as conn:
        rows = conn.execute(query.order_by(jobs.c.id.desc()).limit(max(1, min(int(limit), 500))))
        return [_job_dict(r) for r in rows]


def request_cancel(engine: Any, job_id: int) -> dict:
    """Cancel a job: a queued one at once; a running one is stopped by its worker within a second
    or two (a live stream is stopped this way, and ends ``done`` with its outputs). Asking again is
    harmless; a job that has ended otherwise is a Conflict (job_ended)."""
    now = utcnow()
    with engine.db.begin() as conn:
        cancelled = conn.execute(
            update(jobs).where(jobs.c.id == job_id, jobs.c.state == "queued")
            .values(state="cancelled", cancel_requested=True, lease_token=None, lease_until=None, finished_at=now,
                    updated_at=now)).rowcount
        if not cancelled:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running")
                         .values(cancel_requested=True, updated_at=now))
    job = get_job(engine, job_id)
    if job is None:
        raise NotFound(f"no video job {job_id}", code="unknown_job")
    if job["state"] in ("done", "failed") and not job["cancel_requested"]:
        raise Conflict(f"job {job_id} has ended ({job['state']}); there is nothing to cancel", code="job_ended")
    return job


def job_progress(job: Mapping[str, Any]) -> dict[str, Any]:
    """{state, frames_done, frames_total, percent, fps, eta_s, error, error_code} of a job row."""
    done, total, fps = job.get("frames_done") or 0, job.get("frames_total"), job.get("fps")
    percent: float | None = None
    if job["state"] == "done":
        percent = 100.0
    elif total:
        percent = round(min(99.9, 100.0 * done / total), 1)
    eta = None
    if job["state"] == "running" and total and fps and fps > 0:
        eta = round(max(0.0, (total - done) / fps), 1)
    return {"state": job["state"], "frames_done": done, "frames_total": total, "percent": percent,
            "fps": round(fps, 2) if fps else None, "eta_s": eta, "error": job.get("error"),
            "error_code": job.get("error_code")}


def jobs_root(engine: Any) -> Path:
    return Path(engine.settings.data_dir) / "video_stream" / "jobs"


def job_folder(engine: Any, job_id: int | str) -> Path:
    """``<data_dir>/video_stream/jobs/<uuid>/``: the job's keyframes and outputs (not made here)."""
    job = get_job(engine, job_id)
    if job is None:
        raise NotFound(f"no video job {job_id}", code="unknown_job")
    return jobs_root(engine) / job["uuid"]


def expected_samples(info_fps: float, frame_count: int | None, sample_fps: float) -> int | None:
    """How many frames sampling at ``sample_fps`` reads of a video of ``frame_count`` frames."""
    if not frame_count or not info_fps or info_fps <= 0:
        return None
    if sample_fps >= info_fps:
        return frame_count
    return max(1, math.ceil(frame_count * sample_fps / info_fps))


# -- the worker's side: lease, heartbeat, checkpoint, finish --------------------------------------


def claim(engine: Any, job_id: int) -> str | None:
    """Take the job for this worker: one conditional UPDATE (queued, or running with its lease
    run out); returns the lease token, or None when another worker has it or it has ended."""
    now = utcnow()
    token = str(uuid_module.uuid4())
    lease = now + timedelta(seconds=config_value(engine, "lease_s"))
    with engine.db.begin() as conn:
        taken = conn.execute(
            update(jobs).where(jobs.c.id == job_id, or_(jobs.c.state == "queued",
                                                        and_(jobs.c.state == "running", jobs.c.lease_until < now)))
            .values(state="running", lease_token=token, lease_until=lease, attempts=jobs.c.attempts + 1,
                    updated_at=now)).rowcount
        if taken:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.started_at.is_(None)).values(started_at=now))
    return token if taken else None


def _held(job_id: int, token: str) -> Any:
    return and_(jobs.c.id == job_id, jobs.c.state == "running", jobs.c.lease_token == token)


def heartbeat(engine: Any, job_id: int, token: str, *, frames_done: int | None = None, fps: float | None = None,
              frames_total: int | None = None, checkpoint: dict | None = None, **more: Any) -> bool:
    """Renew the lease and store progress (and a checkpoint, and any other columns given); returns
    whether a cancel was asked for. Raises LeaseLost when the job is no longer this worker's."""
    now = utcnow()
    values: dict[str, Any] = {"lease_until": now + timedelta(seconds=config_value(engine, "lease_s")),
                              "updated_at": now, **more}
    if frames_done is not None:
        values["frames_done"] = frames_done
    if fps is not None:
        values["fps"] = fps
    if frames_total is not None:
        values["frames_total"] = frames_total
    if checkpoint is not None:
        values["checkpoint"] = checkpoint
    with engine.db.begin() as conn:
        if not conn.execute(update(jobs).where(_held(job_id, token)).values(**values)).rowcount:
            raise LeaseLost(f"job {job_id} is no longer held by this worker")
        return bool(conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar())


def store_events(engine: Any, job_id: int, token: str, rows: Iterable[dict[str, Any]], *, checkpoint: dict,
                 frames_done: int, fps: float | None = None) -> int:
    """Store finished events with the checkpoint that covers them, in one transaction (a resumed
    job starts after them and so never stores them again; an event met twice is kept once, by
    (job, seq)). Returns how many were new. Raises LeaseLost (nothing stored) when the job is no
    longer this worker's."""
    now = utcnow()
    values: dict[str, Any] = {"checkpoint": checkpoint, "frames_done": frames_done, "updated_at": now,
                              "lease_until": now + timedelta(seconds=config_value(engine, "lease_s"))}
    if fps is not None:
        values["fps"] = fps
    added = 0
    with engine.db.begin() as conn:
        if not conn.execute(update(jobs).where(_held(job_id, token)).values(**values)).rowcount:
            raise LeaseLost(f"job {job_id} is no longer held by this worker")
        rows = list(rows)
        if rows:
            seqs = [r["seq"] for r in rows]
            known = set(conn.execute(select(events.c.seq).where(events.c.job == job_id,
                                                                events.c.seq.in_(seqs))).scalars())
            new = [{**r, "job": job_id} for r in rows if r["seq"] not in known]
            if new:
                conn.execute(insert(events), new)
            added = len(new)
    return added


def add_gap(engine: Any, job_id: int, token: str, gap: dict[str, Any]) -> None:
    """Record a live stream's outage on the job."""
    with engine.db.begin() as conn:
        gaps = conn.execute(select(jobs.c.gaps).where(_held(job_id, token))).scalar()
        conn.execute(update(jobs).where(_held(job_id, token)).values(gaps=[*(gaps or []), gap], updated_at=utcnow()))


def finish(engine: Any, job_id: int, token: str, state: str, *, error_code: str | None = None,
           error: str | None = None, **more: Any) -> bool:
    """End the job (done, failed with a code and reason, cancelled) and give up its lease; False
    when it was no longer this worker's (nothing changed)."""
    assert state in ENDED
    now = utcnow()
    with engine.db.begin() as conn:
        return bool(conn.execute(
            update(jobs).where(_held(job_id, token))
            .values(state=state, error_code=error_code, error=error, lease_token=None, lease_until=None,
                    finished_at=now, updated_at=now, **more)).rowcount)


def job_events(engine: Any, job_id: int) -> list[dict]:
    """A job's events in order."""
    with engine.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(events).where(events.c.job == job_id)
                                                      .order_by(events.c.seq))]
