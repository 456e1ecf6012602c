"""Moving regions in sampled video frames: background subtraction with the noise a camera trap
sees taken out.

Each sampled frame is reduced to a small working copy (``work_width`` pixels wide; a 1080p
frame is 6 times smaller on each side) and goes through:

1. **Sudden light change** (a cloud, lights switched on, a camera's infrared switch): the frame
   is cut into a coarse grid of cells; when most cells got brighter (or darker) at once since
   the last sample, or when most of the region of interest came out as foreground, the
   background model is re-learnt from this frame; it gives no region for ``settle_s`` (as after
   the first frame), while the model learns again.
2. **Camera shake**: the frame's shift against the last steady frame is measured by phase
   correlation in a 3 x 3 grid of tiles (most must agree: an animal cannot fake it); a shaken
   frame is moved back into place before it is compared with the background (its borders
   ignored, a coarser clean-up, and the model learns nothing from it). A camera that stays
   moved for ``shake_reset_s`` (bumped, not shaking) has its background re-learnt.
3. **Background subtraction**: OpenCV's MOG2 (a mixture of Gaussians per pixel). The
   ``sensitivity`` setting (0-1) sets its ``varThreshold`` from 64 (0: only strong contrast is
   motion) to 6 (1: faint motion too), about 20 at the default 0.5; its memory is
   ``history_s`` seconds of samples.
4. **Dynamic background**: pixels that were foreground in most recent samples (swaying
   leaves, water glint, flicker) are ignored while they keep doing so.
5. **Clean-up**: the region of interest's mask, a morphological opening (isolated noisy
   pixels) and closing (an animal's parts joined), components smaller than ``min_area`` of the
   frame dropped, and nearby boxes merged.

What remains are ``Region``s, boxes relative to the frame (0-1). Whether a region is an animal
going somewhere or a branch swaying in place is decided over time, by the tracker
(``tracks.py``: a track that never leaves its place is no event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

GRID = (8, 6)             # cells (columns, rows) of the light-change test
LIGHT_STEP = 0.12         # a cell whose brightness changed by more than this (relative) changed
LIGHT_CELLS = 0.75        # ... and this share of the cells changed the same way: the light changed
GLOBAL_FOREGROUND = 0.5   # this share of the region of interest in the foreground: a global change
SHAKE_MIN_PX = 0.75       # a shift (working pixels) at least this long may be a shake
STEADY_PX = 0.3           # a frame shifted less than this is steady (the next frames' reference)
SHAKE_RESPONSE = 0.1      # ... when phase correlation's peak is at least this clear
SHAKE_TILES = 6           # ... in at least this many of the 9 tiles, which agree on it
AGREE_PX = 1.25           # ... within this (pixels of the half-size copy: noise scatters them)
REALIGNED = 0.85          # a tile is realigned when moving the frame back leaves this share of its difference
SHAKE_MAX_SHARE = 0.1     # a shift over this share of the width: not a shake, re-learn
DYNAMIC_SHARE = 0.5       # a pixel foreground in more than this share of recent samples is ignored


@dataclass(frozen=True)
class Region:
    """A moving region: ``bbox`` [x, y, w, h] relative to the frame (0-1), ``area`` its
    foreground pixels as a share of the frame, ``fill`` the share of its box in the foreground."""

    bbox: tuple[float, float, float, float]
    area: float
    fill: float


def var_threshold(sensitivity: float) -> float:
    """MOG2's ``varThreshold`` for a sensitivity in 0-1: 64 at 0, about 20 at 0.5, 6 at 1."""
    s = min(1.0, max(0.0, float(sensitivity)))
    return float(6.0 * (64.0 / 6.0) ** (1.0 - s))


def work_size(width: int, height: int, work_width: int) -> tuple[int, int]:
    """The working copy's size: ``work_width`` wide (never larger than the frame), same aspect."""
    scale = min(1.0, work_width / max(1, width))
    return max(16, int(round(width * scale))), max(16, int(round(height * scale)))


class MotionDetector:
    """Moving regions of successive sampled frames of one video (see the module)."""

    def __init__(self, *, width: int, height: int, sample_fps: float, sensitivity: float = 0.5,
                 min_area: float = 0.002, roi: tuple[float, float, float, float] | None = None,
                 work_width: int = 320, history_s: float = 30.0, dynamic_s: float = 4.0,
                 shake_reset_s: float = 2.0, settle_s: float = 1.0):
        self.size = work_size(width, height, work_width)
        w, h = self.size
        self.blur = w / max(1, width) > 0.5
        self.sample_fps = float(sample_fps)
        self.sensitivity = float(sensitivity)
        self.min_pixels = max(1.0, float(min_area) * w * h)
        self.history = max(10, int(round(history_s * self.sample_fps)))
        self.dynamic_rate = 1.0 / max(3.0, dynamic_s * self.sample_fps)
        self.shake_reset = max(2, int(round(shake_reset_s * self.sample_fps)))
        self.settle = max(1, int(np.ceil(settle_s * self.sample_fps)))
        self.roi = np.full((h, w), 255, np.uint8)
        if roi is not None:
            rx, ry, rw, rh = roi
            self.roi[:] = 0
            x0, y0 = int(rx * w), int(ry * h)
            self.roi[y0:max(y0 + 1, int((ry + rh) * h)), x0:max(x0 + 1, int((rx + rw) * w))] = 255
        self.roi_pixels = max(1, int(np.count_nonzero(self.roi)))
        side = max(3, (w // 64) | 1)
        self.open_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.shaken_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))  # texture left by a shake
        self.close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        self.merge_px = max(2, int(w * 0.02))
        self.small = (max(48, w // 2), max(48, h // 2))   # phase correlation runs on half the work size
        self.window = cv2.createHanningWindow(self.small, cv2.CV_32F)
        self.tile_window = cv2.createHanningWindow((self.small[0] // 3, self.small[1] // 3), cv2.CV_32F)
        self.dynamic = np.zeros((h, w), np.float32)
        self.resets = 0            # background re-learnt (light change, bump): for reports and tests
        self.shaken = 0            # frames moved back into place
        self.skipped = ""          # why the last frame gave no region: start, light, global, moved, settling
        self._new_model()

    def _new_model(self) -> None:
        self.model = cv2.createBackgroundSubtractorMOG2(
            history=self.history, varThreshold=var_threshold(self.sensitivity), detectShadows=False)
        self.cells: np.ndarray | None = None
        self.reference: np.ndarray | None = None   # the last steady frame, small and grey
        self.moved_for = 0
        self.doubted = 0           # samples in a row whose shift was in doubt
        self.settling = 0          # samples left before a re-learnt model is trusted

    def _relearn(self, work: np.ndarray, small: np.ndarray, cells: np.ndarray, why: str) -> list[Region]:
        self.model.apply(work, learningRate=1.0)
        self.reference, self.cells, self.moved_for = small, cells, 0
        self.settling = self.settle
        self.resets += 1
        self.skipped = why
        return []

    def detect(self, image: np.ndarray) -> list[Region]:
        """The moving regions of the next sampled frame (BGR); [] when it was skipped."""
        w, h = self.size
        if image.shape[1] != w or image.shape[0] != h:
            work = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        else:
            work = image
        if self.blur:   # a frame reduced by 2 or more has had its noise averaged out already
            work = cv2.GaussianBlur(work, (3, 3), 0)
        grey = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, self.small, interpolation=cv2.INTER_AREA).astype(np.float32)
        cells = cv2.resize(small, GRID, interpolation=cv2.INTER_AREA) + 1.0
        self.skipped = ""
        if self.reference is None:                                   # the first frame: learn it
            self.model.apply(work, learningRate=1.0)
            self.reference, self.cells = small, cells
            self.settling = self.settle
            self.skipped = "start"
            return []
        if self.cells is not None and _light_changed(self.cells, cells):
            return self._relearn(work, small, cells, "light")
        self.cells = cells

        valid = self.roi
        # the whole picture's shift first (one phase correlation); where it moved, a shake if
        # most tiles agree on a shift, or (tiles with too little detail to say) if moving the
        # frame back realigns most of the picture (an animal's own movement realigns its tiles only)
        (sx, sy), _ = cv2.phaseCorrelate(self.reference, small, self.window)
        moved = float(np.hypot(sx * w / self.small[0], sy * h / self.small[1]))
        doubt = False
        if moved >= SHAKE_MIN_PX:
            tiles = _global_shift(self.reference, small, self.tile_window)
            agreed = isinstance(tiles, tuple)
            if agreed:
                sx, sy = tiles
            moved = float(np.hypot(sx * w / self.small[0], sy * h / self.small[1]))
            if moved > SHAKE_MAX_SHARE * w or not (agreed or _realigns(self.reference, small, sx, sy)):
                moved, doubt = 0.0, True
        dx, dy = sx * w / self.small[0], sy * h / self.small[1]
        if moved >= SHAKE_MIN_PX:
            self.moved_for += 1
            if moved > SHAKE_MAX_SHARE * w or self.moved_for >= self.shake_reset:
                return self._relearn(work, small, cells, "moved")
            back = np.float32([[1, 0, -dx], [0, 1, -dy]])
            work = cv2.warpAffine(work, back, (w, h), borderMode=cv2.BORDER_REPLICATE)
            valid = self.roi.copy()
            bx, by = int(np.ceil(abs(dx))) + 1, int(np.ceil(abs(dy))) + 1
            valid[:by], valid[h - by:], valid[:, :bx], valid[:, w - bx:] = 0, 0, 0, 0
            self.shaken += 1
        else:
            self.moved_for = 0
            self.doubted = self.doubted + 1 if doubt else 0
            # a frame in doubt is not the next one's reference, unless doubt lasts (the scene changed)
            if (moved <= STEADY_PX and not doubt) or self.doubted >= self.shake_reset:
                self.reference, self.doubted = small, 0

        shaken = valid is not self.roi
        mask = self.model.apply(work, learningRate=0.0 if shaken else -1.0)   # shaken frames teach nothing
        mask = cv2.bitwise_and(mask, valid)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.shaken_kernel if shaken else self.open_kernel)
        count = cv2.countNonZero(mask)
        if count > GLOBAL_FOREGROUND * self.roi_pixels:
            return self._relearn(work, small, cells, "global")
        cv2.accumulateWeighted(mask, self.dynamic, self.dynamic_rate)   # 255 where moving
        if count:
            mask[self.dynamic > DYNAMIC_SHARE * 255] = 0
        if self.settling:
            self.settling -= 1
            self.skipped = "settling"
            return []
        if not count:
            return []
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)
        return self._regions(mask)

    def _regions(self, mask: np.ndarray) -> list[Region]:
        w, h = self.size
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = [[int(x), int(y), int(x + bw), int(y + bh), int(a)]
                 for x, y, bw, bh, a in stats[1:count] if a >= self.min_pixels]
        boxes = _merge_near(boxes, self.merge_px)
        out = []
        for x0, y0, x1, y1, a in boxes:
            out.append(Region((x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h), a / (w * h),
                              min(1.0, a / max(1, (x1 - x0) * (y1 - y0)))))
        return out

    def state(self) -> dict[str, Any]:
        """What a report may show (the model itself cannot be saved: see pipeline.py)."""
        return {"resets": self.resets, "shaken": self.shaken}


def _global_shift(reference: np.ndarray, small: np.ndarray, window: np.ndarray) -> tuple[float, float] | str:
    """How far the whole picture moved since ``reference`` (pixels of ``small``), by phase
    correlation in each tile of a 3 x 3 grid: a shift where most tiles agree on it (an animal
    moving through one or two tiles cannot fake one), "disagree" where they do not, "weak" where
    too few tiles have the detail to say."""
    h, w = small.shape
    th, tw = h // 3, w // 3
    found = []
    for row in range(3):
        for col in range(3):
            part = (slice(row * th, (row + 1) * th), slice(col * tw, (col + 1) * tw))
            (sx, sy), response = cv2.phaseCorrelate(reference[part], small[part], window)
            if response >= SHAKE_RESPONSE:
                found.append((sx, sy))
    if len(found) < SHAKE_TILES:
        return "weak"
    shifts = np.array(found)
    middle = np.median(shifts, axis=0)
    agree = np.hypot(*(shifts - middle).T) <= AGREE_PX
    if agree.sum() < SHAKE_TILES:
        return "disagree"
    return float(shifts[agree, 0].mean()), float(shifts[agree, 1].mean())


def _realigns(reference: np.ndarray, small: np.ndarray, sx: float, sy: float) -> bool:
    """Whether moving ``small`` back by (sx, sy) brings most of its 3 x 3 tiles closer to
    ``reference`` (a shaken camera's frame; not when an animal's movement was measured)."""
    h, w = small.shape
    back = cv2.warpAffine(small, np.float32([[1, 0, -sx], [0, 1, -sy]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    before, after = cv2.absdiff(reference, small), cv2.absdiff(reference, back)
    th, tw = h // 3, w // 3
    m = int(np.ceil(max(abs(sx), abs(sy)))) + 1
    if 2 * m >= min(th, tw):
        return False
    better = 0
    for row in range(3):
        for col in range(3):
            part = (slice(max(m, row * th), min(h - m, (row + 1) * th)), slice(max(m, col * tw), min(w - m, (col + 1) * tw)))
            if float(after[part].mean()) <= REALIGNED * float(before[part].mean()):
                better += 1
    return better >= SHAKE_TILES


def _light_changed(before: np.ndarray, after: np.ndarray) -> bool:
    ratio = after / before
    brighter = np.count_nonzero(ratio > 1 + LIGHT_STEP)
    darker = np.count_nonzero(ratio < 1 - LIGHT_STEP)
    return max(brighter, darker) >= LIGHT_CELLS * ratio.size


def _merge_near(boxes: list[list[int]], gap: int) -> list[list[int]]:
    """Merge boxes [x0, y0, x1, y1, pixels] closer than ``gap`` pixels, until none are."""
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes
