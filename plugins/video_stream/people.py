"""People in an event's best crops, with detectors that ship with the libraries (no download).

* OpenCV 4's HOG people detector (``cv2.HOGDescriptor_getDefaultPeopleDetector``, whole bodies
  standing up) and its Haar frontal-face cascade (``cv2.data.haarcascades``) when the installed
  OpenCV has them. OpenCV 5 moved both out of the main package (to opencv_contrib's xobjdetect),
  and the engine installs OpenCV 5.
* scikit-image's LBP frontal-face cascade (``skimage.data.lbp_frontal_face_cascade_filename``,
  OpenCV's own ``lbpcascade_frontalface``, evaluated by ``skimage.feature.Cascade``), always.

A face counts where every face cascade available sees it (with OpenCV 4, the Haar cascade looks
first and the LBP one must agree: either alone now and then takes a cat's nose for a face). So with OpenCV 5,
people are recognised by their faces (a person seen from behind is not), and with OpenCV 4 by
their bodies too.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, Sequence

import cv2
import numpy as np

FACE_SIDE = 240          # crops are looked at with their longer side this long (enlarged up to
MAX_ENLARGE = 2.5        # this much: the cascades miss the small, soft faces of video frames)
MIN_FACE = 20            # the smallest face looked for, in pixels of that copy
HOG_MIN_WEIGHT = 0.5     # HOG detections below this SVM weight are ignored
HOG_HEIGHT = 200         # crops are looked at for people this tall

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _lbp_cascade() -> Any:
    from skimage import data
    from skimage.feature import Cascade

    return Cascade(data.lbp_frontal_face_cascade_filename())


@lru_cache(maxsize=1)
def _haar_cascade() -> Any:
    if not hasattr(cv2, "CascadeClassifier"):
        return None
    path = getattr(getattr(cv2, "data", None), "haarcascades", "") + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    return None if cascade.empty() else cascade


@lru_cache(maxsize=1)
def _hog() -> Any:
    if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        return None
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def detectors() -> list[str]:
    """The people detectors available in this installation (for reports and docs)."""
    found = ["skimage LBP face cascade"]
    if _haar_cascade() is not None:
        found.append("OpenCV Haar face cascade")
    if _hog() is not None:
        found.append("OpenCV HOG people detector")
    return found


def _resized(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(MAX_ENLARGE, side / max(h, w, 1))
    if abs(scale - 1.0) > 0.05:
        image = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    else:
        scale = 1.0
    return image, scale


def find_faces(image: np.ndarray, *, side: int = FACE_SIDE) -> list[tuple[int, int, int, int]]:
    """Frontal faces in a BGR image: boxes (x, y, w, h) in its pixels. The image is looked at
    with its longer side ``side`` pixels (faces smaller than about ``side`` / 12 there are
    missed; pass a larger side for a whole frame)."""
    small, scale = _resized(image, side)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    grey = cv2.equalizeHist(grey)
    h, w = grey.shape
    if min(h, w) < MIN_FACE:
        return []
    haar = _haar_cascade()
    other: list[tuple[int, ...]] = []
    if haar is not None:  # where OpenCV has its cascade, it looks first (faster), and LBP confirms
        with _lock:
            found = haar.detectMultiScale(grey, scaleFactor=1.15, minNeighbors=3, minSize=(MIN_FACE, MIN_FACE))
        other = [tuple(int(v) for v in b) for b in (found if len(found) else [])]
        if not other:
            return []
    if haar is None:
        return [(int(x / scale), int(y / scale), int(bw / scale), int(bh / scale)) for x, y, bw, bh in _lbp(grey)]
    # both must see the face: LBP looks only around each face the Haar cascade found (fast)
    boxes = []
    for x, y, bw, bh in other:
        mx, my = bw // 2, bh // 2
        x0, y0 = max(0, x - mx), max(0, y - my)
        around = grey[y0:min(h, y + bh + my), x0:min(w, x + bw + mx)]
        if any(_overlap((lx + x0, ly + y0, lw, lh), (x, y, bw, bh)) >= 0.3 for lx, ly, lw, lh in _lbp(around)):
            boxes.append((x, y, bw, bh))
    return [(int(x / scale), int(y / scale), int(bw / scale), int(bh / scale)) for x, y, bw, bh in boxes]


def _lbp(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """scikit-image's LBP frontal-face cascade on a grey image: boxes (x, y, w, h)."""
    h, w = grey.shape
    if min(h, w) < MIN_FACE:
        return []
    with _lock:  # skimage's Cascade keeps state while it runs
        found = _lbp_cascade().detect_multi_scale(grey, scale_factor=1.15, step_ratio=1,
                                                  min_size=(MIN_FACE, MIN_FACE), max_size=(h, w),
                                                  min_neighbor_number=3)
    return [(d["c"], d["r"], d["width"], d["height"]) for d in found]


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def find_people(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Whole people standing up (OpenCV 4's HOG detector; [] where OpenCV has none, or where
    the image is clearly wider than tall, as no one standing is)."""
    hog = _hog()
    h, w = image.shape[:2]
    if hog is None or w > 1.2 * h or h < 8:
        return []
    scale = HOG_HEIGHT / h   # the detector's window is 64 x 128: looked at HOG_HEIGHT tall
    image = cv2.resize(image, (max(1, int(w * scale)), HOG_HEIGHT),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad = max(0, 80 - image.shape[1])  # and a narrow one widened (its borders repeated)
    if pad:
        image = cv2.copyMakeBorder(image, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REPLICATE)
    rects, weights = hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.1)
    return [(int((x - pad // 2) / scale), int(y / scale), int(bw / scale), int(bh / scale))
            for (x, y, bw, bh), wt in zip(rects, np.ravel(weights)) if wt >= HOG_MIN_WEIGHT]


def is_human(crops: Sequence[np.ndarray], looked_at: int = 2) -> bool:
    """Whether the crops of one event (best first) show a person: a face (or, where OpenCV has
    its HOG detector, a standing body) in one of the first ``looked_at``."""
    return any(find_faces(crop) or find_people(crop) for crop in list(crops)[:looked_at])
