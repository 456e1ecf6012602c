"""Photo sizes as iNaturalist names them (``square``, ``thumb``, ``small``, ``medium``, ``large``,
``original``), for ``/inat/v1/photos/{id}/{size}.jpg``.

Only photos of observations the API serves (published, in a public project that enables the
identification service). Each size is decoded and encoded again with OpenCV, once, and kept under
``<data_dir>/inat-photos/v<VERSION>/``: a re-encoded JPEG carries no metadata at all (no EXIF GPS,
camera or owner), whatever the file as sent held. OpenCV turns the pixels as the EXIF orientation
says before the metadata is dropped, so the photo still stands the right way up.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import MediaBlob, Observation, ObservationMedia
from core.engine import Engine
from plugins.identification.inat_render import PHOTO_SIZES

VERSION = 1
"""A new way of making sizes, a new folder (the old one can be deleted)."""
JPEG_QUALITY = 85
_media = ObservationMedia.__table__
_blobs = MediaBlob.__table__
_obs = Observation.__table__


@dataclass(frozen=True)
class PhotoFile:
    sha256: str
    project: str
    status: str
    content_type: str


def find_photo(session: Session, photo_id: int) -> PhotoFile | None:
    row = session.execute(
        select(_media.c.sha256, _obs.c.project, _obs.c.status, _blobs.c.content_type)
        .join(_blobs, _blobs.c.sha256 == _media.c.sha256).join(_obs, _obs.c.id == _media.c.observation_id)
        .where(_media.c.id == photo_id)).first()
    return PhotoFile(row.sha256, row.project, row.status, row.content_type) if row else None


def variant_path(engine: Engine, sha256: str, size: str) -> Path:
    return Path(engine.settings.data_dir) / "inat-photos" / f"v{VERSION}" / sha256[:2] / f"{sha256}-{size}.jpg"


def resized(data: bytes, size: str) -> bytes | None:
    """The photo at iNaturalist's ``size``, as a JPEG without metadata; None if it cannot be decoded."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    height, width = image.shape[:2]
    longest = PHOTO_SIZES[size]
    if size == "square":  # the centred square, then down to the size
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        image = image[top:top + side, left:left + side]
        height = width = side
    scale = longest / max(height, width)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return encoded.tobytes() if ok else None


def photo_bytes(engine: Engine, sha256: str, size: str) -> bytes | None:
    """The size of the stored photo ``sha256``, made on first use and kept; None if undecodable."""
    path = variant_path(engine, sha256, size)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    made = resized(engine.media.open(sha256), size)
    if made is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(made)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return made
