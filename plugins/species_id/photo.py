"""Photo checks: size, exposure, sharpness and a perceptual hash, measured once per photo.

The measures are stored in the enrichment result; ``quality_check`` compares them with the
project's thresholds, so that changing a threshold needs no new decoding.

* ``min_side``: the shorter side in pixels, as the file says.
* ``luminance``: mean grey level (0-255, ITU-R BT.601 weights) of the photo.
* ``sharpness``: variance of the Laplacian of the grey photo scaled so that its longer side is at
  most 512 pixels (so the figure does not grow with the camera's resolution). Sharp photos give
  hundreds or thousands; a photo blurred by a Gaussian of sigma 2 at that scale gives about 5-50.
* ``dhash``: a 64-bit difference hash (grey 9x8, each pixel compared with its right neighbour), as
  16 hex digits; near-duplicates are a few bits apart, other photos about 32.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from plugins.species_id.inference import QUALITY_SIDE


def _grey(bgr: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    height, width = grey.shape[:2]
    factor = QUALITY_SIDE / max(height, width)
    if factor < 1:
        grey = cv2.resize(grey, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)
    return grey


def dhash(grey: np.ndarray) -> str:
    import cv2

    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def measure(bgr: np.ndarray, width: int | None = None, height: int | None = None) -> dict[str, Any]:
    """The photo's measures; ``width``/``height`` are the file's own (before any reduced decoding)."""
    import cv2

    grey = _grey(bgr)
    width = int(width or bgr.shape[1])
    height = int(height or bgr.shape[0])
    return {
        "width": width,
        "height": height,
        "min_side": min(width, height),
        "luminance": round(float(grey.mean()), 2),
        "sharpness": round(float(cv2.Laplacian(grey, cv2.CV_64F).var()), 2),
        "dhash": dhash(grey),
    }


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def popcount(values: np.ndarray) -> np.ndarray:
    """The number of bits set in each of an array of uint64."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values).astype(np.int64)
    return np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)  # numpy < 2.0


def nearest(target: str, candidates: Iterable[str]) -> tuple[int, int]:
    """(index, distance) of the candidate hash nearest to ``target``; (-1, 65) when there is none."""
    values = np.array([int(c, 16) for c in candidates], dtype=np.uint64)
    if not len(values):
        return -1, 65
    distances = popcount(values ^ np.uint64(int(target, 16)))
    best = int(np.argmin(distances))
    return best, int(distances[best])
