"""A video sent as ``multipart/form-data``, written to disk as it streams in: never held whole in
memory, refused with 413 once its file passes the limit (the partial file removed). One file
part named ``file``; a few small text fields beside it (``deployment``, ``settings``...).

python-multipart's push parser is fed the body's chunks; its callbacks write the file part to
an open file (page-cache writes, as the mobile bridge's tus uploads do) and keep the fields.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from core.api.errors import ApiError

FILE_PART = "file"
MAX_FIELDS = 10
MAX_FIELD_BYTES = 64 * 1024


@dataclass
class ReceivedForm:
    """What a multipart request carried: its text fields and the file written (None: no file part)."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    size: int = 0

    def discard(self) -> None:
        """Remove the file written (a refused request leaves nothing behind)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _Receiver:
    """The parser's callbacks: one part at a time, a file part into ``target(filename)``."""

    def __init__(self, form: ReceivedForm, target: Callable[[str | None], Path], max_bytes: int):
        self.form, self.target, self.max_bytes = form, target, max_bytes
        self.fd: int | None = None
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name: str | None = None
        self.text: bytearray | None = None
        self.ended = False

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value_part, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end, "on_end": self.end}

    def part_begin(self) -> None:
        self.headers, self.name, self.text = {}, None, None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_value_part(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_name.strip().lower()] = self.header_value.strip()
        self.header_name, self.header_value = b"", b""

    def headers_finished(self) -> None:
        disposition, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise ApiError(400, "invalid_multipart", "a part has no 'Content-Disposition: form-data; name=...'")
        self.name = params[b"name"].decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            if self.name != FILE_PART or self.form.path is not None:
                raise ApiError(422, "invalid_upload", f"send one video, as the file part named {FILE_PART!r} "
                               f"(got a file in {self.name!r})")
            self.form.filename = filename.decode("utf-8", "replace")
            self.form.path = self.target(self.form.filename)
            self.fd = os.open(self.form.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        else:
            if len(self.form.fields) >= MAX_FIELDS or self.name in self.form.fields:
                raise ApiError(422, "invalid_upload", f"at most {MAX_FIELDS} text fields, each once "
                               f"({self.name!r} is one too many)")
            self.text = bytearray()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.fd is not None:
            self.form.size += end - start
            if self.form.size > self.max_bytes:
                raise ApiError(413, "video_too_large", f"the video is over the limit of {self.max_bytes} bytes for "
                               "one request; send a larger one as a tus upload (the mobile bridge), a path or a URL")
            view = memoryview(data)[start:end]
            while view:
                view = view[os.write(self.fd, view):]
        elif self.text is not None:
            self.text += data[start:end]
            if len(self.text) > MAX_FIELD_BYTES:
                raise ApiError(422, "invalid_upload", f"the field {self.name!r} is over {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        elif self.text is not None and self.name is not None:
            try:
                self.form.fields[self.name] = self.text.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(422, "invalid_upload", f"the field {self.name!r} is not UTF-8 text") from None
            self.text = None

    def end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


async def receive_form(request: Request, target: Callable[[str | None], Path], max_bytes: int) -> ReceivedForm:
    """Stream the request's multipart body: the file part into ``target(filename)``, at most
    ``max_bytes`` of it. Raises ApiError (400 malformed or cut off, 413 too large, 422 a second file
    or too many fields) with nothing left on disk."""
    _kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise ApiError(400, "invalid_multipart", "the Content-Type has no usable multipart boundary")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 1024 * 1024:
        raise ApiError(413, "video_too_large", f"the request of {declared} bytes is over the limit of {max_bytes} "
                       "bytes for one video; send a larger one as a tus upload (the mobile bridge), a path or a URL")
    form = ReceivedForm()
    receiver = _Receiver(form, target, max_bytes)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if not receiver.ended:
            raise ApiError(400, "invalid_multipart", "the body ends before its closing boundary")
    except ClientDisconnect:
        receiver.close()
        form.discard()
        raise ApiError(400, "client_disconnected", "the request ended before its body did") from None
    except MultipartParseError as exc:
        receiver.close()
        form.discard()
        raise ApiError(400, "invalid_multipart", f"the multipart body is malformed: {exc}") from None
    except BaseException:  # refused, over the engine's request limit, or cut: nothing stays on disk
        receiver.close()
        form.discard()
        raise
    return form
