"""Exports prepared in the background: a staff member asks for one in the console, a worker
writes the file under ``<data_dir>/exports`` with the engine's own writers (``core.export`` for
CSV and GeoJSON, ``core.dwca`` for the Darwin Core Archive), the page shows its progress (rows
done of the total) and a download link when it is done.

Who may download: the project's staff, and the person who asked when the export holds public
data only (``scope=public``). A file expires a day after it was asked for; the workers' recovery
loop removes expired files and starts again an export whose worker died (no sign of life for
:data:`STALE`). A staff export (``scope=all``) is audited as the API's are (``core.export.audited``).

This module is one of the engine's own plugins (``register_tasks``, ``recover_work``), so that a
worker runs the export task as it runs a plugin's.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from sqlalchemy import and_, delete, func, or_, select, update

from core.data_use import Purpose, record_selection
from core.db.models import Observation, utcnow
from core.db.models_console import ExportJob
from core.db.session import transaction
from core.dwca import _archive_chunks, check_dataset
from core.engine import Engine
from core.errors import EngineError, Forbidden, NotFound
from core.export import ExportOptions, Plan, RowCount, audited, csv_chunks, geojson_chunks, record_conditions
from core.filters import parse_filters
from core.hookspecs import hookimpl
from core.tasks import start_task
from core.tokens import Principal
from core.types import BackgroundTask, ProjectContext

log = logging.getLogger(__name__)

TASK = "core.export"
FORMATS = ("csv", "geojson", "dwca")
SCOPES = ("public", "all")
KEEP = timedelta(days=1)
"""How long a finished export's file stays."""
STALE = timedelta(minutes=2)
"""An export whose worker gave no sign of life for this long is started again."""
PROGRESS_EVERY_S = 0.5
FOLDER = "exports"
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json", "dwca": "application/zip"}
SUFFIXES = {"csv": "observations.csv", "geojson": "observations.geojson", "dwca": "dwca.zip"}


class InvalidExport(EngineError):
    code = "invalid_export"
    http_status = 422


class ExportExpired(EngineError):
    code = "export_expired"
    http_status = 410


class ExportsUnavailable(EngineError):
    code = "exports_unavailable"
    http_status = 503


class ExportNotReady(EngineError):
    code = "export_not_ready"
    http_status = 409


@dataclass(frozen=True)
class JobView:
    """An export job as its page shows it."""

    id: int
    project: str
    account_id: int | None
    format: str
    scope: str
    filters: dict[str, Any]
    gbif_only: bool
    status: str
    rows_done: int
    rows_total: int
    size: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime

    @property
    def expired(self) -> bool:
        return utcnow() >= self.expires_at

    @property
    def download_name(self) -> str:
        return f"{self.project}-{SUFFIXES[self.format]}"

    def as_json(self) -> dict[str, Any]:
        """What the progress endpoint answers."""
        return {"id": self.id, "status": self.status, "rows_done": self.rows_done, "rows_total": self.rows_total,
                "size": self.size, "error": self.error, "expired": self.expired,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


def _view(job: ExportJob) -> JobView:
    return JobView(job.id, job.project, job.account_id, job.format, job.scope, dict(job.filters or {}),
                   job.gbif_only, job.status, job.rows_done, job.rows_total, job.size, job.error, job.created_at,
                   job.finished_at, job.expires_at)


def folder(engine: Engine) -> Path:
    """Where export files are written."""
    return Path(engine.settings.data_dir) / FOLDER


def _options(engine: Engine, project: ProjectContext, scope: str, filters: Mapping[str, str], gbif_only: bool,
             actor: str) -> ExportOptions:
    return ExportOptions(scope=scope, filters=parse_filters(engine, project, filters), filter_params=dict(filters),
                         gbif_only=gbif_only, actor=actor)


def count_rows(engine: Engine, project: ProjectContext, options: ExportOptions) -> int:
    """How many observations the export holds now."""
    query = select(func.count()).select_from(Observation.__table__).where(
        and_(*record_conditions(engine, project, options)))
    with transaction(engine.readers) as session:
        return int(session.scalar(query) or 0)


def start(engine: Engine, principal: Principal, project: ProjectContext, fmt: str, *, scope: str = "public",
          filters: Mapping[str, str] | None = None, gbif_only: bool = False,
          purpose: Purpose | None = None) -> JobView:
    """Ask for an export of ``project`` in the background; returns the queued job.

    Refused before anything is stored: an unknown format or scope (422), a filter that does not
    parse (``core.filters``, 422), a staff-only scope or contributor filter asked by someone else
    (403), a Darwin Core Archive of a project whose dataset metadata is incomplete (409).
    With ``purpose`` the rows it selects are counted as used (``core.data_use``, channel console)."""
    filters = dict(filters or {})
    if fmt not in FORMATS:
        raise InvalidExport(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}", code="unknown_format")
    if scope not in SCOPES:
        raise InvalidExport(f"unknown export scope {scope!r}; one of {', '.join(SCOPES)}", code="unknown_scope")
    staff = principal.is_staff_of(project.slug)
    if not staff:
        raise Forbidden(f"exports of {project.slug!r} in the console are for its staff", code="forbidden")
    options = _options(engine, project, scope, filters, gbif_only, principal.actor)
    if fmt == "dwca":
        check_dataset(project)
    if TASK not in engine.host.tasks:
        raise ExportsUnavailable("background exports are not installed in this engine (core.export_jobs is not "
                                 "among its plugins); use the API's export instead")
    total = count_rows(engine, project, options)
    with transaction(engine.sessions) as session:
        job = ExportJob(project=project.slug, account_id=principal.account_id, actor=principal.actor, format=fmt,
                        scope=scope, filters=filters, gbif_only=gbif_only, status="queued", attempt=0,
                        rows_total=total, rows_done=0, expires_at=utcnow() + KEEP)
        session.add(job)
        session.flush()
        view = _view(job)
    if purpose is not None:
        record_selection(engine, project.slug, and_(*record_conditions(engine, project, options)), purpose, "console")
    try:
        start_task(engine, TASK, job_id=view.id)
    except Exception as exc:  # noqa: BLE001 (the job is stored: the workers' recovery loop starts it)
        log.warning("export %s is stored but could not be queued (%s: %s); the workers' recovery loop will start it",
                    view.id, type(exc).__name__, exc)
    return view


def may_see(principal: Principal, job: JobView) -> bool:
    """The project's staff see every export of it; the person who asked sees a public one."""
    if principal.is_staff_of(job.project):
        return True
    return (job.scope == "public" and principal.account_id is not None
            and principal.account_id == job.account_id and principal.is_member_of(job.project))


def get(engine: Engine, principal: Principal, project: str, job_id: int) -> JobView:
    """The export ``job_id`` of ``project``; NotFound when there is none or the caller may not see it."""
    with transaction(engine.readers) as session:
        job = session.get(ExportJob, job_id)
        view = _view(job) if job is not None and job.project == project else None
    if view is None or not may_see(principal, view):
        raise NotFound(f"no export {job_id} in project {project!r}", code="export_not_found")
    return view


def recent(engine: Engine, principal: Principal, project: str, limit: int = 20) -> list[JobView]:
    """The project's newest exports the caller may see, newest first (expired ones left out)."""
    query = (select(ExportJob).where(ExportJob.project == project, ExportJob.expires_at > utcnow())
             .order_by(ExportJob.id.desc()).limit(limit))
    with transaction(engine.readers) as session:
        views = [_view(job) for job in session.scalars(query)]
    return [v for v in views if may_see(principal, v)]


def file_of(engine: Engine, principal: Principal, project: str, job_id: int) -> tuple[Path, JobView]:
    """The finished export's file; NotFound, ExportExpired (410) or ExportNotReady (409) otherwise."""
    view = get(engine, principal, project, job_id)
    if view.expired:
        raise ExportExpired(f"export {job_id} expired (files are kept {KEEP.days} day); ask for it again")
    if view.status != "done":
        raise ExportNotReady(f"export {job_id} is {view.status}, not done")
    with transaction(engine.readers) as session:
        name = session.scalar(select(ExportJob.file_name).where(ExportJob.id == job_id))
    path = folder(engine) / str(name)
    if not name or not path.is_file():
        raise ExportExpired(f"export {job_id}'s file is gone; ask for it again")
    return path, view


# -- the work ------------------------------------------------------------------------------------


def _chunks(engine: Engine, project: ProjectContext, job: JobView, options: ExportOptions,
            counter: RowCount) -> Iterator[Any]:
    """The export's bytes or text, counted in ``counter``, audited for a staff scope."""
    if job.format == "dwca":
        check_dataset(project)
        chunks: Iterator[Any] = _archive_chunks(engine, project, options, counter)
    else:
        plan = Plan.of(engine, project, options)
        chunks = csv_chunks(plan, counter=counter) if job.format == "csv" else geojson_chunks(plan, counter=counter)
    return chunks if options.public else audited(engine, project, job.format, options, chunks, counter)


def _claim(engine: Engine, job_id: int) -> int | None:
    """Take the job for this worker (queued, or running without a sign of life); its attempt number."""
    now = utcnow()
    with transaction(engine.sessions) as session:
        claimed = session.execute(
            update(ExportJob).where(ExportJob.id == job_id, ExportJob.expires_at > now, or_(
                ExportJob.status == "queued",
                and_(ExportJob.status == "running", ExportJob.heartbeat_at < now - STALE)))
            .values(status="running", attempt=ExportJob.attempt + 1, heartbeat_at=now, rows_done=0, error=None))
        if claimed.rowcount != 1:
            return None
        return session.scalar(select(ExportJob.attempt).where(ExportJob.id == job_id))


def _report(engine: Engine, job_id: int, attempt: int, **values: Any) -> bool:
    """Write the job's progress or end, if it is still this attempt's; False when another took it."""
    with transaction(engine.sessions) as session:
        changed = session.execute(update(ExportJob).where(ExportJob.id == job_id, ExportJob.attempt == attempt)
                                  .values(heartbeat_at=utcnow(), **values))
        return changed.rowcount == 1


class _TakenOver(Exception):
    pass


def _write(path: Path, chunks: Iterator[Any], tick: Callable[[], None]) -> int:
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            tick()
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def run(engine: Engine, job_id: int) -> str:
    """Write export ``job_id``'s file (the background task): progress as it goes, then done (or
    failed, with the reason). Asked twice, the second run finds the job taken and does nothing."""
    attempt = _claim(engine, job_id)
    if attempt is None:
        return f"export {job_id}: not waiting (done, expired or taken by another worker)"
    with transaction(engine.readers) as session:
        job = _view(session.get(ExportJob, job_id))  # type: ignore[arg-type]
    project = engine.registry.project(job.project)
    folder(engine).mkdir(parents=True, exist_ok=True)
    for left in folder(engine).glob(f"{job_id}-*.part"):  # what an earlier attempt's dead worker left
        left.unlink(missing_ok=True)
    name = f"{job_id}-{secrets.token_hex(8)}-{SUFFIXES[job.format]}"
    partial = folder(engine) / (name + ".part")
    counter = RowCount()
    last = [time.monotonic()]

    def tick() -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            if not _report(engine, job_id, attempt, rows_done=counter.rows):
                raise _TakenOver()

    try:
        options = _options(engine, project, job.scope, job.filters, job.gbif_only, _actor_of(engine, job_id))
        size = _write(partial, _chunks(engine, project, job, options, counter), tick)
        partial.replace(folder(engine) / name)
    except _TakenOver:
        partial.unlink(missing_ok=True)
        return f"export {job_id}: taken over by another worker"
    except Exception as exc:  # noqa: BLE001 (the job says why it failed; the worker goes on)
        partial.unlink(missing_ok=True)
        log.exception("export %s failed", job_id)
        reason = exc.message if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
        _report(engine, job_id, attempt, status="failed", error=reason[:2000], finished_at=utcnow())
        return f"export {job_id}: failed ({reason})"
    if not _report(engine, job_id, attempt, status="done", rows_done=counter.rows, rows_total=counter.rows,
                   file_name=name, size=size, finished_at=utcnow()):
        (folder(engine) / name).unlink(missing_ok=True)
        return f"export {job_id}: taken over by another worker"
    return f"export {job_id}: {counter.rows} rows, {size} bytes"


def _actor_of(engine: Engine, job_id: int) -> str:
    with transaction(engine.readers) as session:
        return str(session.scalar(select(ExportJob.actor).where(ExportJob.id == job_id)))


def remove_expired(engine: Engine) -> int:
    """Delete expired exports and their files; how many."""
    now = utcnow()
    with transaction(engine.sessions) as session:
        gone = list(session.execute(delete(ExportJob).where(ExportJob.expires_at <= now)
                                    .returning(ExportJob.file_name)).scalars())
    for name in gone:
        if name:
            (folder(engine) / name).unlink(missing_ok=True)
    return len(gone)


def stalled(engine: Engine) -> list[int]:
    """Exports waiting or running with no sign of life for :data:`STALE` (their worker died or
    their message was lost)."""
    now = utcnow()
    query = select(ExportJob.id).where(ExportJob.expires_at > now, or_(
        and_(ExportJob.status == "queued", ExportJob.created_at < now - STALE),
        and_(ExportJob.status == "running", ExportJob.heartbeat_at < now - STALE)))
    with transaction(engine.readers) as session:
        return list(session.scalars(query))


# -- the engine's plugin hooks -------------------------------------------------------------------


@hookimpl
def register_tasks(register: Callable[[BackgroundTask], None]) -> None:
    register(BackgroundTask(TASK, run=run, description="write an export asked for in the console"))


@hookimpl
def recover_work(engine: Engine) -> int:
    remove_expired(engine)
    again = stalled(engine)
    for job_id in again:
        start_task(engine, TASK, job_id=job_id)
    return len(again)
