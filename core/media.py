"""Content-addressed media storage and media checks.

Bytes are stored once, under their sha256, in a local folder (``OBSERVATORY_MEDIA_DIR``).
The media type is sniffed from the bytes, never trusted from a header or a file name, and an
image's size is read from its header before anything decodes it (decompression bombs). File
names are kept only as a base name, without control characters, at most 255 characters.

Callers who may not see the exact place get a copy without location or personal metadata
(``core.metadata``), cleaned once per file and kept under ``root/public/v<version>/``.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from core.metadata import STRIP_VERSION, NotStrippable, strip_metadata

GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
UNSUPPORTED_IMAGES = {"image/heic", "image/avif"}
#: every type ``check_media`` lets in (what the media route can answer)
ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "video/quicktime",
                  "video/x-msvideo", "video/webm", "video/x-matroska", "audio/wav", "audio/ogg")


class MediaError(ValueError):
    """A media file was refused; ``code`` is a stable machine code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    width: int | None = None
    height: int | None = None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def _gif_size(data: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _complete(data: bytes, content_type: str) -> bool:
    """Whether an image ends as its format says (the usual damage is a cut-off upload)."""
    tail = data[-64:]
    if content_type == "image/jpeg":
        return b"\xff\xd9" in tail
    if content_type == "image/png":
        return b"IEND" in tail
    return True


def sniff(data: bytes) -> Sniffed | None:
    """The media type of ``data`` from its first bytes, with an image's size; None if unknown."""
    head = data[:32]
    size: tuple[int, int] | None = None
    if head.startswith(b"\xff\xd8\xff"):
        kind, size = "image/jpeg", _jpeg_size(data[:1 << 20])
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        kind, size = "image/png", _png_size(data)
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        kind, size = "image/gif", _gif_size(data)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind, size = "image/webp", _webp_size(data)
    elif head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        kind = "video/x-msvideo"
    elif head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        kind = "audio/wav"
    elif head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in HEIF_BRANDS:
            kind = "image/avif" if brand in (b"avif", b"avis") else "image/heic"
        else:
            kind = "video/quicktime" if brand == b"qt  " else "video/mp4"
    elif head.startswith(b"\x1aE\xdf\xa3"):
        kind = "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    elif head.startswith(b"OggS"):
        kind = "audio/ogg"
    else:
        return None
    if size is not None:
        return Sniffed(kind, size[0], size[1])
    return Sniffed(kind)


def claimed_type(filename: str | None, header: str | None) -> str:
    """What the client says the file is: the header, else a guess from the file name."""
    if header and header.split(";")[0].strip().lower() not in GENERIC_TYPES:
        return header.split(";")[0].strip().lower()
    guessed, _ = mimetypes.guess_type(filename or "")
    return guessed or ""


def _same_family(claimed: str, actual: str) -> bool:
    if not claimed or claimed == actual:
        return True
    aliases = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "video/avi": "video/x-msvideo",
               "audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "video/x-m4v": "video/mp4",
               "audio/mp4": "video/mp4"}
    return aliases.get(claimed, claimed) == actual


def check_media(data: bytes, filename: str | None, header: str | None, *, max_bytes: int, max_pixels: int) -> Sniffed:
    """Refuse empty, oversized, unknown, mislabelled or bomb-sized files; return what it is."""
    name = safe_filename(filename) or "upload"  # messages never echo a path or control characters
    if not data:
        raise MediaError("media_empty", f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise MediaError("media_too_large", f"{name}: {len(data)} bytes is over the limit of {max_bytes} bytes")
    sniffed = sniff(data)
    if sniffed is None:
        raise MediaError("media_unknown_type", f"{name}: not an image, video or sound file this engine accepts")
    if sniffed.content_type in UNSUPPORTED_IMAGES:
        raise MediaError("media_unsupported_type",
                         f"{name}: {sniffed.content_type} photos are not supported yet; send JPEG or PNG "
                         "(phones can be set to take 'most compatible' photos)")
    claimed = claimed_type(filename, header)
    if not _same_family(claimed, sniffed.content_type):
        raise MediaError(
            "media_type_mismatch", f"{name}: claims to be {claimed} but its bytes are {sniffed.content_type}"
        )
    if sniffed.content_type.startswith("image/"):
        if sniffed.width is None or sniffed.height is None or not sniffed.width or not sniffed.height:
            raise MediaError("media_corrupt", f"{name}: the {sniffed.content_type} header is unreadable or truncated")
        if not _complete(data, sniffed.content_type):
            raise MediaError("media_corrupt", f"{name}: the {sniffed.content_type} file is truncated (no end marker)")
        pixels = sniffed.width * sniffed.height
        if pixels > max_pixels:
            raise MediaError(
                "media_too_many_pixels",
                f"{name}: {sniffed.width}×{sniffed.height} pixels is over the limit of {max_pixels} pixels",
            )
    return sniffed


MAX_FILENAME = 255  # the column's width (characters)
_SEPARATORS = re.compile(r"[/\\]")
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, bidi overrides, lone surrogates


def safe_filename(name: str | None) -> str | None:
    """The name to keep for an uploaded file: its base name (after the last ``/`` or ``\\``),
    without control or format characters, trimmed, at most ``MAX_FILENAME`` characters with its
    extension kept; None when nothing is left (``..``, only controls)."""
    if name is None:
        return None
    base = _SEPARATORS.split(unicodedata.normalize("NFC", name))[-1]
    base = "".join(c for c in base if unicodedata.category(c) not in _DROPPED_CATEGORIES).strip()
    if base.strip(".") == "":
        return None
    if len(base) > MAX_FILENAME:
        stem, dot, ext = base.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            base = stem[:MAX_FILENAME - len(ext) - 1].rstrip() + "." + ext
        else:
            base = base[:MAX_FILENAME]
    return base


class MediaNotPublic(Exception):
    """The file is not served to callers who may not see the exact place; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class MediaStore:
    """Files kept once by content under ``root/ab/cd/<sha256>``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if not path.exists():
            _write_atomic(path, data)
        return digest

    def open(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def public_path_for(self, sha256: str) -> Path:
        """Where the cleaned copy of a file is kept (a new cleaner version, a new folder)."""
        return self.root / "public" / f"v{STRIP_VERSION}" / sha256[:2] / sha256[2:4] / sha256

    def open_public(self, sha256: str, content_type: str) -> bytes:
        """The file without location or personal metadata, cleaned on first use and kept;
        raise MediaNotPublic when it cannot be cleaned with certainty (the decision is kept too)."""
        path = self.public_path_for(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        refused = path.with_name(sha256 + ".refused")
        if refused.exists():
            raise MediaNotPublic(refused.read_text(encoding="utf-8"))
        try:
            clean = strip_metadata(self.open(sha256), content_type)
        except NotStrippable as exc:
            _write_atomic(refused, str(exc).encode("utf-8"))
            raise MediaNotPublic(str(exc)) from None
        _write_atomic(path, clean)
        return clean
