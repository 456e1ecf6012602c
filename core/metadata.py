"""Remove embedded metadata (EXIF with GPS, XMP, IPTC, comments, text chunks) from media shown
to callers who may not see the exact place.

Phones and cameras write the exact place, the device and the owner's name into files; an
observatory that coarsens coordinates for the public must not hand them out inside the file.

Every cleaner works by *allow-list*: it walks the file's structure and keeps only the parts a
decoder needs (pixels, palettes, colour profiles, timing), so metadata of a kind nobody thought
of is dropped too. It fails closed: when the structure cannot be followed to its end (a bad
length, a truncated file, an unknown critical part) it raises :class:`NotStrippable` and the
file is not served to the public at all. Types without a cleaner (``NOT_PUBLIC``) are refused
the same way. MP4/QuickTime live in :mod:`core.metadata_isobmff`.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Callable

from core.metadata_isobmff import strip_isobmff
from core.metadata_errors import NotStrippable

__all__ = ["NOT_PUBLIC", "NotStrippable", "STRIPPERS", "STRIP_VERSION", "strip_metadata"]

#: bumped whenever a cleaner changes, so that copies cleaned by an older one are made again
STRIP_VERSION = 3

# -------------------------------------------------------------------------------------------
# JPEG
# -------------------------------------------------------------------------------------------

# SOF0-15 (less DHT C4, JPG C8 and DAC CC, listed on their own), DHT, DAC, DQT, DNL, DRI, DHP, EXP
_JPEG_KEEP = ({*range(0xC0, 0xD0)} - {0xC8}) | {0xDB, 0xDC, 0xDD, 0xDE, 0xDF}
_JPEG_METADATA = {*range(0xE0, 0xF0), 0xFE}  # APP0-15, COM
# APPn kept only with these signatures: JFIF header, ICC colour profile, Adobe colour transform
_JPEG_KEEP_APP = {0xE0: b"JFIF\0", 0xE2: b"ICC_PROFILE\0", 0xEE: b"Adobe"}
# the end of entropy-coded data: 0xFF (with any fill bytes) before a byte that is not a stuffed
# zero, a restart marker or another fill byte
# (written so that re finds the literal 0xFF first: \xff+ or a negated class is 30 times slower)
_ENTROPY_END = re.compile(rb"\xff(?:\xff)*[\x01-\xcf\xd8-\xfe]")


_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}


def _jpeg_segment_fits(marker: int, payload: bytes) -> bool:
    """Whether a kept segment is exactly as long as its own contents say, so that no bytes
    (metadata under a false marker) can ride along in it."""
    n = len(payload)
    if marker in _SOF or marker == 0xDE:  # frame header: P Y X Nf, then 3 bytes per component
        return n >= 6 and n == 6 + 3 * payload[5]
    if marker == 0xDA:  # scan header: Ns, 2 bytes per component, Ss Se Ah/Al
        return n >= 1 and n == 4 + 2 * payload[0]
    if marker == 0xC4:  # Huffman tables: class/id, 16 counts, the values
        i = 0
        while i < n:
            if i + 17 > n:
                return False
            i += 17 + sum(payload[i + 1:i + 17])
        return i == n
    if marker == 0xDB:  # quantisation tables of 64 bytes or 64 words
        i = 0
        while i < n:
            i += 1 + (128 if payload[i] >> 4 else 64)
        return i == n
    if marker == 0xCC:
        return n % 2 == 0
    if marker in (0xDD, 0xDC):  # restart interval, number of lines
        return n == 2
    if marker == 0xDF:
        return n == 1
    if marker == 0xE0:  # JFIF: version, units, density, thumbnail size, thumbnail pixels
        return n >= 14 and n == 14 + 3 * payload[12] * payload[13]
    if marker == 0xEE:  # Adobe: version, flags0, flags1, transform
        return n == 12
    return marker == 0xE2  # ICC profile (kept as it is)


def _exif_orientation(payload: bytes) -> int | None:
    """The Orientation tag (1-8) of an EXIF APP1 payload, or None (absent or unreadable)."""
    if not payload.startswith(b"Exif\0\0") or len(payload) < 14:
        return None
    tiff = payload[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for k in range(count):
            entry = tiff[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
            tag, kind, _n = struct.unpack(order + "HHI", entry[:8])
            if tag == 0x0112 and kind == 3:
                value = struct.unpack(order + "H", entry[8:10])[0]
                return value if 1 <= value <= 8 else None
    except struct.error:
        return None
    return None


def _orientation_app1(orientation: int) -> bytes:
    """A fresh EXIF APP1 segment holding nothing but the orientation (written, not copied)."""
    tiff = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _strip_jpeg(data: bytes) -> bytes:
    """Keep the frame, tables and scans; drop APPn (but JFIF, ICC, Adobe), COM and what follows EOI.

    Any number of 0xFF fill bytes may precede a marker (decoders accept them); markers are
    written back without them. Scans are followed to their end, so metadata segments between
    progressive scans are dropped as well. A photo's EXIF orientation is kept, rewritten alone.
    """
    if not data.startswith(b"\xff\xd8"):
        raise NotStrippable("not a JPEG stream (no start-of-image marker)")
    out = bytearray(b"\xff\xd8")
    orientation: int | None = None
    i, n = 2, len(data)
    while True:
        if i >= n or data[i] != 0xFF:
            raise NotStrippable(f"JPEG: no marker where one is due (byte {i})")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            raise NotStrippable("JPEG: the file ends inside a marker")
        marker = data[i]
        i += 1
        if marker == 0xD9:  # end of image; anything after it (other images, trailers) is dropped
            out += b"\xff\xd9"
            break
        if marker not in _JPEG_KEEP and marker not in _JPEG_METADATA and marker != 0xDA:
            raise NotStrippable(f"JPEG: unexpected marker 0x{marker:02X}")
        if i + 2 > n:
            raise NotStrippable("JPEG: the file ends inside a segment length")
        (length,) = struct.unpack(">H", data[i:i + 2])
        if length < 2 or i + length > n:
            raise NotStrippable(f"JPEG: segment 0x{marker:02X} has an impossible length ({length})")
        payload = data[i + 2:i + length]
        if marker in _JPEG_METADATA:
            if marker == 0xE1 and orientation is None:
                orientation = _exif_orientation(payload)
            keep = marker in _JPEG_KEEP_APP and payload.startswith(_JPEG_KEEP_APP[marker])
        else:
            keep = True
        if keep and not _jpeg_segment_fits(marker, payload):
            raise NotStrippable(f"JPEG: segment 0x{marker:02X} is not the length its contents say")
        if keep:
            out += bytes((0xFF, marker)) + data[i:i + length]
        i += length
        if marker == 0xDA:  # the entropy-coded data follows the scan header
            end = _ENTROPY_END.search(data, i)
            if end is None:
                raise NotStrippable("JPEG: a scan runs to the end of the file (no end-of-image marker)")
            out += data[i:end.start()]
            i = end.start()
    if orientation not in (None, 1):
        assert orientation is not None
        start = 2
        if out[2:4] == b"\xff\xe0":  # after the JFIF header, where readers look for EXIF
            start = 4 + struct.unpack(">H", out[4:6])[0]
        out[start:start] = _orientation_app1(orientation)
    return bytes(out)


# -------------------------------------------------------------------------------------------
# PNG
# -------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# pixels, palette, transparency, colour and gamma, physical size, background, APNG frames
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
             b"cICP", b"mDCV", b"cLLI", b"mDCv", b"cLLi", b"bKGD", b"hIST", b"pHYs", b"acTL", b"fcTL", b"fdAT"}

_PNG_LENGTHS = {b"IHDR": 13, b"IEND": 0, b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9, b"cICP": 4,
                b"acTL": 8, b"fcTL": 26, b"mDCV": 24, b"mDCv": 24, b"cLLI": 8, b"cLLi": 8}


def _strip_png(data: bytes) -> bytes:
    """Keep the chunks a decoder uses (copied whole, CRC included); drop eXIf, tEXt, iTXt, zTXt,
    tIME and every other ancillary chunk, and anything after IEND."""
    if not data.startswith(PNG_SIGNATURE):
        raise NotStrippable("not a PNG stream (no signature)")
    out = bytearray(PNG_SIGNATURE)
    i, n, first = 8, len(data), True
    while True:
        if i + 12 > n:
            raise NotStrippable("PNG: the file ends before its IEND chunk")
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise NotStrippable(f"PNG: chunk {kind!r} runs past the end of the file")
        if first and kind != b"IHDR":
            raise NotStrippable("PNG: the first chunk is not IHDR")
        first = False
        if kind in _PNG_KEEP:
            if zlib.crc32(data[i + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
                raise NotStrippable(f"PNG: chunk {kind!r} fails its CRC")
            if _PNG_LENGTHS.get(kind, length) != length:
                raise NotStrippable(f"PNG: chunk {kind!r} has the wrong length ({length})")
            out += data[i:end]
        elif not kind.isalpha() or kind[:1].isupper():
            raise NotStrippable(f"PNG: unknown critical or malformed chunk {kind!r}")
        i = end
        if kind == b"IEND":
            return bytes(out)


# -------------------------------------------------------------------------------------------
# GIF
# -------------------------------------------------------------------------------------------

_GIF_KEEP_APPS = {b"NETSCAPE2.0", b"ANIMEXTS1.0"}  # looping


def _gif_sub_blocks(data: bytes, i: int) -> int:
    """The offset after the data sub-blocks starting at ``i`` (and their terminator)."""
    n = len(data)
    while True:
        if i >= n:
            raise NotStrippable("GIF: the file ends inside a block")
        size = data[i]
        i += 1 + size
        if size == 0:
            return i


def _strip_gif(data: bytes) -> bytes:
    """Keep the screen, colour tables, graphic controls, images and looping; drop comments,
    plain-text and application extensions (XMP, ICC, ...) and anything after the trailer."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise NotStrippable("not a GIF stream")
    flags = data[10]
    i = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    out = bytearray(data[:i])
    n = len(data)
    while True:
        if i >= n:
            raise NotStrippable("GIF: the file ends before its trailer")
        block = data[i]
        if block == 0x3B:
            out.append(0x3B)
            return bytes(out)
        if block == 0x2C:  # image: descriptor, local colour table, LZW code size, data
            if i + 10 > n:
                raise NotStrippable("GIF: the file ends inside an image descriptor")
            local = data[i + 9]
            start = i
            i += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
            i = _gif_sub_blocks(data, i)
            out += data[start:i]
        elif block == 0x21:
            if i + 2 > n:
                raise NotStrippable("GIF: the file ends inside an extension")
            label, start = data[i + 1], i
            end = _gif_sub_blocks(data, i + 2)
            if label == 0xF9:  # graphic control: one 4-byte block
                keep = end - start == 8 and data[i + 2] == 4
                if not keep:
                    raise NotStrippable("GIF: a graphic control extension of the wrong shape")
            elif label == 0xFF:  # looping: the name, then one 3-byte block (1, count)
                keep = data[i + 2] == 11 and data[i + 3:i + 14] in _GIF_KEEP_APPS
                if keep and (end - start != 19 or data[i + 14] != 3 or data[i + 15] != 1):
                    raise NotStrippable("GIF: a looping extension of the wrong shape")
            else:  # 0xFE comment, 0x01 plain text, unknown extensions
                keep = False
            if keep:
                out += data[start:end]
            i = end
        else:
            raise NotStrippable(f"GIF: unknown block 0x{block:02X}")


# -------------------------------------------------------------------------------------------
# RIFF: WebP, WAV
# -------------------------------------------------------------------------------------------


def _riff_chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(fourcc, payload start, payload end) of each chunk in ``data[start:end]``; strict."""
    chunks = []
    i = start
    while i < end:
        if i + 8 > end:
            raise NotStrippable("RIFF: the file ends inside a chunk header")
        kind = data[i:i + 4]
        (size,) = struct.unpack("<I", data[i + 4:i + 8])
        if i + 8 + size > end:
            raise NotStrippable(f"RIFF: chunk {kind!r} runs past the end of its container")
        chunks.append((kind, i + 8, i + 8 + size))
        i += 8 + size + (size & 1)
    return chunks


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def _riff_body(data: bytes, form: bytes) -> tuple[int, int]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != form:
        raise NotStrippable(f"not a RIFF {form.decode()} stream")
    (size,) = struct.unpack("<I", data[4:8])
    if size < 4 or 8 + size > len(data):
        raise NotStrippable("RIFF: the stated size runs past the end of the file")
    return 12, 8 + size  # trailing bytes after the RIFF form are dropped


_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"ANIM", b"ANMF"}
_WEBP_FRAME_KEEP = {b"ALPH", b"VP8 ", b"VP8L"}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _strip_webp(data: bytes) -> bytes:
    """Keep the bitstreams, alpha, ICC profile and animation; drop EXIF, XMP and unknown chunks
    (inside animation frames too), clear the EXIF/XMP flags of VP8X and set the RIFF size."""
    start, end = _riff_body(data, b"WEBP")
    body = bytearray()
    for kind, ps, pe in _riff_chunks(data, start, end):
        if kind not in _WEBP_KEEP:
            continue
        payload = data[ps:pe]
        if kind in (b"VP8X", b"ANIM") and len(payload) != {b"VP8X": 10, b"ANIM": 6}[kind]:
            raise NotStrippable(f"WebP: chunk {kind!r} has the wrong length")
        if kind == b"VP8X":
            payload = bytes((payload[0] & ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF,)) + payload[1:]
        elif kind == b"ANMF":
            if len(payload) < 16:
                raise NotStrippable("WebP: ANMF chunk too short")
            frame = payload[:16] + b"".join(
                _riff_chunk(k, payload[s:e]) for k, s, e in _riff_chunks(payload, 16, len(payload))
                if k in _WEBP_FRAME_KEEP)
            payload = frame
        body += _riff_chunk(kind, payload)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + bytes(body)


_WAV_KEEP = {b"fmt ", b"fact", b"data"}


def _strip_wav(data: bytes) -> bytes:
    """Keep the format and the samples; drop LIST/INFO, bext, iXML, id3 and every other chunk."""
    start, end = _riff_body(data, b"WAVE")
    chunks = [(k, s, e) for k, s, e in _riff_chunks(data, start, end) if k in _WAV_KEEP]
    if {k for k, _s, _e in chunks} < {b"fmt ", b"data"}:
        raise NotStrippable("WAV: no format or no data chunk")
    body = b"".join(_riff_chunk(k, data[s:e]) for k, s, e in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


# -------------------------------------------------------------------------------------------
# Dispatch
# -------------------------------------------------------------------------------------------

STRIPPERS: dict[str, Callable[[bytes], bytes]] = {
    "image/jpeg": _strip_jpeg,
    "image/png": _strip_png,
    "image/gif": _strip_gif,
    "image/webp": _strip_webp,
    "audio/wav": _strip_wav,
    "video/mp4": strip_isobmff,
    "video/quicktime": strip_isobmff,
}

#: accepted types that carry metadata this engine cannot remove safely: never served publicly
NOT_PUBLIC: dict[str, str] = {
    "video/x-msvideo": "AVI files keep metadata (INFO lists, camera data) in places this engine does not clean",
    "video/webm": "WebM files keep tags and attachments this engine does not clean",
    "video/x-matroska": "Matroska files keep tags and attachments this engine does not clean",
    "audio/ogg": "Ogg files keep comment headers this engine does not clean",
}


def strip_metadata(data: bytes, content_type: str) -> bytes:
    """``data`` without location or personal metadata; raise :class:`NotStrippable` when that
    cannot be made sure of (a type without a cleaner, or a structure that cannot be followed)."""
    strip = STRIPPERS.get(content_type)
    if strip is None:
        raise NotStrippable(NOT_PUBLIC.get(content_type, f"{content_type or 'this'} files are not cleaned"))
    try:
        return strip(data)
    except (IndexError, struct.error, ValueError) as exc:
        if isinstance(exc, NotStrippable):
            raise
        raise NotStrippable(f"{content_type}: the file's structure cannot be followed ({exc})") from exc
