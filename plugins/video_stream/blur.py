"""Faces blurred in keyframes of people before they leave the engine (issue 14, item 4).

OpenCV's own detectors, shipped inside the wheel (nothing downloaded): the Haar frontal and
profile face cascades (``cv2.data.haarcascades``) first. A person too small for them (their
faces start at 24 px) is blurred from the boxes the caller knows (a human event's: the upper
part of each box, its head, where no face was found in it); with neither, the HOG people
detector's boxes' upper part. A region is pixelated and then Gaussian-blurred with a kernel as
large as half the region, so no detail survives.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in pixels

FACE_MARGIN = 0.35        # a face box grows by this fraction on each side (hair, ears, chin)
HEAD_FRACTION = 0.4       # the upper part of a person's box blurred when no face is found
MIN_FACE_FRACTION = 0.04  # smallest face searched for, as a fraction of the image's shorter side
BLOCKS = 6                # a blurred region is first pixelated into BLOCKS x BLOCKS cells


@lru_cache(maxsize=None)
def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():  # pragma: no cover - the wheel ships them
        raise RuntimeError(f"OpenCV's {name} could not be loaded")
    return cascade


@lru_cache(maxsize=1)
def _people_detector() -> cv2.HOGDescriptor:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def find_faces(image: np.ndarray) -> list[Box]:
    """Faces (frontal, and profiles facing either way) in a BGR image, in pixels. The cascades
    see faces of 24 px and more: a small person's head is blurred from their box instead
    (``blur_faces(people=...)``)."""
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    h, w = grey.shape
    smallest = max(12, int(min(h, w) * MIN_FACE_FRACTION))
    found: list[Box] = []
    for name in ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"):
        boxes = _cascade(name).detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                                minSize=(smallest, smallest))
        found += [tuple(int(v) for v in b) for b in boxes]  # type: ignore[misc]
    # the profile cascade only knows faces turned one way: look at the mirror image too
    mirrored = _cascade("haarcascade_profileface.xml").detectMultiScale(
        cv2.flip(grey, 1), scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest))
    found += [(int(w - x - bw), int(y), int(bw), int(bh)) for x, y, bw, bh in mirrored]
    return found


def find_heads(image: np.ndarray) -> list[Box]:
    """The upper part of each person the HOG people detector finds (a head when no face shows)."""
    h, w = image.shape[:2]
    scale = 1.0
    work = image
    if min(h, w) < 128:  # the detector's window is 64 x 128: enlarge small images
        scale = 128.0 / min(h, w)
        work = cv2.resize(image, (int(round(w * scale)), int(round(h * scale))))
    boxes, _ = _people_detector().detectMultiScale(work, winStride=(8, 8), padding=(8, 8), scale=1.05)
    heads: list[Box] = []
    for x, y, bw, bh in boxes:
        x, y, bw, bh = (int(round(v / scale)) for v in (x, y, bw, bh))
        heads.append((x, y, bw, max(1, int(bh * HEAD_FRACTION))))
    return heads


def _grow(box: Box, margin: float, width: int, height: int) -> Box:
    x, y, w, h = box
    dx, dy = int(w * margin), int(h * margin)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
    return x0, y0, x1 - x0, y1 - y0


def blur_region(image: np.ndarray, box: Box) -> None:
    """Blur ``box`` of ``image`` in place beyond recognition: pixelated into blocks of about a
    sixth of the box (``BLOCKS``), then a Gaussian blur as wide as half the box."""
    x, y, w, h = box
    if w < 2 or h < 2:
        return
    region = image[y:y + h, x:x + w]
    small = cv2.resize(region, (min(w, BLOCKS), min(h, BLOCKS)), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(w, h) // 2) | 1)
    image[y:y + h, x:x + w] = cv2.GaussianBlur(coarse, (k, k), 0)


def _head(person: Sequence[float], width: int, height: int) -> Box:
    """The upper part of a person's box (relative x, y, w, h), in pixels."""
    x, y, w, h = (float(v) for v in person)
    return (int(x * width), int(y * height), max(1, int(round(w * width))),
            max(1, int(round(h * height * HEAD_FRACTION))))


def _holds(region: Box, box: Box) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return region[0] <= cx <= region[0] + region[2] and region[1] <= cy <= region[1] + region[3]


def blur_faces(image: np.ndarray, *, people: Sequence[Sequence[float]] = ()) -> np.ndarray:
    """A copy of the BGR ``image`` with every face found blurred strongly. ``people``: boxes
    (relative x, y, w, h) where the caller knows a person is (a human event's boxes): the head
    (upper part) of each one with no face found in it is blurred too. With no face and no such
    box, the heads of the people OpenCV's HOG detector finds. An image with no one in it comes
    back unchanged (as a copy)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("blur_faces takes a BGR uint8 image (height x width x 3)")
    out = image.copy()
    height, width = out.shape[:2]
    faces = find_faces(image)
    regions = [_grow(b, FACE_MARGIN, width, height) for b in faces]
    for person in people:
        box = _grow(_head(person, width, height), 0.1, width, height)
        if not any(_holds(box, face) for face in faces):
            regions.append(box)
    if not regions:
        regions = [_grow(b, 0.1, width, height) for b in find_heads(image)]
    for box in regions:
        blur_region(out, box)
    return out
