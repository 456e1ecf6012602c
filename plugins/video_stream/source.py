"""Opening videos: files the server may read, http(s) files and live URLs, with time limits.

``open_video`` probes a file before any work is done and refuses bad input with a clear
:class:`VideoError` code: ``not_found``, ``not_a_video`` (an image, a text file, random bytes,
sound only), ``truncated`` (the container is cut short: an interrupted copy or upload),
``no_frames``, ``unreadable_codec``, ``too_large`` (more pixels per frame than allowed).
``open_url`` does the same for http(s) and rtsp/rtmp URLs, with ``unreachable`` when nothing
answers within the open time limit and ``stalled`` when frames stop for the read time limit.

``FrameSource.frames(sample_fps, start_frame)`` samples by frame index (the frames
``ceil(k * fps / sample_fps)``, so a resumed read picks the same frames as an uninterrupted one),
skipping with ``grab()`` and seeking with ``CAP_PROP_POS_FRAMES`` only over long gaps (measured:
OpenCV's seek decodes from an earlier key frame, so it only pays over ~32 frames of mp4v, ~20 of
MJPG) and only while the position it lands on is the one asked for. When a file's frames stop
early, the frames read are yielded and then ``truncated`` is raised with ``.frame`` = the frames
read (the job fails with that reason, see docs/video_stream.md).

Reads of URLs run in one daemon thread per capture (:class:`CaptureThread`): OpenCV's read can
block forever on a dead connection (opencv#22677) even with FFmpeg's timeouts, so the caller
waits at most the read limit without progress and then gives the capture up; the thread
releases it if the read ever returns.
"""

from __future__ import annotations

import math
import os
import queue
import struct
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from core.errors import EngineError
from core.metadata_errors import NotStrippable
from core.metadata_isobmff import boxes

CODES = ("not_a_video", "truncated", "no_frames", "unreadable_codec", "unreachable", "path_not_allowed",
         "too_large", "stalled", "not_found", "stopped")
URL_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps")
SEEK_MIN_GAP = {"MJPG": 20}     # frames to skip before seeking beats grab() (measured); others:
SEEK_MIN_GAP_DEFAULT = 32
FFMPEG_GRACE_S = 2.0            # FFmpeg's own read limit is ours plus this: our watchdog fires first
MAX_MOOV_BYTES = 256 * 1024 * 1024


class VideoError(EngineError):
    """A video that cannot be read, with a stable ``code`` (see ``CODES``) and a message for people.
    ``frame``: for ``truncated`` and ``stalled``, the frames read before it happened."""

    code = "not_a_video"
    http_status = 422

    def __init__(self, code: str, message: str, *, frame: int | None = None) -> None:
        super().__init__(message, code)
        self.frame = frame


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    frame_count: int | None          # None for a stream
    duration_s: float | None
    start_time: datetime | None      # the container's creation time (MP4/MOV mvhd), UTC
    codec: str | None = None         # FourCC as OpenCV reports it ("FMP4", "MJPG", "h264"...)
    container: str | None = None     # what the first bytes say ("mp4", "avi", "matroska"...)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (the job's ``video`` column)."""
        return {"fps": self.fps, "width": self.width, "height": self.height, "frames": self.frame_count,
                "duration_s": self.duration_s, "codec": self.codec, "container": self.container,
                "start_time": self.start_time.isoformat() if self.start_time else None}


@dataclass(frozen=True)
class Frame:
    index: int          # frame number in the video (0-based, of ALL frames, not samples)
    t: float            # seconds from the start of the video (a stream: since it was opened)
    image: np.ndarray   # BGR uint8


# ---------------------------------------------------------------- paths

def check_path(path: str, allowed_folders: list[str]) -> Path:
    """``path`` with symlinks and ``..`` resolved, if it lies inside one of ``allowed_folders``
    (themselves resolved); VideoError ``path_not_allowed`` otherwise (relative paths too), and
    ``not_found`` for a missing file inside them. Check again right before opening."""
    if not isinstance(path, str) or not path or "\x00" in path or not os.path.isabs(path):
        raise VideoError("path_not_allowed", "give the absolute path of a video file inside one of the "
                                             "folders the server may read")
    real = Path(os.path.realpath(path))
    for folder in allowed_folders:
        root = Path(os.path.realpath(folder))
        if real == root or root in real.parents:
            break
    else:
        raise VideoError("path_not_allowed", "the server may not read that path: it is outside the folders "
                                             "configured for videos (services.video_stream.config.allowed_folders)")
    if not real.exists():
        raise VideoError("not_found", f"no file at {path}")
    if not real.is_file():
        raise VideoError("not_a_video", f"{path} is not a file")
    return real


# ---------------------------------------------------------------- what the bytes say

ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
IMAGES = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
          (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"))


def sniff(head: bytes) -> str:
    """The container the first bytes (>= 400 of them, or the whole file) announce: "mp4" (MP4,
    MOV, 3GP), "avi", "matroska" (MKV, WebM), "mpegts", "mpegps", "flv", "ogg", "asf" (WMV);
    VideoError ``not_a_video`` naming what it is instead when it is recognisably not a video."""
    if len(head) >= 8 and head[4:8] in ISO_BOXES:
        if head[4:8] == b"ftyp" and head[8:12] in IMAGE_BRANDS:
            raise VideoError("not_a_video", "this is a HEIF/AVIF image, not a video")
        return "mp4"
    if head[:4] == b"RIFF":
        form = head[8:12]
        if form in (b"AVI ", b"AVIX"):
            return "avi"
        what = {b"WEBP": "a WebP image", b"WAVE": "a WAV sound file"}.get(form, "a RIFF file that is not AVI")
        raise VideoError("not_a_video", f"this is {what}, not a video")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:1] == b"\x47" and head[188:189] == b"\x47":
        return "mpegts"
    if head[4:5] == b"\x47" and head[196:197] == b"\x47":
        return "mpegts"   # M2TS: 192-byte packets
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpegps"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":
        return "asf"
    for magic, what in IMAGES:
        if head.startswith(magic):
            raise VideoError("not_a_video", f"this is {what}, not a video")
    if not head:
        raise VideoError("not_a_video", "the file is empty")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        raise VideoError("not_a_video", "this is a text file, not a video")
    if head.startswith(b"BM"):
        raise VideoError("not_a_video", "this is a BMP image, not a video")
    raise VideoError("not_a_video", "this is not a video in a format the engine reads (MP4, MOV, AVI, MKV, "
                                    "WebM, MPEG-TS, MPEG-PS, FLV, Ogg, WMV)")


# ---------------------------------------------------------------- container checks

MP4_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)


def _top_level(f: Any, size: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, start, payload start, end) of an ISOBMFF file's top-level boxes, read by seeking;
    ``truncated`` when a box runs past the end of the file."""
    at = 0
    while at < size:
        f.seek(at)
        head = f.read(16)
        if len(head) < 8:
            return   # a few stray bytes at the end (the missing-moov check catches a real cut)
        box_size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if box_size == 1:
            if len(head) < 16:
                raise VideoError("truncated", f"the file is cut short at byte {at}")
            box_size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif box_size == 0:
            box_size = size - at
        if box_size < header:
            raise VideoError("not_a_video", f"the MP4 structure is damaged at byte {at}")
        if at + box_size > size:
            raise VideoError("truncated", f"the file is cut short: it ends at byte {size} but its "
                                          f"{kind.decode('latin-1')!r} box runs to byte {at + box_size} "
                                          "(an interrupted copy, upload or recording)")
        yield kind, at, at + header, at + box_size
        at += box_size


def _mvhd_time(data: bytes, box: tuple[bytes, int, int, int]) -> datetime | None:
    """The movie header's creation time (seconds since 1904, UTC by the standard); None when 0."""
    p = box[2]
    version = data[p]
    secs = struct.unpack(">Q", data[p + 4:p + 12])[0] if version == 1 else struct.unpack(">I", data[p + 4:p + 8])[0]
    if secs == 0:
        return None
    when = MP4_EPOCH + timedelta(seconds=secs)
    return when if when.year >= 1970 else None


def _video_samples(data: bytes, trak: tuple[bytes, int, int, int]) -> int | None:
    """The number of samples of a video track: -1 for a track of another kind, None when not stated."""
    def child(box: tuple[bytes, int, int, int] | None, kind: bytes) -> tuple[bytes, int, int, int] | None:
        return None if box is None else next((b for b in boxes(data, box[2], box[3]) if b[0] == kind), None)

    mdia = child(trak, b"mdia")
    hdlr = child(mdia, b"hdlr")
    if hdlr is None or data[hdlr[2] + 8:hdlr[2] + 12] != b"vide":
        return -1
    stbl = child(child(mdia, b"minf"), b"stbl")
    stsz = child(stbl, b"stsz") or child(stbl, b"stz2")
    return None if stsz is None else struct.unpack(">I", data[stsz[2] + 8:stsz[2] + 12])[0]


def _check_isobmff(path: Path, size: int) -> datetime | None:
    """Refuse a cut-short, trackless or empty MP4/MOV early; its creation time when stated."""
    top: dict[bytes, tuple[int, int, int]] = {}
    with path.open("rb") as f:
        for kind, start, payload, end in _top_level(f, size):
            top.setdefault(kind, (start, payload, end))
            if b"moov" in top and b"mdat" in top:
                break   # what follows (more fragments, padding) is left to the decoder
        if b"moov" not in top:
            if b"mdat" in top:
                raise VideoError("truncated", "the file has no movie header (moov box): the recording, copy "
                                              "or upload was interrupted before it was finished")
            raise VideoError("not_a_video", "an MP4/MOV file without a movie header (moov box)")
        start, payload, end = top[b"moov"]
        if end - start > MAX_MOOV_BYTES:
            raise VideoError("too_large", "the movie header is larger than 256 MB")
        f.seek(start)
        data = f.read(end - start)
    try:
        children = list(boxes(data, payload - start, len(data)))
        mvhd = next((b for b in children if b[0] == b"mvhd"), None)
        created = _mvhd_time(data, mvhd) if mvhd else None
        video = [c for c in (_video_samples(data, b) for b in children if b[0] == b"trak") if c != -1]
    except (NotStrippable, struct.error, IndexError):
        return None   # a structure we cannot follow: OpenCV decides
    if not any(b[0] == b"trak" for b in children):
        raise VideoError("no_frames", "the movie has no tracks: no frames")
    if not video:
        raise VideoError("not_a_video", "the file has no video track (sound only?)")
    fragmented = b"moof" in top or any(b[0] == b"mvex" for b in children)
    if not fragmented and None not in video and sum(c for c in video if c is not None) == 0:
        raise VideoError("no_frames", "the video track has no frames")
    return created


def _check_riff(path: Path, size: int) -> None:
    """Refuse a cut-short AVI early: each RIFF chunk (AVI, then AVIX past 1 GB) must fit the file."""
    at = 0
    with path.open("rb") as f:
        while at + 12 <= size:
            f.seek(at)
            kind, length = struct.unpack("<4sI", f.read(8))
            if kind != b"RIFF":
                return
            end = at + 8 + length
            if end > size:
                raise VideoError("truncated", f"the file is cut short: it ends at byte {size} but its RIFF "
                                              f"chunk runs to byte {end} (an interrupted copy, upload or recording)")
            at = end + (length & 1)


# ---------------------------------------------------------------- the capture's thread

class CaptureThread:
    """One daemon thread that owns a capture and runs calls on it (``fn(cap, tick)``; ``tick()``
    says "progress": a frame arrived). The caller waits while progress comes at least every
    ``limit_s``; past that it gives the capture up (``abandon``): the thread releases it when the
    blocked call returns, and nothing else waits for it."""

    def __init__(self, name: str = "video-capture") -> None:
        self.cap: cv2.VideoCapture | None = None
        self.last_progress = time.monotonic()
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], threading.Event, dict[str, Any]] | None] = \
            queue.SimpleQueue()
        self._ended = False
        self.abandoned = False
        threading.Thread(target=self._loop, daemon=True, name=name).start()

    def tick(self) -> None:
        self.last_progress = time.monotonic()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, done, box = job
            try:
                box["value"] = fn(self.cap, self.tick)
            except BaseException as exc:  # handed to the caller
                box["error"] = exc
            done.set()
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    def submit(self, fn: Callable[..., Any]) -> tuple[threading.Event, dict[str, Any]]:
        """Queue ``fn(cap, tick)``; (done event, result box with "value" or "error")."""
        if self._ended:
            raise VideoError("stalled", "the capture was given up")
        done, box = threading.Event(), {}
        self.tick()
        self._jobs.put((fn, done, box))
        return done, box

    def call(self, fn: Callable[..., Any], *, limit_s: float, code: str = "stalled", message: str = "",
             should_stop: Callable[[], bool] | None = None) -> Any:
        """Run ``fn(cap, tick)`` in the thread and wait for it while it makes progress."""
        done, box = self.submit(fn)
        while not done.wait(0.1):
            if should_stop is not None and should_stop():
                self.abandon()
                raise VideoError("stopped", "stopped on request")
            if time.monotonic() - self.last_progress > limit_s:
                self.abandon()
                raise VideoError(code, message or f"no frame came for {limit_s:g} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def abandon(self) -> None:
        """Stop using the capture; it is released in the thread once the running call returns."""
        self.abandoned = True
        self.close()

    def close(self) -> None:
        if not self._ended:
            self._ended = True
            self._jobs.put(None)


# ---------------------------------------------------------------- frames

def _sample_frame(k: int, step: float) -> int:
    """The frame index of the k-th sample (the first frame at or after k sample periods)."""
    return math.ceil(k * step - 1e-9)


class FrameSource:
    """An open video: ``info``, ``frames(sample_fps=, start_frame=)``, ``close()``; a context manager.
    A file is read in the calling thread; a URL through a :class:`CaptureThread` with the read
    time limit."""

    def __init__(self, cap: cv2.VideoCapture, info: VideoInfo, *, first: np.ndarray | None = None,
                 reopen: Callable[[], cv2.VideoCapture] | None = None, thread: CaptureThread | None = None,
                 read_timeout_s: float | None = None) -> None:
        self.info = info
        self.first = first              # frame 0, read by the probe
        self._cap = cap
        self._reopen = reopen
        self.thread = thread
        self._read_timeout_s = read_timeout_s or 0.0
        self._pos = 1 if first is not None else 0    # the frame the capture returns next
        self._seekable = info.frame_count is not None   # a stream is read forward only
        self._seek_gap = SEEK_MIN_GAP.get(info.codec or "", SEEK_MIN_GAP_DEFAULT)
        self.seeks = 0                  # how many seeks frames() made (tests, benchmark)

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.thread is not None:
            self.thread.close()
        elif self._cap is not None:
            self._cap.release()
        self._cap = None
        self.first = None

    def _call(self, fn: Callable[..., Any]) -> Any:
        if self.thread is None:
            return fn(self._cap, lambda: None)
        try:
            return self.thread.call(fn, limit_s=self._read_timeout_s,
                                    message=f"the video sent no frame for {self._read_timeout_s:g} s "
                                            f"(after frame {self._pos})")
        except VideoError as exc:
            exc.frame = self._pos if exc.frame is None else exc.frame
            raise

    def _read_at(self, cap: cv2.VideoCapture, tick: Callable[[], None], target: int) -> np.ndarray | None:
        """Frame ``target`` (None at the end of the video); ``self._pos`` follows the capture."""
        if target == 0 and self.first is not None and self._pos == 1:
            img, self.first = self.first, None
            return img
        self.first = None
        if target < self._pos or (self._seekable and target - self._pos >= self._seek_gap):
            cap = self._seek(cap, target)
        while self._pos < target:
            if not cap.grab():
                return None
            self._pos += 1
            tick()
        ok = cap.grab()
        ok, img = cap.retrieve() if ok else (False, None)
        if not ok or img is None:
            return None
        self._pos += 1
        tick()
        return img

    def _seek(self, cap: cv2.VideoCapture, target: int) -> cv2.VideoCapture:
        """Seek to ``target``; where the capture lands elsewhere, seeking is off for this source
        and the file is reopened and read forward (a URL goes on from where it landed)."""
        self.seeks += 1
        cap.set(cv2.CAP_PROP_POS_FRAMES, target)
        landed = int(round(cap.get(cv2.CAP_PROP_POS_FRAMES)))
        if landed == target:
            self._pos = target
            return cap
        self._seekable = False
        if self._reopen is not None:
            cap.release()
            cap = self._cap = self._reopen()
            self._pos = 0
        elif landed > target:
            raise VideoError("unreadable_codec", f"cannot seek to frame {target} in this video")
        else:
            self._pos = max(landed, 0)
        return cap

    def frames(self, *, sample_fps: float, start_frame: int = 0) -> Iterator[Frame]:
        """The frames ``ceil(k * fps / sample_fps)`` from ``start_frame`` on (every frame when
        sample_fps >= fps). Ends at the end of the video; raises VideoError ``truncated`` after
        the last readable frame when frames stop more than a second before the count the
        container states, ``stalled`` when a URL sends nothing for the read limit."""
        if not (isinstance(sample_fps, (int, float)) and math.isfinite(sample_fps) and sample_fps > 0):
            raise ValueError("sample_fps must be a positive number")
        if start_frame < 0:
            raise ValueError("start_frame must be >= 0")
        fps, total = self.info.fps, self.info.frame_count
        step = max(1.0, fps / sample_fps)
        k = max(0, math.floor(start_frame / step) - 1)
        while _sample_frame(k, step) < start_frame:
            k += 1
        while self._cap is not None:
            target = _sample_frame(k, step)
            if total is not None and target >= total:
                return
            img = self._call(lambda cap, tick: self._read_at(cap, tick, target))
            if img is None:
                reached = self._pos
                if total is not None and reached < total - max(2, round(fps)):
                    raise VideoError("truncated", f"the video stops at frame {reached} ({reached / fps:.1f} s) "
                                                  f"of the {total} its container states: the file is cut short "
                                                  "or damaged", frame=reached)
                return
            yield Frame(target, target / fps, img)
            k += 1


# ---------------------------------------------------------------- opening

def _info(cap: cv2.VideoCapture, *, stream: bool, start_time: datetime | None, container: str | None) -> VideoInfo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
    codec = fourcc.to_bytes(4, "little").decode("latin-1").strip("\x00 ") if fourcc > 0 else None
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        if not stream:
            raise VideoError("unreadable_codec", "the video states no usable frame rate")
        fps = 25.0   # a live source often states none (or its clock rate); FFmpeg's own guess
    frames = int(count) if math.isfinite(count) and 0 <= count < 2 ** 40 else None
    if stream:
        frames = None
    return VideoInfo(fps=float(fps), width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), frame_count=frames,
                     duration_s=frames / fps if frames is not None else None, start_time=start_time,
                     codec=codec or None, container=container)


def _check_size(info: VideoInfo, max_pixels: int) -> None:
    if info.width <= 0 or info.height <= 0:
        raise VideoError("unreadable_codec", "the video states no frame size")
    if info.width * info.height > max_pixels:
        raise VideoError("too_large", f"the frames are {info.width} x {info.height} pixels, more than the "
                                      f"{max_pixels} allowed (services.video_stream.config.max_pixels)")


def open_video(path: Path | str, *, max_pixels: int) -> FrameSource:
    """Open a video file, refusing bad input before any frame is processed (see the module)."""
    path = Path(path)
    if not path.exists():
        raise VideoError("not_found", f"no file at {path}")
    if not path.is_file():
        raise VideoError("not_a_video", f"{path} is not a file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(400)
    container = sniff(head)
    start_time = None
    if container == "mp4":
        start_time = _check_isobmff(path, size)
    elif container == "avi":
        _check_riff(path, size)

    def reopen() -> cv2.VideoCapture:
        return cv2.VideoCapture(str(path.resolve()), cv2.CAP_FFMPEG)   # absolute: never read as a protocol

    cap = reopen()
    if not cap.isOpened():
        raise VideoError("unreadable_codec", f"the {container} file's video cannot be decoded here (an unknown "
                                             "or unsupported codec, or damaged data)")
    try:
        info = _info(cap, stream=False, start_time=start_time, container=container)
        _check_size(info, max_pixels)
        if info.frame_count == 0:
            raise VideoError("no_frames", "the video has no frames")
        ok, first = cap.read()
        if not ok or first is None:
            if info.frame_count is None:
                raise VideoError("no_frames", "the video has no frames")
            raise VideoError("unreadable_codec", "the first frame cannot be decoded (an unsupported codec or "
                                                 "damaged data)")
    except BaseException:
        cap.release()
        raise
    return FrameSource(cap, info, first=first, reopen=reopen)


def safe_url(url: str) -> str:
    """``url`` without user name, password, query or fragment (for messages and logs)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(an unreadable URL)"


def check_url(url: str) -> str:
    """The URL's scheme, if the engine may read it; VideoError ``path_not_allowed`` otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme.lower() not in URL_SCHEMES or not parts.hostname
            or any(ord(c) < 33 for c in url)):
        raise VideoError("path_not_allowed", "give an http, https, rtsp or rtmp URL (file and other URLs are "
                                             "not read)")
    return parts.scheme.lower()


def _http_probe(url: str, timeout_s: float) -> str | None:
    """Ask an http(s) URL for its first bytes: "stream" (MJPEG, HLS), a container, or a clear
    VideoError (not_found, unreachable, not_a_video)."""
    request = urllib.request.Request(url, headers={"Range": "bytes=0-1023", "User-Agent": "observatory-video"})
    shown = safe_url(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 (schemes checked)
            kind = (answer.headers.get_content_type() or "").lower()
            if kind.startswith("multipart/") or "mpegurl" in kind:
                return "stream"
            if kind == "text/html":
                raise VideoError("not_a_video", f"{shown} answered with a web page, not a video")
            head = answer.read(1024)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise VideoError("not_found", f"{shown} answered {exc.code}: nothing there") from None
        raise VideoError("unreachable", f"{shown} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise VideoError("unreachable", f"{shown} did not answer within {timeout_s:g} s") from None
        raise VideoError("unreachable", f"{shown} cannot be reached: {reason}") from None
    if head.startswith(b"#EXTM3U"):
        return "stream"
    return sniff(head)


def open_url(url: str, *, max_pixels: int, open_timeout_s: float, read_timeout_s: float,
             should_stop: Callable[[], bool] | None = None) -> FrameSource:
    """Open an http(s) file or an http/rtsp/rtmp stream within ``open_timeout_s`` (VideoError
    ``unreachable``, or ``not_found``/``not_a_video`` when an http server says so) and read its
    first frame within ``read_timeout_s`` (``stalled``). ``info.frame_count`` is None for a
    stream. ``should_stop``: checked while waiting (VideoError ``stopped``)."""
    scheme = check_url(url)
    shown = safe_url(url)
    thread = CaptureThread()
    deadline = time.monotonic() + open_timeout_s
    ffmpeg_read_ms = int((read_timeout_s + FFMPEG_GRACE_S) * 1000)

    def connect(_cap: Any, _tick: Callable[[], None]) -> str | None:
        container = _http_probe(url, open_timeout_s) if scheme in ("http", "https") else "stream"
        left_ms = max(1000, int((deadline - time.monotonic()) * 1000))
        thread.cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, left_ms,
                                                            cv2.CAP_PROP_READ_TIMEOUT_MSEC, ffmpeg_read_ms])
        return container

    try:
        container = thread.call(connect, limit_s=open_timeout_s + 1.0, code="unreachable", should_stop=should_stop,
                                message=f"{shown} did not answer within {open_timeout_s:g} s")
        cap = thread.cap
        if cap is None or not cap.isOpened():
            raise VideoError("unreachable", f"no video could be opened at {shown} within {open_timeout_s:g} s")
        info = _info(cap, stream=container == "stream" or cap.get(cv2.CAP_PROP_FRAME_COUNT) <= 0,
                     start_time=None, container=None if container == "stream" else container)
        _check_size(info, max_pixels)
        ok, first = thread.call(lambda c, tick: c.read(), limit_s=read_timeout_s, should_stop=should_stop,
                                message=f"{shown} sent no frame within {read_timeout_s:g} s")
        if not ok or first is None:
            if info.frame_count is None:
                raise VideoError("unreachable", f"{shown} opened but sent no frame")
            raise VideoError("unreadable_codec", f"the first frame of {shown} cannot be decoded")
    except BaseException:
        thread.abandon()
        raise
    return FrameSource(cap, info, first=first, thread=thread, read_timeout_s=read_timeout_s)
