"""The file and table side of tus uploads: one row per upload (``mobile_uploads``) and one file
being written under ``<data_dir>/mobile_uploads/``; a finished file is moved into the engine's
media store under its sha256. The HTTP side is ``tus``.

The stored offset is what a client resumes from. Bytes on disk past it (written after the last
time the offset was saved, by a process that died) are cut off when the next request takes the
upload's lock, so the file and the offset never disagree for a client.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Column, Integer, String, Table, Text, delete, insert, select, update

from core.db.models import UTCDateTime
from plugins.mobile_bridge.db import metadata

if TYPE_CHECKING:
    from core.engine import Engine

SERVICE = "mobile_bridge"
DEFAULT_EXPIRY_H = 24.0
DEFAULT_MAX_BYTES = 2 * 1024 ** 3
HASH_BLOCK = 1024 * 1024

UPLOADING, COMPLETE, FAILED = "uploading", "complete", "failed"

uploads = Table(
    "mobile_uploads", metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("length", BigInteger, nullable=False),
    Column("upload_offset", BigInteger, nullable=False),
    Column("upload_metadata", JSON, nullable=False),
    Column("expected_sha256", String(64)),
    Column("sha256", String(64), index=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)


@dataclass(frozen=True)
class Upload:
    id: str
    account_id: int
    length: int
    offset: int
    metadata: dict[str, str]
    expected_sha256: str | None
    sha256: str | None
    state: str
    reason: str | None
    created_at: datetime
    expires_at: datetime


def _upload(row: Any) -> Upload:
    return Upload(row.id, row.account_id, row.length, row.upload_offset, dict(row.upload_metadata),
                  row.expected_sha256, row.sha256, row.state, row.reason, row.created_at, row.expires_at)


def now() -> datetime:
    return datetime.now(timezone.utc)


def service_config(engine: Engine) -> dict[str, Any]:
    spec = engine.registry.services.get(SERVICE)
    return dict(spec.config) if spec is not None else {}


def expiry(engine: Engine) -> timedelta:
    """How long an unfinished upload is kept after its last write (``upload_expiry_h``)."""
    return timedelta(hours=float(service_config(engine).get("upload_expiry_h", DEFAULT_EXPIRY_H)))


def max_bytes(engine: Engine) -> int:
    """The largest upload one resource may announce (``max_upload_bytes``, ``Tus-Max-Size``)."""
    return int(service_config(engine).get("max_upload_bytes", DEFAULT_MAX_BYTES))


def upload_dir(engine: Engine) -> Path:
    return Path(engine.settings.data_dir) / "mobile_uploads"


def part_path(engine: Engine, upload_id: str) -> Path:
    """Where the bytes of an unfinished upload are written."""
    return upload_dir(engine) / f"{upload_id}.part"


# -- rows ---------------------------------------------------------------------------------------


def create(engine: Engine, account_id: int, length: int, meta: dict[str, str], expected_sha256: str | None) -> Upload:
    """A new, empty upload of ``length`` bytes, and its (empty) file."""
    created = now()
    upload = Upload(secrets.token_urlsafe(16), account_id, length, 0, meta, expected_sha256, None, UPLOADING, None,
                    created, created + expiry(engine))
    upload_dir(engine).mkdir(parents=True, exist_ok=True)
    with engine.db.begin() as conn:
        conn.execute(insert(uploads).values(
            id=upload.id, account_id=account_id, length=length, upload_offset=0, upload_metadata=meta,
            expected_sha256=expected_sha256, state=UPLOADING, created_at=created, expires_at=upload.expires_at))
    part_path(engine, upload.id).touch()
    return upload


def get(engine: Engine, upload_id: str, account_id: int) -> Upload | None:
    """The upload, if it exists and belongs to ``account_id`` (another account's is None, as a missing one)."""
    with engine.db.connect() as conn:
        row = conn.execute(select(uploads).where(uploads.c.id == upload_id, uploads.c.account_id == account_id)).first()
    return _upload(row) if row is not None else None


def save_offset(engine: Engine, upload_id: str, offset: int) -> datetime:
    """Record the bytes received so far; the upload's expiry starts again. Returns the new expiry."""
    expires = now() + expiry(engine)
    with engine.db.begin() as conn:
        conn.execute(update(uploads).where(uploads.c.id == upload_id).values(upload_offset=offset, expires_at=expires))
    return expires


def mark(engine: Engine, upload_id: str, state: str, *, sha256: str | None = None, reason: str | None = None) -> None:
    with engine.db.begin() as conn:
        conn.execute(update(uploads).where(uploads.c.id == upload_id).values(state=state, sha256=sha256, reason=reason))


def remove(engine: Engine, upload_id: str) -> None:
    """Forget an upload and delete its unfinished bytes (a finished file stays in the media store)."""
    with engine.db.begin() as conn:
        conn.execute(delete(uploads).where(uploads.c.id == upload_id))
    part_path(engine, upload_id).unlink(missing_ok=True)


def uploaded_media(engine: Engine, account_id: int, sha256: str) -> Path | None:
    """The finished file of ``account_id``'s upload whose content has this sha256, or None."""
    with engine.db.connect() as conn:
        found = conn.execute(select(uploads.c.id).where(
            uploads.c.account_id == account_id, uploads.c.sha256 == sha256, uploads.c.state == COMPLETE)).first()
    if found is None:
        return None
    path = engine.media.path_for(sha256)
    return path if path.is_file() else None


def sweep(engine: Engine, at: datetime | None = None) -> int:
    """Remove unfinished and failed uploads past their expiry, and files no upload owns that are
    as old; return how many uploads were removed."""
    moment = at or now()
    with engine.db.begin() as conn:
        expired = list(conn.execute(select(uploads.c.id).where(
            uploads.c.state != COMPLETE, uploads.c.expires_at < moment)).scalars())
        if expired:
            conn.execute(delete(uploads).where(uploads.c.id.in_(expired)))
        live = set(conn.execute(select(uploads.c.id).where(uploads.c.state == UPLOADING)).scalars())
    for upload_id in expired:
        part_path(engine, upload_id).unlink(missing_ok=True)
    folder = upload_dir(engine)
    oldest = (moment - expiry(engine)).timestamp()
    for path in folder.glob("*.part") if folder.is_dir() else ():
        if path.stem not in live and _mtime(path) < oldest:
            path.unlink(missing_ok=True)
    return len(expired)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


# -- files --------------------------------------------------------------------------------------


def try_lock(fd: int) -> bool:
    """Take the upload's exclusive lock (across processes) without waiting; False if held."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def move_into_store(engine: Engine, path: Path, sha256: str) -> Path:
    """Put the file at ``path`` into the media store as ``sha256`` without reading it into memory:
    a hard link (a copy across file systems) under a temporary name, then an atomic rename; the
    file at ``path`` is removed. A file already stored under that hash is kept as it is."""
    target = engine.media.path_for(sha256)
    if target.is_file():
        path.unlink(missing_ok=True)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{secrets.token_hex(8)}"
    try:
        try:
            os.link(path, tmp)
        except OSError:  # another file system, or links not allowed: copy in blocks
            with path.open("rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, HASH_BLOCK)
                dst.flush()
                os.fsync(dst.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return target
