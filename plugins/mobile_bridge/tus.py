"""Resumable media uploads as tus 1.0.0 (https://tus.io/protocols/resumable-upload), so that
existing tus clients (tus-js-client, TUSKit, tus-android-client, tuspy) work unchanged.

Core protocol and the extensions creation, creation-with-upload, checksum (sha1, sha256),
termination and expiration, under ``/api/v1/mobile/uploads`` with a token. An upload belongs
to the account of the token that created it. Bytes are appended to a file as they arrive, in
bounded memory; a request cut off keeps what it delivered (but a chunk sent with
``Upload-Checksum`` is kept whole or not at all). A finished upload is hashed, checked against
the ``sha256`` its metadata announced, moved into the media store and handed to ``sync``.
The file and table side is ``tus_store``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import re
import threading
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import click
from fastapi import APIRouter, Path as PathParam, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from pydantic import BaseModel, ConfigDict

from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import EngineDep, PrincipalDep
from core.api.errors import ApiError
from core.api.schemas import ErrorOut
from core.tokens import Principal
from plugins.mobile_bridge import tus_store
from plugins.mobile_bridge.tus_store import COMPLETE, FAILED, UPLOADING, Upload

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)

router = APIRouter()

BASE = "/api/v1/mobile/uploads"
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,checksum,termination,expiration"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
OFFSET_TYPE = "application/offset+octet-stream"
SAVE_EVERY = 8 * 1024 * 1024  # bytes between two saves of the offset while a body streams in
LOCK_WAIT_S = 10.0
SWEEP_EVERY_S = 60.0
MAX_METADATA = 4096
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_B64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_PAIR = rf"[\x21-\x2b\x2d-\x7e]+(?: {_B64})?"
METADATA_PATTERN = rf"^{_PAIR}(?:, ?{_PAIR})*$"
_METADATA = re.compile(METADATA_PATTERN)

UploadId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="an upload's id (from Location)")]


# -- errors and headers -------------------------------------------------------------------------


def _error(status: int, code: str, message: str, **headers: str) -> ApiError:
    return ApiError(status, code, message, {"Tus-Resumable": TUS_VERSION, **headers})


def _expires(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _offset_headers(upload: Upload, offset: int) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(offset), "Cache-Control": "no-store"}
    if upload.state == UPLOADING and offset < upload.length:
        headers["Upload-Expires"] = _expires(upload.expires_at)
    return headers


def _account(principal: Principal) -> int:
    if principal.account_id is None:
        raise _error(401, "unauthorized", "uploads need a token", **{"WWW-Authenticate": "Bearer"})
    return principal.account_id


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") is None:
        raise _error(400, "tus_resumable_missing", f"the Tus-Resumable header is missing (send {TUS_VERSION})",
                     **{"Tus-Version": TUS_VERSION})
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise _error(412, "tus_version_unsupported",
                     f"Tus-Resumable must be {TUS_VERSION} (got {request.headers.get('tus-resumable')!r})",
                     **{"Tus-Version": TUS_VERSION})


def _number(request: Request, name: str) -> int:
    value = request.headers.get(name)
    if value is None or not _DIGITS.match(value):
        raise _error(400, f"invalid_{name.lower().replace('-', '_')}",
                     f"{name} must be a whole number of bytes (got {value!r})")
    return int(value)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _has_body(request: Request) -> bool:
    declared = _declared_length(request)
    return bool(declared) or (declared is None and "chunked" in request.headers.get("transfer-encoding", ""))


def _check_content_type(request: Request) -> None:
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given != OFFSET_TYPE:
        raise _error(415, "unsupported_media_type", f"Content-Type must be {OFFSET_TYPE} (got {given or 'none'!r})")


def parse_checksum(value: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>`` -> (algorithm, digest); 400 when malformed."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise _error(400, "checksum_algorithm_unsupported",
                     f"Upload-Checksum: algorithm {algorithm!r} is not supported (use {', '.join(CHECKSUMS)})")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise _error(400, "invalid_checksum", f"Upload-Checksum: the {algorithm} digest must be base64 of "
                     f"{CHECKSUMS[algorithm]().digest_size} bytes")
    return algorithm, digest


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64,key2 base64`` -> {key: text}; 400 when malformed. A value
    that is not UTF-8 is kept with replacement characters; a repeated key keeps its last value."""
    if not value:
        return {}
    if len(value) > MAX_METADATA or not _METADATA.match(value):
        raise _error(400, "invalid_metadata", "Upload-Metadata must be comma-separated 'key base64-value' pairs "
                     f"(keys of printable ASCII without space or comma), at most {MAX_METADATA} characters")
    out: dict[str, str] = {}
    for pair in value.split(","):
        key, _, encoded = pair.strip().partition(" ")
        out[key] = base64.b64decode(encoded).decode("utf-8", errors="replace")
    return out


def expected_sha256(meta: dict[str, str]) -> str | None:
    """The sha256 the app expects (metadata ``sha256``, hexadecimal); 400 when malformed."""
    value = meta.get("sha256")
    if value is None:
        return None
    if not _SHA256.match(value.lower()):
        raise _error(400, "invalid_metadata", "Upload-Metadata: sha256 must be 64 hexadecimal characters")
    return value.lower()


# -- hashes kept between requests ---------------------------------------------------------------


class RunningHashes:
    """The sha256 of each upload's bytes so far, kept between its requests in this process, so a
    finished upload need not be read again (a request served elsewhere: it is, at the end)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._hashes: dict[str, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    def take(self, upload_id: str, offset: int) -> Any:
        """The hash of the first ``offset`` bytes, or None when this process has not seen them all."""
        with self._lock:
            kept = self._hashes.pop(upload_id, None)
        if offset == 0:
            return hashlib.sha256()
        return kept[1] if kept is not None and kept[0] == offset else None

    def put(self, upload_id: str, offset: int, digest: Any) -> None:
        if digest is None:
            return
        with self._lock:
            if len(self._hashes) >= self.size:
                self._hashes.pop(next(iter(self._hashes)))
            self._hashes[upload_id] = (offset, digest)


def _hashes(engine: Engine) -> RunningHashes:
    return engine.state("mobile_bridge.tus_hashes", RunningHashes)


# -- appending bytes ----------------------------------------------------------------------------


class Appended:
    """What a request appended: the offset after it, and whether it finished the upload."""

    def __init__(self, upload: Upload, offset: int):
        self.upload, self.offset = upload, offset


def _open_part(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def _lock(fd: int, upload_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + LOCK_WAIT_S
    while not tus_store.try_lock(fd):
        if asyncio.get_running_loop().time() > deadline:
            raise _error(423, "upload_locked", f"upload {upload_id} is being written by another request; "
                         "ask for its offset (HEAD) and try again")
        await asyncio.sleep(0.05)


def _write_all(fd: int, data: bytes, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written


async def _save(engine: Engine, upload_id: str, offset: int) -> None:
    with anyio.CancelScope(shield=True):  # a cut request must still record what it delivered
        await run_in_threadpool(tus_store.save_offset, engine, upload_id, offset)


async def append(request: Request, engine: Engine, upload_id: str, account_id: int, offset: int,
                 checksum: tuple[str, bytes] | None) -> Appended:
    """Append the request's body to the upload at ``offset`` (its current offset, else 409)."""
    path = tus_store.part_path(engine, upload_id)
    try:
        fd = os.open(path, os.O_RDWR)  # only an unfinished upload has a file
    except FileNotFoundError:
        upload = _appendable(await run_in_threadpool(tus_store.get, engine, upload_id, account_id), upload_id,
                             request, offset)
        if upload.state == COMPLETE:
            return Appended(upload, upload.offset)
        fd = _open_part(path)  # its file is gone (a disk cleaned by hand): it starts again, empty
    try:
        await _lock(fd, upload_id)
        upload = await run_in_threadpool(tus_store.get, engine, upload_id, account_id)
        if upload is not None and upload.state == UPLOADING and os.fstat(fd).st_size < upload.offset:
            # bytes the offset counted never reached the disk (a crash): resume from what did
            size = os.fstat(fd).st_size
            await run_in_threadpool(tus_store.save_offset, engine, upload_id, size)
            upload = Upload(**{**upload.__dict__, "offset": size})
        upload = _appendable(upload, upload_id, request, offset)
        if upload.state == COMPLETE:  # finished by the request that held the lock: its file was moved
            path.unlink(missing_ok=True)
            return Appended(upload, upload.offset)
        os.ftruncate(fd, offset)  # bytes past the saved offset were never confirmed
        try:
            position = await _receive(request, engine, upload, fd, checksum)
        except ClientDisconnect:  # what arrived is kept; nobody is left to read an answer
            raise _error(400, "client_disconnected", "the request ended before its body did") from None
        if position == upload.length:
            upload = await run_in_threadpool(_finish, engine, upload, fd)
        return Appended(upload, position)
    finally:
        os.close(fd)  # releases the lock


def _appendable(upload: Upload | None, upload_id: str, request: Request, offset: int) -> Upload:
    """The upload, if a body may be appended to it at ``offset``; else the error to answer."""
    if upload is None:
        raise _error(404, "upload_not_found", f"no upload {upload_id}")
    if upload.state == FAILED:
        raise _error(410, "upload_failed", f"upload {upload_id} failed: {upload.reason}")
    if offset != upload.offset:
        raise _error(409, "offset_mismatch", f"Upload-Offset is {offset} but the upload has {upload.offset} "
                     "bytes; resume from there (HEAD gives it)", **_offset_headers(upload, upload.offset))
    declared = _declared_length(request)
    if declared is not None and offset + declared > upload.length:
        raise _error(413, "upload_too_large", f"{declared} more bytes at offset {offset} is past the "
                     f"upload's length of {upload.length} bytes")
    return upload


async def _receive(request: Request, engine: Engine, upload: Upload, fd: int,
                   checksum: tuple[str, bytes] | None) -> int:
    start = position = saved = upload.offset
    hashes = _hashes(engine)
    running = hashes.take(upload.id, start)
    before = running.copy() if running is not None and checksum else None
    chunk_hash = CHECKSUMS[checksum[0]]() if checksum else None
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            if position + len(chunk) > upload.length:
                raise _error(413, "upload_too_large", f"the body runs past the upload's length of {upload.length} bytes")
            _write_all(fd, chunk, position)  # page-cache writes: short enough for the event loop
            position += len(chunk)
            if running is not None:
                running.update(chunk)
            if chunk_hash is not None:
                chunk_hash.update(chunk)
            elif position - saved >= SAVE_EVERY:
                await _save(engine, upload.id, position)
                saved = position
    except BaseException:  # cut off, over the length, or over the server's request limit
        if checksum is not None:  # a chunk that cannot be verified is not kept
            os.ftruncate(fd, start)
            hashes.put(upload.id, start, before)
        else:
            hashes.put(upload.id, position, running)
            if position != saved:
                await _save(engine, upload.id, position)
        raise
    if checksum is not None and chunk_hash is not None and chunk_hash.digest() != checksum[1]:
        os.ftruncate(fd, start)
        hashes.put(upload.id, start, before)
        raise _error(460, "checksum_mismatch", f"the chunk's {checksum[0]} is not the Upload-Checksum sent; "
                     f"it was discarded, send it again from offset {start}")
    if position != saved:
        await _save(engine, upload.id, position)
    hashes.put(upload.id, position, running)
    return position


def _finish(engine: Engine, upload: Upload, fd: int) -> Upload:
    """The last byte is in: hash, check against the expected sha256, store, tell sync."""
    os.fsync(fd)
    path = tus_store.part_path(engine, upload.id)
    running = _hashes(engine).take(upload.id, upload.length)
    sha256 = running.hexdigest() if running is not None else tus_store.file_sha256(path)
    if upload.expected_sha256 and sha256 != upload.expected_sha256:
        reason = (f"the file's sha256 is {sha256}, not the {upload.expected_sha256} its metadata announced; "
                  "the bytes were discarded, upload the file again")
        tus_store.mark(engine, upload.id, FAILED, sha256=sha256, reason=reason)
        path.unlink(missing_ok=True)
        raise _error(422, "sha256_mismatch", f"upload {upload.id}: {reason}")
    tus_store.move_into_store(engine, path, sha256)
    tus_store.mark(engine, upload.id, COMPLETE, sha256=sha256)
    _tell_sync(engine, sha256, upload.account_id)
    return Upload(**{**upload.__dict__, "offset": upload.length, "state": COMPLETE, "sha256": sha256})


def _tell_sync(engine: Engine, sha256: str, account_id: int) -> None:
    from plugins.mobile_bridge import sync

    try:
        sync.media_arrived(engine, sha256, account_id)
    except Exception:  # the bytes are stored either way; sync finds them again with uploaded_media
        log.exception("mobile_bridge: sync.media_arrived failed for %s (account %s)", sha256, account_id)


def uploaded_media(engine: Engine, account_id: int, sha256: str) -> Path | None:
    """The finished file of ``account_id``'s upload with this sha256 (in the media store), or None."""
    return tus_store.uploaded_media(engine, account_id, sha256)


def sweep_uploads(engine: Engine) -> int:
    """Remove abandoned uploads (past ``Upload-Expires``); return how many."""
    return tus_store.sweep(engine)


async def _sweep_now_and_then(engine: Engine) -> None:
    clock = engine.state("mobile_bridge.tus_last_sweep", lambda: {"at": float("-inf")})
    moment = asyncio.get_running_loop().time()
    if moment - clock["at"] < SWEEP_EVERY_S:
        return
    clock["at"] = moment
    await run_in_threadpool(tus_store.sweep, engine)


# -- routes -------------------------------------------------------------------------------------


def _header(name: str, description: str, pattern: str | None = None, required: bool = True,
            max_length: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    if max_length:
        schema["maxLength"] = max_length
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


TUS_RESUMABLE = _header("Tus-Resumable", "the tus version: 1.0.0", "^1\\.0\\.0$")
UPLOAD_OFFSET = _header("Upload-Offset", "where this chunk starts (the upload's current offset)", "^[0-9]{1,19}$")
UPLOAD_CHECKSUM = _header("Upload-Checksum", "'sha1 <base64>' or 'sha256 <base64>' of this request's body",
                          "^(sha1 [A-Za-z0-9+/]{27}=|sha256 [A-Za-z0-9+/]{43}=)$", required=False)
BINARY_BODY = {"content": {OFFSET_TYPE: {"schema": {"type": "string", "format": "binary"}}}}


def _headers_doc(*names: str) -> dict[str, Any]:
    docs = {"Tus-Resumable": "1.0.0", "Upload-Offset": "bytes received so far", "Upload-Length": "the upload's size",
            "Upload-Expires": "when an unfinished upload is removed (RFC 7231 date)",
            "Location": "the new upload's URL", "Cache-Control": "no-store", "Tus-Version": "1.0.0",
            "Tus-Extension": EXTENSIONS, "Tus-Checksum-Algorithm": "sha1,sha256",
            "Tus-Max-Size": "the largest upload accepted, in bytes", "Upload-Metadata": "as given at creation"}
    return {name: {"description": docs[name], "schema": {"type": "string"}} for name in names}


_ERROR_TEXT = {400: "a tus header is missing or malformed", 401: "no token, or a wrong or revoked one",
               404: "no such upload of this account", 409: "Upload-Offset is not the upload's offset",
               410: "the upload failed (its sha256 did not match)", 412: "Tus-Resumable is not 1.0.0 (Tus-Version says which is)",
               413: "past the upload's length or Tus-Max-Size", 415: f"Content-Type is not {OFFSET_TYPE}",
               422: "the finished file's sha256 is not the one announced", 423: "another request is writing the upload",
               429: "rate limited", 460: "the chunk's checksum does not match Upload-Checksum"}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut, "description": _ERROR_TEXT[code]} for code in codes}


def _options_headers(engine: Engine) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS), "Tus-Max-Size": str(tus_store.max_bytes(engine))}


OPTIONS_DOC: dict[str, Any] = {
    "summary": "What this tus server supports (no token needed)",
    "status_code": 204,
    "response_class": Response,
    "responses": {204: {"description": "the tus version, extensions, checksum algorithms and largest size",
                        "headers": _headers_doc("Tus-Resumable", "Tus-Version", "Tus-Extension",
                                                "Tus-Checksum-Algorithm", "Tus-Max-Size")}},
}


@router.options(BASE, **OPTIONS_DOC)
async def tus_options(engine: EngineDep) -> Response:
    return Response(status_code=204, headers=_options_headers(engine))


@router.options(BASE + "/{upload_id}", **OPTIONS_DOC)
async def tus_options_upload(upload_id: UploadId, engine: EngineDep) -> Response:
    return Response(status_code=204, headers=_options_headers(engine))


@router.post(
    BASE, status_code=201, response_class=Response, summary="Create an upload (tus creation, creation-with-upload)",
    responses={201: {"description": "created; Location is its URL", "headers": _headers_doc(
        "Tus-Resumable", "Location", "Upload-Offset", "Upload-Expires")},
        **_errors(400, 401, 412, 413, 415, 422, 429, 460)},
    openapi_extra={**TOKEN_REQUIRED_EXTRA, "parameters": [
        TUS_RESUMABLE, _header("Upload-Length", "the file's size in bytes", "^[0-9]{1,19}$"),
        _header("Upload-Metadata", "comma-separated 'key base64-value' pairs: filename, filetype, sha256 (hex)",
                METADATA_PATTERN, required=False, max_length=MAX_METADATA), UPLOAD_CHECKSUM],
        "requestBody": {"required": False, **BINARY_BODY}},
)
async def create_upload(request: Request, engine: EngineDep, principal: PrincipalDep) -> Response:
    account_id = _account(principal)
    _check_version(request)
    length = _number(request, "Upload-Length")
    limit = tus_store.max_bytes(engine)
    if length > limit:
        raise _error(413, "upload_too_large", f"Upload-Length {length} is over Tus-Max-Size ({limit} bytes)",
                     **{"Tus-Max-Size": str(limit)})
    meta = parse_metadata(request.headers.get("upload-metadata"))
    expected = expected_sha256(meta)
    body = _has_body(request)
    checksum = parse_checksum(request.headers.get("upload-checksum")) if body else None
    if body:
        _check_content_type(request)
    await _sweep_now_and_then(engine)
    upload = await run_in_threadpool(tus_store.create, engine, account_id, length, meta, expected)
    location = f"{request.scope.get('root_path', '')}{BASE}/{upload.id}"
    offset = 0
    if body or length == 0:
        try:
            done = await append(request, engine, upload.id, account_id, 0, checksum)
        except ApiError as exc:
            exc.headers = {**(exc.headers or {}), "Location": location}
            raise
        upload, offset = done.upload, done.offset
    return Response(status_code=201, headers={**_offset_headers(upload, offset), "Location": location})


@router.head(
    BASE + "/{upload_id}", response_class=Response, summary="An upload's offset (tus core)",
    responses={200: {"description": "Upload-Offset and Upload-Length", "headers": _headers_doc(
        "Tus-Resumable", "Upload-Offset", "Upload-Length", "Upload-Expires", "Cache-Control")},
        **_errors(400, 401, 404, 410, 412, 429)},
    openapi_extra={**TOKEN_REQUIRED_EXTRA, "parameters": [TUS_RESUMABLE]},
)
async def upload_offset(upload_id: UploadId, request: Request, engine: EngineDep, principal: PrincipalDep) -> Response:
    account_id = _account(principal)
    _check_version(request)
    upload = await run_in_threadpool(tus_store.get, engine, upload_id, account_id)
    if upload is None:
        raise _error(404, "upload_not_found", f"no upload {upload_id}", **{"Cache-Control": "no-store"})
    if upload.state == FAILED:
        raise _error(410, "upload_failed", f"upload {upload_id} failed: {upload.reason}",
                     **{"Cache-Control": "no-store"})
    offset = upload.offset
    if upload.state == UPLOADING:  # never more than reached the disk (the next PATCH records it)
        offset = min(offset, await run_in_threadpool(_size, tus_store.part_path(engine, upload_id)))
    headers = _offset_headers(upload, offset)
    headers["Upload-Length"] = str(upload.length)
    if upload.metadata:
        headers["Upload-Metadata"] = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in upload.metadata.items())
    return Response(status_code=200, headers=headers)


@router.patch(
    BASE + "/{upload_id}", status_code=204, response_class=Response, summary="Append a chunk at Upload-Offset (tus core, checksum)",
    responses={204: {"description": "appended; Upload-Offset is the new offset",
                     "headers": _headers_doc("Tus-Resumable", "Upload-Offset", "Upload-Expires")},
               **_errors(400, 401, 404, 409, 410, 412, 413, 415, 422, 423, 429, 460)},
    openapi_extra={**TOKEN_REQUIRED_EXTRA, "parameters": [TUS_RESUMABLE, UPLOAD_OFFSET, UPLOAD_CHECKSUM],
                   "requestBody": {"required": True, **BINARY_BODY}},
)
async def append_chunk(upload_id: UploadId, request: Request, engine: EngineDep, principal: PrincipalDep) -> Response:
    account_id = _account(principal)
    _check_version(request)
    _check_content_type(request)
    offset = _number(request, "Upload-Offset")
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    done = await append(request, engine, upload_id, account_id, offset, checksum)
    return Response(status_code=204, headers=_offset_headers(done.upload, done.offset))


@router.delete(
    BASE + "/{upload_id}", status_code=204, response_class=Response, summary="Abandon an upload (tus termination)",
    responses={204: {"description": "removed", "headers": _headers_doc("Tus-Resumable")},
               **_errors(400, 401, 404, 412, 423, 429)},
    openapi_extra={**TOKEN_REQUIRED_EXTRA, "parameters": [TUS_RESUMABLE]},
)
async def terminate_upload(upload_id: UploadId, request: Request, engine: EngineDep,
                           principal: PrincipalDep) -> Response:
    account_id = _account(principal)
    _check_version(request)
    if await run_in_threadpool(tus_store.get, engine, upload_id, account_id) is None:
        raise _error(404, "upload_not_found", f"no upload {upload_id}")
    fd = await run_in_threadpool(_open_part, tus_store.part_path(engine, upload_id))
    try:
        await _lock(fd, upload_id)
        await run_in_threadpool(tus_store.remove, engine, upload_id)
        _hashes(engine).take(upload_id, -1)
    finally:
        os.close(fd)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})


@router.post(
    BASE + "/{upload_id}", status_code=204, response_class=Response,
    summary="PATCH or DELETE for clients that cannot send them (X-HTTP-Method-Override)",
    responses={204: {"description": "as PATCH or DELETE answers", "headers": _headers_doc(
        "Tus-Resumable", "Upload-Offset", "Upload-Expires")},
               **_errors(400, 401, 404, 409, 410, 412, 413, 415, 422, 423, 429, 460)},
    openapi_extra={**TOKEN_REQUIRED_EXTRA, "parameters": [
        {**_header("X-HTTP-Method-Override", "the method meant: PATCH or DELETE"),
         "schema": {"type": "string", "enum": ["PATCH", "DELETE"]}},
        TUS_RESUMABLE, {**UPLOAD_OFFSET, "required": False}, UPLOAD_CHECKSUM],
        "requestBody": {"required": False, **BINARY_BODY}},
)
async def overridden_method(upload_id: UploadId, request: Request, engine: EngineDep,
                            principal: PrincipalDep) -> Response:
    meant = request.headers.get("x-http-method-override", "").upper()
    if await run_in_threadpool(tus_store.get, engine, upload_id, _account(principal)) is None:
        raise _error(404, "upload_not_found", f"no upload {upload_id}")
    if meant == "PATCH":
        return await append_chunk(upload_id, request, engine, principal)
    if meant == "DELETE":
        return await terminate_upload(upload_id, request, engine, principal)
    raise _error(400, "method_override_required",
                 "POST to an upload needs X-HTTP-Method-Override: PATCH or DELETE (tus-java-client sends it "
                 "where PATCH is not available)")


class UploadOut(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "q3V9m1c8TzeQ0b7yH2kP1w", "state": "complete", "length": 183046, "offset": 183046,
        "metadata": {"filename": "fox.jpg", "filetype": "image/jpeg"},
        "sha256": "5f7c0d0e3b1d2e4f8a9b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "reason": None,
        "expires_at": None}]})

    id: str
    state: Literal["uploading", "complete", "failed"]
    length: int
    offset: int
    metadata: dict[str, str]
    sha256: str | None = None
    reason: str | None = None
    expires_at: datetime | None = None


@router.get(
    BASE + "/{upload_id}", response_model=UploadOut, summary="An upload's state, with the reason it failed",
    responses=_errors(401, 404, 429), openapi_extra=TOKEN_REQUIRED_EXTRA,
)
async def upload_state(upload_id: UploadId, engine: EngineDep, principal: PrincipalDep) -> UploadOut:
    upload = await run_in_threadpool(tus_store.get, engine, upload_id, _account(principal))
    if upload is None:
        raise _error(404, "upload_not_found", f"no upload {upload_id}")
    return UploadOut(id=upload.id, state=upload.state, length=upload.length, offset=upload.offset,  # type: ignore[arg-type]
                     metadata=upload.metadata, sha256=upload.sha256, reason=upload.reason,
                     expires_at=upload.expires_at if upload.state != COMPLETE else None)


# -- command line -------------------------------------------------------------------------------


@click.command("sweep-uploads", help="Remove abandoned tus uploads (past their Upload-Expires).")
@click.pass_context
def sweep_uploads_command(ctx: click.Context) -> None:
    from core.cli import engine_of

    removed = sweep_uploads(engine_of(ctx))
    click.echo(f"removed {removed} abandoned upload(s)")
