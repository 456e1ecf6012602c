"""What a job is asked to do, checked before anything is stored: the project (it enables the
service) and the caller (its staff), the deployment, the settings (the registry's schema, the
project's settings filled in), and the source: a path inside the allowed folders, an http(s) or
rtsp URL, a file received by the API or the CLI, or a finished tus upload of the mobile bridge.
A file is probed (opened, its first frame read) so that not-a-video, a truncated header, an
unreadable codec or a huge resolution is refused at once with the reason's code (422).

Shared by the API (``routes``) and the CLI (``commands``); the job store is ``jobs``.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select

from core.errors import EngineError, Forbidden, NotFound, ValidationFailed
from core.lifecycle import get_project
from core.tokens import Principal
from core.types import Problem, ProjectContext
from plugins.video_stream.db import deployments

if TYPE_CHECKING:
    from core.engine import Engine

SERVICE = "video_stream"
URL_SCHEMES = ("http", "https", "rtsp", "rtsps")
STREAM_SCHEMES = ("rtsp", "rtsps")
MAX_URL = 2000
CLI_PRINCIPAL = Principal(operator=True)
"""Who the command line acts as: an operator with no account (jobs it makes have no creator)."""


class Refused(EngineError):
    """The request names something impossible or unreadable; nothing was stored."""

    http_status = 422


def video_project(engine: Engine, slug: str) -> ProjectContext:
    """The project, if it exists and enables video_stream (404 ``unknown_project`` / ``video_off``)."""
    project = get_project(engine, slug)
    if not project.enables(SERVICE):
        raise NotFound(f"project {slug!r} does not use video_stream (enable it in registry.yaml: "
                       f"services: {{{SERVICE}: {{}}}})", code="video_off")
    return project


def require_staff(principal: Principal, project: str, what: str) -> None:
    """Video is the project staff's (admin, moderator) and the operators'."""
    if not principal.is_staff_of(project):
        raise Forbidden(f"{what}: project {project!r}'s staff only (this token's role: {principal.role})")


def config(engine: Engine) -> dict[str, Any]:
    """The operator's configuration (``services.video_stream.config``)."""
    spec = engine.registry.services.get(SERVICE)
    return dict(spec.config or {}) if spec is not None else {}


def max_upload_bytes(engine: Engine) -> int:
    """The largest video the API takes in one multipart request (``max_upload_bytes``, at most the
    engine's request limit); larger ones come as a tus upload, a path or a URL."""
    limit = engine.settings.max_request_bytes
    return min(int(config(engine).get("max_upload_bytes", limit)), limit)


# -- deployments ------------------------------------------------------------------------------


def deployment_dict(row: Any) -> dict[str, Any]:
    """A deployment (a row, or the store's dict) as the API and the CLI show it: Camtrap DP's
    names, never who made it."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return {"deployment_id": m["deployment_id"], "location_name": m["location_name"], "lat": m["lat"],
            "lon": m["lon"], "start": m["start"], "end": m["end"], "camera_model": m["camera_model"],
            "camera_height_m": m["camera_height_m"], "bait": m["bait"], "habitat": m["habitat"],
            "created_at": m["created_at"]}


def find_deployment(engine: Engine, project: str, deployment_id: str) -> dict[str, Any]:
    """The deployment of ``project`` named ``deployment_id``; 404 ``unknown_deployment``."""
    from plugins.video_stream.jobs import get_deployment

    found = get_deployment(engine, project, deployment_id)
    if found is None:
        raise NotFound(f"project {project!r} has no deployment {deployment_id!r} "
                       "(add it first: POST .../video/deployments, or observatory video deployments add)",
                       code="unknown_deployment")
    return found


def deployment_ids(engine: Engine, ids: set[int]) -> dict[int, str]:
    """Row id -> deploymentID."""
    if not ids:
        return {}
    with engine.db.connect() as conn:
        rows = conn.execute(select(deployments.c.id, deployments.c.deployment_id)
                            .where(deployments.c.id.in_(sorted(ids))))
        return {r.id: r.deployment_id for r in rows}


def list_deployments(engine: Engine, project: str, *, after: str | None = None, limit: int = 100) -> list[Any]:
    """The project's deployments by deploymentID, from after ``after``."""
    query = select(deployments).where(deployments.c.project == project)
    if after is not None:
        query = query.where(deployments.c.deployment_id > after)
    with engine.db.connect() as conn:
        return list(conn.execute(query.order_by(deployments.c.deployment_id).limit(limit)))


# -- settings ---------------------------------------------------------------------------------


def refused_as(exc: ValidationFailed, what: str) -> ValidationFailed:
    """The engine's refusal, worded for ``what`` was refused (it speaks of an observation)."""
    exc.message = exc.message.replace("the observation was refused", f"the {what} was refused", 1)
    exc.args = (exc.message,)
    return exc


def job_settings(engine: Engine, project: ProjectContext, given: dict[str, Any] | None,
                 start_time: datetime | None = None) -> dict[str, Any]:
    """The job's settings as the job store makes them (the project's, ``given`` over them, checked
    against the registry's schema: 422 with each problem), the region of interest inside the frame,
    and ``start_time`` (the video's start when its metadata lacks it; without a zone: the
    project's local time)."""
    from plugins.video_stream import jobs

    if given is not None and not isinstance(given, dict):
        raise ValidationFailed([Problem(("settings",), "settings must be a JSON object", "invalid_settings")])
    given = dict(given or {})
    if start_time is not None:
        given["start_time"] = start_time.isoformat()
    try:
        merged = jobs.job_settings(engine, project, given)
    except ValidationFailed as exc:
        raise refused_as(exc, "video job") from None
    roi = merged.get("roi")
    if roi is not None:
        x, y, w, h = roi
        if w <= 0 or h <= 0 or x + w > 1 + 1e-9 or y + h > 1 + 1e-9:
            raise ValidationFailed([Problem(("settings", "roi"), "[x, y, width, height] must lie inside the frame "
                                            f"(0-1) and have a width and a height; got {roi}", "roi_outside_frame")])
    return merged


# -- sources ----------------------------------------------------------------------------------


def url_kind(url: str, stream: bool | None = None) -> str:
    """``url`` (a file to download and read) or ``stream`` (live: processed in windows until
    stopped): rtsp is always a stream; http(s) is a file unless ``stream`` says it is live.
    A URL that is not http(s) or rtsp with a host is refused (``invalid_url``)."""
    if not url or len(url) > MAX_URL or re.search(r"[\x00-\x20\x7f]", url):
        raise Refused(f"the URL must be at most {MAX_URL} characters, without spaces or control characters",
                      code="invalid_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        raise Refused(f"the URL is malformed: {exc}", code="invalid_url") from None
    if parts.scheme.lower() not in URL_SCHEMES or not parts.hostname:
        raise Refused("the URL must be http(s) or rtsp with a host", code="invalid_url")
    if parts.scheme.lower() in STREAM_SCHEMES:
        return "stream"
    return "stream" if stream else "url"


def _video_error(exc: Exception) -> Refused:
    code = getattr(exc, "code", None) or "unreadable"
    message = getattr(exc, "message", None) or str(exc)
    return Refused(message, code=code)


def probe(engine: Engine, path: Path) -> dict[str, Any]:
    """Open the video and read what it says about itself; a bad one is refused with its code
    (``not_a_video``, ``truncated``, ``no_frames``, ``unreadable_codec``, ``too_large``...)."""
    from plugins.video_stream.source import VideoError, open_video

    max_pixels = int(config(engine).get("max_pixels", 3840 * 2160))
    try:
        with open_video(path, max_pixels=max_pixels) as source:
            info = source.info
    except VideoError as exc:
        raise _video_error(exc) from None
    return {"fps": info.fps, "width": info.width, "height": info.height, "frame_count": info.frame_count,
            "duration_s": info.duration_s,
            "start_time": info.start_time.isoformat() if info.start_time is not None else None}


def checked_path(engine: Engine, path: str) -> Path:
    """A path the server may read: inside ``allowed_folders`` once resolved (``path_not_allowed``),
    a file (``not_found``), and a video (``probe``)."""
    from plugins.video_stream.source import VideoError, check_path

    if not path or len(path) > 4096 or "\x00" in path:
        raise Refused("the path must be 1 to 4096 characters, without NUL", code="path_not_allowed")
    try:
        resolved = check_path(path, list(config(engine).get("allowed_folders") or []))
    except VideoError as exc:
        raise _video_error(exc) from None
    if not resolved.is_file():
        raise Refused(f"no file at {path!r}", code="not_found")
    probe(engine, resolved)
    return resolved


def tus_upload_path(engine: Engine, project: ProjectContext, principal: Principal, upload_id: str) -> tuple[Path, str | None]:
    """The file of a finished mobile bridge (tus) upload of the caller's own account, and its name."""
    if not project.enables("mobile_bridge") or "mobile_bridge" not in engine.host.info:
        raise Refused(f"project {project.slug!r} does not use the mobile bridge: send the video as a multipart "
                      "upload, a path or a URL", code="tus_off")
    from plugins.mobile_bridge import tus_store

    if principal.account_id is None or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", upload_id):
        raise NotFound(f"no upload {upload_id}", code="upload_not_found")
    upload = tus_store.get(engine, upload_id, principal.account_id)
    if upload is None:
        raise NotFound(f"no upload {upload_id} of this account", code="upload_not_found")
    if upload.state != tus_store.COMPLETE or upload.sha256 is None:
        raise Refused(f"upload {upload_id} is not finished ({upload.state}: {upload.offset} of {upload.length} "
                      "bytes); finish it first", code="upload_unfinished")
    path = engine.media.path_for(upload.sha256)
    if not path.is_file():
        raise NotFound(f"upload {upload_id}'s file is gone", code="upload_not_found")
    probe(engine, path)
    return path, upload.metadata.get("filename")


def uploads_dir(engine: Engine) -> Path:
    """Where videos sent to the API or copied by the CLI are kept for their jobs."""
    return Path(engine.settings.data_dir) / SERVICE / "uploads"


def new_upload_path(engine: Engine, filename: str | None) -> Path:
    """A new, unique file for a received video, keeping a tidy form of its name (and extension)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename or "video").name).strip("._") or "video"
    folder = uploads_dir(engine)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{secrets.token_hex(8)}-{base[-100:]}"


# -- the job ----------------------------------------------------------------------------------


def submit(engine: Engine, project: ProjectContext, principal: Principal, *, deployment: str, source_kind: str,
           source: str, filename: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    """Store the job (queued) and start its work; ``source`` was checked already."""
    from plugins.video_stream import jobs

    row = find_deployment(engine, project.slug, deployment)
    try:
        return jobs.create_job(engine, project=project, deployment=row["id"], source_kind=source_kind, source=source,
                               filename=filename, settings=settings, principal=principal)
    except ValidationFailed as exc:
        raise refused_as(exc, "video job") from None


def job_of(engine: Engine, principal: Principal, job_id: int) -> dict[str, Any]:
    """The job, if the caller is staff of its project; otherwise the 404 of a missing one."""
    from plugins.video_stream import jobs

    job = jobs.get_job(engine, job_id)
    if job is None or not principal.is_staff_of(job["project"]):
        raise NotFound(f"no video job {job_id}", code="unknown_job")
    return job


def now() -> datetime:
    return datetime.now(timezone.utc)
