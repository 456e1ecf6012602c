"""Thumbnails for the console: a photo shrunk to at most 240 px a side, made once and kept.

A thumbnail is made with OpenCV from the stored file (JPEGs decoded at a reduced scale by libjpeg
when they are large, so a 12-megapixel photo is not decoded whole), written as a JPEG (no
metadata is carried over: only pixels) under ``<data_dir>/thumbnails/v<version>/``, keyed by the
file's sha256, and read from there afterwards. A file that cannot be decoded (cut off, corrupt,
a video or a sound) gives a placeholder picture instead, and that outcome is kept too, so a
broken file is not decoded again on every page view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.engine import Engine
from core.media import _write_atomic

MAX_SIDE = 240
VERSION = 1
JPEG_QUALITY = 82
FOLDER = "thumbnails"
PLACEHOLDER_TYPE = "image/svg+xml"
_DECODABLE = ("image/jpeg", "image/png", "image/webp", "image/gif")
PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="240" viewBox="0 0 240 240" role="img">'
    '<rect width="240" height="240" fill="#e4e8ec"/>'
    '<path d="M60 170 L100 115 L130 150 L150 130 L185 170 Z" fill="#9aa5b1"/>'
    '<circle cx="160" cy="85" r="14" fill="#9aa5b1"/></svg>'
).encode()


def thumbnail_path(engine: Engine, sha256: str) -> Path:
    """Where the thumbnail of file ``sha256`` is kept."""
    return Path(engine.settings.data_dir) / FOLDER / f"v{VERSION}" / sha256[:2] / f"{sha256}.jpg"


def _reduction(width: int | None, height: int | None) -> int:
    """The largest JPEG decoding scale (1, 2, 4, 8) that still leaves MAX_SIDE pixels a side."""
    longest = max(width or 0, height or 0)
    for factor in (8, 4, 2):
        if longest // factor >= MAX_SIDE:
            return factor
    return 1


def _decode(data: bytes, content_type: str, width: int | None, height: int | None) -> np.ndarray | None:
    import cv2

    flags = cv2.IMREAD_COLOR
    if content_type == "image/jpeg":
        flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}[_reduction(width, height)]
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None
    return image if image is not None and image.size else None


def make_thumbnail(data: bytes, content_type: str, width: int | None = None, height: int | None = None) -> bytes | None:
    """The JPEG thumbnail of an image file's bytes (at most MAX_SIDE a side), or None when the
    file is not an image OpenCV can decode."""
    import cv2

    if content_type not in _DECODABLE:
        return None
    image = _decode(data, content_type, width, height)
    if image is None:
        return None
    h, w = image.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return encoded.tobytes() if ok else None


def thumbnail(engine: Engine, sha256: str, content_type: str, width: int | None = None,
              height: int | None = None) -> tuple[bytes, str]:
    """(bytes, media type) of the thumbnail of stored file ``sha256``: the kept JPEG, made now
    if there is none yet, or the placeholder for a file that cannot be shown as a picture."""
    path = thumbnail_path(engine, sha256)
    failed = path.with_suffix(".failed")
    try:
        return path.read_bytes(), "image/jpeg"
    except FileNotFoundError:
        pass
    if failed.exists():
        return PLACEHOLDER, PLACEHOLDER_TYPE
    try:
        data = engine.media.open(sha256)
    except OSError:
        return PLACEHOLDER, PLACEHOLDER_TYPE  # a file missing from the store: not kept, it may come back
    made = make_thumbnail(data, content_type, width, height)
    if made is None:
        _write_atomic(failed, content_type.encode())
        return PLACEHOLDER, PLACEHOLDER_TYPE
    _write_atomic(path, made)
    return made, "image/jpeg"
