"""Test videos made from real photos (scikit-image's, shipped with the package: nothing is
downloaded): animals and people moving across a real background texture, with empty
stretches, sensor noise, a sudden light change, swaying leaves and camera shake, written with
OpenCV. ``write_video`` returns the truth (each planted pass's frames and boxes) so a test can
check what the pipeline found.

    truth = write_video(tmp_path / "a.mp4", seconds=12, passes=[(2, 3, "cat", "ltr")])
    truth["passes"][0]["start_frame"], truth["passes"][0]["end_frame"]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
from skimage import data as skdata

# photo name -> (category, how to get the BGR crop). The cat is Chelsea (a real domestic cat);
# the person is the astronaut Eileen Collins (a face and upper body); the mug is not an animal.
PHOTOS: dict[str, str] = {"cat": "animal", "person": "human", "coffee": "object"}

Pass = tuple[Any, ...]  # (start_s, duration_s, photo name, direction[, lane])
DIRECTIONS = ("ltr", "rtl", "down", "up")


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """The named real photo, cropped to the subject, as BGR uint8."""
    if name == "cat":
        rgb = skdata.chelsea()[20:300, 60:400]      # the cat's head and chest
    elif name == "person":
        rgb = skdata.astronaut()[0:512, 100:420]    # the astronaut, face to waist
    elif name == "coffee":
        rgb = skdata.coffee()[30:370, 60:480]       # the cup on its saucer
    else:
        raise ValueError(f"unknown photo {name!r}; choose from {sorted(PHOTOS)}")
    return np.ascontiguousarray(rgb[:, :, ::-1])


@lru_cache(maxsize=8)
def background(size: tuple[int, int]) -> np.ndarray:
    """A real texture as the scene: grass above, gravel (the ground) below, in natural colours."""
    w, h = size
    grass = cv2.resize(skdata.grass(), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    gravel = cv2.resize(skdata.gravel(), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    top = np.dstack([grass * 0.35, grass * 0.75, grass * 0.45])          # B, G, R: green
    ground = np.dstack([gravel * 0.55, gravel * 0.65, gravel * 0.75])    # brownish grey
    horizon = int(h * 0.55)
    out = top.copy()
    out[horizon:] = ground[horizon:]
    return np.clip(out, 0, 255).astype(np.uint8)


def _leaves(w: int, h: int) -> np.ndarray:
    """A patch of dark, textured foliage (brick's texture, tinted) for the swaying branch."""
    tex = cv2.resize(skdata.brick(), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    return np.clip(np.dstack([tex * 0.15, tex * 0.55, tex * 0.25]), 0, 255).astype(np.uint8)


def _sprite_box(direction: str, progress: float, size: tuple[int, int],
                sprite: tuple[int, int], lane: float | None = None) -> tuple[int, int]:
    """The sprite's top-left corner at ``progress`` (0..1) of a pass: it enters from one side
    and leaves by the other, its centre at ``lane`` (relative) on the other axis (by default a
    little below the middle for left-right passes, the middle for up-down ones)."""
    w, h = size
    sw, sh = sprite
    if direction in ("ltr", "rtl"):
        x = -sw + progress * (w + sw)
        if direction == "rtl":
            x = w - progress * (w + sw)
        return int(round(x)), int(round(h * (0.6 if lane is None else lane) - sh / 2))
    if direction in ("down", "up"):
        y = -sh + progress * (h + sh)
        if direction == "up":
            y = h - progress * (h + sh)
        return int(round(w * (0.5 if lane is None else lane) - sw / 2)), int(round(y))
    raise ValueError(f"unknown direction {direction!r}; choose from {DIRECTIONS}")


def _paste(frame: np.ndarray, img: np.ndarray, x: int, y: int) -> list[float] | None:
    """Paste ``img`` at (x, y), clipped to the frame; the visible box (relative x, y, w, h) or None."""
    fh, fw = frame.shape[:2]
    ih, iw = img.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + iw, fw), min(y + ih, fh)
    if x1 <= x0 or y1 <= y0:
        return None
    frame[y0:y1, x0:x1] = img[y0 - y:y1 - y, x0 - x:x1 - x]
    return [x0 / fw, y0 / fh, (x1 - x0) / fw, (y1 - y0) / fh]


def write_video(path: Path | str, *, seconds: float = 10.0, fps: float = 10.0,
                size: tuple[int, int] = (320, 240), passes: Sequence[Pass] = (),
                noise: float = 2.0, light_change_at: float | None = None, light_factor: float = 0.6,
                swaying: tuple[float, float, float, float] | None = None, sway_px: float = 6.0,
                sway_period_s: float = 1.2, shake_at: Sequence[tuple[float, float]] = (),
                shake_px: int = 4, sprite_height: float = 0.4, seed: int = 0,
                codec: str = "mp4v", start_time: datetime | None = None) -> dict[str, Any]:
    """Write a video of ``seconds`` at ``fps`` and ``size`` (width, height) and return its truth.

    ``passes``: (start_s, duration_s, photo name in PHOTOS, direction in DIRECTIONS[, lane]):
    the photo, scaled to ``sprite_height`` of the frame, crosses the frame in ``duration_s``
    along ``lane`` (its centre's relative position across the direction of travel).
    ``noise``: sensor noise (standard deviation, grey levels) on every frame.
    ``light_change_at``: from this second on, the whole scene is ``light_factor`` as bright.
    ``swaying``: a region (relative x, y, w, h) of foliage swinging ``sway_px`` pixels to and
    fro with period ``sway_period_s`` (no net movement). ``shake_at``: (start_s, duration_s)
    stretches where the whole camera shakes by up to ``shake_px`` pixels.
    ``codec``: a FourCC ("mp4v" for .mp4, "MJPG" for .avi). ``start_time``: written into the MP4's
    mvhd creation time (what a camera records).

    The truth: {"fps", "frames", "size", "seconds", "light_change_frame", "passes": [{"photo",
    "category", "direction", "start_frame", "end_frame", "start_s", "end_s", "boxes": {frame:
    [x, y, w, h] relative}}]} where start/end are the first and last frame showing the subject.
    """
    path = Path(path)
    w, h = size
    n = int(round(seconds * fps))
    rng = np.random.default_rng(seed)
    base = background((w, h)).astype(np.float32)
    sprites = {}
    for name in {p[2] for p in passes}:
        img = photo(name)
        sh = max(8, int(round(h * sprite_height)))
        sw = max(8, int(round(img.shape[1] * sh / img.shape[0])))
        sprites[name] = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    leaves = None
    if swaying is not None:
        rx, ry, rw, rh = swaying
        lbox = (int(rx * w), int(ry * h), max(4, int(rw * w)), max(4, int(rh * h)))
        leaves = _leaves(lbox[2], lbox[3])
    truth_passes = [{"photo": name, "category": PHOTOS[name], "direction": d, "start_frame": None,
                     "end_frame": None, "boxes": {}} for _, _, name, d, *_ in passes]
    light_frame = int(round(light_change_at * fps)) if light_change_at is not None else None
    shake_frames = {i for s, d in shake_at for i in range(int(round(s * fps)), int(round((s + d) * fps)))}

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {codec!r} to {path}")
    try:
        for i in range(n):
            t = i / fps
            frame = base.copy()
            if leaves is not None:
                dx = int(round(sway_px * np.sin(2 * np.pi * t / sway_period_s)))
                _paste(frame, leaves.astype(np.float32), lbox[0] + dx, lbox[1])
            for k, (start, dur, name, d, *lane) in enumerate(passes):
                if not start <= t <= start + dur:
                    continue
                sprite = sprites[name]
                x, y = _sprite_box(d, (t - start) / dur, (w, h), (sprite.shape[1], sprite.shape[0]),
                                   lane[0] if lane else None)
                box = _paste(frame, sprite.astype(np.float32), x, y)
                if box is not None:
                    tp = truth_passes[k]
                    tp["boxes"][i] = box
                    tp["start_frame"] = i if tp["start_frame"] is None else tp["start_frame"]
                    tp["end_frame"] = i
            if light_frame is not None and i >= light_frame:
                frame *= light_factor
            if i in shake_frames:
                sx, sy = rng.integers(-shake_px, shake_px + 1, size=2)
                frame = cv2.warpAffine(frame, np.float32([[1, 0, sx], [0, 1, sy]]), (w, h),
                                       borderMode=cv2.BORDER_REFLECT)
            if noise:
                frame += rng.normal(0, noise, frame.shape).astype(np.float32)
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    for tp in truth_passes:
        if tp["start_frame"] is not None:
            tp["start_s"], tp["end_s"] = tp["start_frame"] / fps, tp["end_frame"] / fps
    if start_time is not None:
        set_mp4_creation_time(path, start_time)
    return {"path": str(path), "fps": fps, "frames": n, "size": (w, h), "seconds": n / fps,
            "light_change_frame": light_frame, "passes": truth_passes}


_MP4_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)


def set_mp4_creation_time(path: Path | str, when: datetime) -> None:
    """Write ``when`` into an MP4's movie header (mvhd creation and modification time), as a
    camera does; raises ValueError when the file has no mvhd box."""
    raw = bytearray(Path(path).read_bytes())
    at = raw.find(b"mvhd")
    if at < 0:
        raise ValueError(f"{path} has no mvhd box (not an MP4?)")
    secs = int((when.astimezone(timezone.utc) - _MP4_EPOCH).total_seconds())
    version = raw[at + 4]
    if version == 1:
        struct.pack_into(">QQ", raw, at + 8, secs, secs)
    else:
        struct.pack_into(">II", raw, at + 8, secs, secs)
    Path(path).write_bytes(bytes(raw))


def read_frames(path: Path | str) -> list[np.ndarray]:
    """Every frame of a (small) video, BGR, for checks."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


def truncate(path: Path | str, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its bytes (a truncated upload)."""
    raw = Path(path).read_bytes()
    Path(path).write_bytes(raw[: int(len(raw) * keep)])


@dataclass(frozen=True)
class SynthFrame:
    """A sampled frame as the pipeline takes it (source.Frame's fields)."""

    index: int
    t: float
    image: np.ndarray


@dataclass(frozen=True)
class SynthInfo:
    """A video's description as the pipeline takes it (source.VideoInfo's fields)."""

    fps: float
    width: int
    height: int
    frame_count: int | None
    duration_s: float | None = None
    start_time: datetime | None = None
    codec: str | None = None


def is_sampled(index: int, fps: float, sample_fps: float) -> bool:
    """Whether frame ``index`` is one of the samples: the first frame of each 1/sample_fps
    period of the video (an absolute grid, the same whatever frame reading starts at)."""
    if sample_fps >= fps:
        return True
    return index == 0 or int(index * sample_fps / fps) > int((index - 1) * sample_fps / fps)


def info_of(path: Path | str) -> SynthInfo:
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return SynthInfo(fps, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), n,
                         n / fps if fps else None)
    finally:
        cap.release()


def sampled_frames(path: Path | str, sample_fps: float, start_frame: int = 0) -> Iterator[SynthFrame]:
    """The sampled frames of a video from ``start_frame`` on (a minimal stand-in for
    source.FrameSource.frames, for tests that need no more)."""
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        if start_frame:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start_frame)
        index = start_frame
        while True:
            if is_sampled(index, fps, sample_fps):
                ok, img = cap.read()
                if not ok:
                    break
                yield SynthFrame(index, index / fps, img)
            elif not cap.grab():
                break
            index += 1
    finally:
        cap.release()
