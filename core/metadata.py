"""Remove embedded metadata (EXIF with GPS, XMP, text chunks) from images shown to the public.

Phones write the exact place and the device into photos; an observatory that coarsens
coordinates for the public must not hand them out inside the file.
"""

from __future__ import annotations

import struct

JPEG_METADATA_MARKERS = {0xE1, 0xED}  # APP1 (EXIF, XMP), APP13 (IPTC)
PNG_METADATA_CHUNKS = {b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"tIME"}


def _strip_jpeg(data: bytes) -> bytes:
    out = bytearray(data[:2])
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker not in JPEG_METADATA_MARKERS:
            out += data[i : i + 2 + length]
        i += 2 + length
    out += data[i:]
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    i = 8
    while i + 8 <= len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if kind not in PNG_METADATA_CHUNKS:
            out += data[i:end]
        i = end
    return bytes(out)


def strip_metadata(data: bytes, content_type: str) -> bytes:
    """``data`` without embedded metadata, for JPEG and PNG; other types unchanged."""
    if content_type == "image/jpeg":
        return _strip_jpeg(data)
    if content_type == "image/png":
        return _strip_png(data)
    return data
