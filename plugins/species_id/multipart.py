"""A ``multipart/form-data`` body already in memory, split into its parts in one pass.

The identify endpoint reads its whole body first (``core.api.limits.read_body``, which bounds
it), so the general streaming parser (python-multipart through Starlette, which copies each file
into a spooled temporary file, written to disk past 1 MB through the thread pool, and read back)
is more work than the body needs: here each part is a slice of the body, found with
``bytes.find``. Headers are parsed with python-multipart's ``parse_options_header``, as
Starlette does, so names and file names are read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.multipart import parse_options_header


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data; the message says where."""


@dataclass(frozen=True)
class Part:
    name: str
    data: bytes
    filename: str | None = None  # set for a file part (Content-Disposition has a filename)
    content_type: str | None = None

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise MultipartError(f"the field {self.name!r} is not UTF-8 text") from None


def boundary_of(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise MultipartError("not multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise MultipartError("the Content-Type has no usable boundary")
    return boundary


def _headers(block: bytes) -> dict[str, bytes]:
    headers: dict[str, bytes] = {}
    for line in block.split(b"\r\n") if block else ():
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MultipartError(f"a part header is malformed: {line[:80]!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip()
    return headers


def parse(body: bytes, content_type: str, *, max_parts: int) -> list[Part]:
    """The parts of ``body``, in order; raise MultipartError if it is malformed or has more than
    ``max_parts`` parts."""
    delimiter = b"--" + boundary_of(content_type)
    if body.startswith(delimiter):
        pos = 0
    else:  # a preamble before the first delimiter is allowed (and ignored)
        pos = body.find(b"\r\n" + delimiter)
        if pos < 0:
            raise MultipartError("the body has no part (no boundary line)")
        pos += 2
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body[pos: pos + 2] == b"--":  # the closing delimiter: done (an epilogue is ignored)
            return parts
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise MultipartError("a boundary line is malformed")
        if len(parts) >= max_parts:
            raise MultipartError(f"more than {max_parts} parts")
        if body.startswith(b"\r\n", line_end + 2):  # a part without headers
            head_end = line_end
        else:
            head_end = body.find(b"\r\n\r\n", line_end + 2)
            if head_end < 0:
                raise MultipartError("a part's headers do not end")
        headers = _headers(body[line_end + 2: head_end])
        start = head_end + 4
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise MultipartError("the body ends before its closing boundary")
        disposition, params = parse_options_header(headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise MultipartError("a part has no 'Content-Disposition: form-data; name=...'")
        filename = params.get(b"filename")
        content_type_of = headers.get("content-type")
        parts.append(Part(
            params[b"name"].decode("utf-8", "replace"),
            body[start:end],
            filename.decode("utf-8", "replace") if filename is not None else None,
            content_type_of.decode("latin-1") if content_type_of is not None else None,
        ))
        pos = end + 2
