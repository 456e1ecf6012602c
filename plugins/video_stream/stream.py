"""Live streams (http MJPEG, HLS, rtsp, rtmp): sampled frames for as long as the stream runs,
reconnecting after drops and stalls, with the outages recorded as gaps.

``stream_frames`` keeps reading the stream in the capture's own thread (a live source must be
read as fast as it sends, or the picture falls behind) and hands over the newest frame due at
``sample_fps``, by arrival time: memory holds one waiting frame, never a queue; a frame not taken
before the next is due is replaced (``StreamStats.replaced``). A frame's ``index`` counts every
frame received since the stream was first opened (all connections), its ``t`` the seconds since.

Opening has ``open_timeout_s``; a stream that sends nothing for ``read_timeout_s`` is stalled and
given up (its blocked read is left to its thread, opencv#22677). After a drop or a stall it is
opened again after 0.5 s, 1 s, 2 s... up to ``backoff_max_s``; when frames come again the outage
is passed to ``on_gap({"start", "end", "start_s", "end_s", "duration_s", "reason", "attempts",
"error", "recovered"})`` (times ISO 8601 UTC; reason "dropped" or "stalled"). ``should_stop()`` is
asked at least every ``poll_s`` while waiting for frames, opening or backing off. The first
opening is not retried: an unreachable URL fails at once (VideoError), as a bad file does.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Generator, Iterator

import cv2

from plugins.video_stream.source import Frame, FrameSource, VideoError, VideoInfo, open_url

PERMANENT = ("not_a_video", "too_large", "path_not_allowed")   # never retried


@dataclass
class StreamStats:
    """What a run of ``stream_frames`` saw (pass one in to read it while it runs)."""
    received: int = 0       # frames received, all connections
    sampled: int = 0        # frames handed over
    replaced: int = 0       # sampled frames replaced by a newer one before they were taken
    connections: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)


class _Clock:
    """Frame numbers and sample times shared by the connections of one stream."""

    def __init__(self, sample_fps: float) -> None:
        self.t0 = time.monotonic()
        self.wall0 = datetime.now(timezone.utc)
        self.period = 1.0 / sample_fps
        self.next_due = self.t0
        self.index = -1
        self.last_arrival = self.t0

    def arrived(self, now: float) -> tuple[int, bool]:
        """A frame arrived at ``now``: its index and whether it is a sample."""
        self.index += 1
        self.last_arrival = now
        if now < self.next_due:
            return self.index, False
        behind = now - self.next_due >= self.period
        self.next_due = now + self.period if behind else self.next_due + self.period
        return self.index, True

    def wall(self, mono: float) -> datetime:
        return self.wall0 + timedelta(seconds=mono - self.t0)


class _Slot:
    """The one frame waiting to be taken, and why the connection ended (if it did)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.frame: Frame | None = None
        self.ended: str | None = None
        self.closed = False
        self.replaced = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            self.replaced += self.frame is not None
            self.frame = frame
            self._cond.notify()

    def end(self, reason: str) -> None:
        with self._cond:
            self.ended = reason
            self._cond.notify()

    def take(self, timeout: float) -> Frame | None:
        with self._cond:
            if self.frame is None and self.ended is None:
                self._cond.wait(timeout)
            frame, self.frame = self.frame, None
            return frame


def _reader(source: FrameSource, clock: _Clock, slot: _Slot) -> Callable[[cv2.VideoCapture, Callable[[], None]], None]:
    """The loop the capture's thread runs: grab every frame, decode the ones due."""
    first = source.first
    source.first = None

    def loop(cap: cv2.VideoCapture, tick: Callable[[], None]) -> None:
        if first is not None:
            now = time.monotonic()
            index, due = clock.arrived(now)
            if due:
                slot.put(Frame(index, now - clock.t0, first))
        while not slot.closed:
            ok = cap.grab()
            if slot.closed:
                return
            if not ok:
                slot.end("dropped")
                return
            tick()
            now = time.monotonic()
            index, due = clock.arrived(now)
            if due:
                ok, img = cap.retrieve()
                if ok and img is not None:
                    slot.put(Frame(index, now - clock.t0, img))
    return loop


def _wait(seconds: float, should_stop: Callable[[], bool], poll_s: float) -> bool:
    """Sleep ``seconds`` unless stopped; True when stopped."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if should_stop():
            return True
        time.sleep(min(poll_s, left))
    return should_stop()


def _connection(source: FrameSource, clock: _Clock, *, read_timeout_s: float, should_stop: Callable[[], bool],
                poll_s: float, stats: StreamStats) -> Generator[Frame, None, str]:
    """Frames of one connection until it drops ("dropped"), stalls ("stalled") or is stopped."""
    thread = source.thread
    assert thread is not None
    slot = _Slot()
    thread.submit(_reader(source, clock, slot))
    try:
        while True:
            if should_stop():
                return "stopped"
            frame = slot.take(poll_s)
            stats.received = clock.index + 1
            if frame is not None:
                stats.sampled += 1
                yield frame
                continue
            if slot.ended:
                return slot.ended
            if time.monotonic() - thread.last_progress > read_timeout_s:
                return "stalled"
    finally:
        slot.closed = True
        stats.replaced += slot.replaced
        stats.received = clock.index + 1
        thread.abandon()   # released in its thread once the running grab returns


def stream_frames(url: str, *, sample_fps: float, open_timeout_s: float, read_timeout_s: float,
                  should_stop: Callable[[], bool], on_gap: Callable[[dict[str, Any]], None], max_pixels: int,
                  backoff_s: float = 0.5, backoff_max_s: float = 30.0, give_up_after_s: float | None = None,
                  poll_s: float = 0.25, on_connect: Callable[[VideoInfo], None] | None = None,
                  stats: StreamStats | None = None) -> Iterator[Frame]:
    """Sampled frames of a live stream until ``should_stop()``; see the module for the rules.
    Raises VideoError when the first opening fails, when a reopened stream is refused for good
    (not a video, too large), or when an outage lasts ``give_up_after_s``."""
    if not (isinstance(sample_fps, (int, float)) and math.isfinite(sample_fps) and sample_fps > 0):
        raise ValueError("sample_fps must be a positive number")
    stats = stats if stats is not None else StreamStats()
    clock = _Clock(sample_fps)
    outage: dict[str, Any] | None = None
    delay = backoff_s

    def close_outage(now: float, recovered: bool) -> None:
        nonlocal outage
        assert outage is not None
        start = outage.pop("_start")
        gap = {"start": clock.wall(start).isoformat(), "end": clock.wall(now).isoformat(),
               "start_s": round(start - clock.t0, 3), "end_s": round(now - clock.t0, 3),
               "duration_s": round(now - start, 3), **outage, "recovered": recovered}
        outage = None
        stats.gaps.append(gap)
        on_gap(gap)

    while not should_stop():
        try:
            source = open_url(url, max_pixels=max_pixels, open_timeout_s=open_timeout_s,
                              read_timeout_s=read_timeout_s, should_stop=should_stop)
        except VideoError as exc:
            if exc.code == "stopped":
                break
            if outage is None or exc.code in PERMANENT:
                if outage is not None:
                    outage["error"] = exc.message
                    close_outage(time.monotonic(), recovered=False)
                raise
            outage["attempts"] += 1
            outage["error"] = exc.message
            if give_up_after_s is not None and time.monotonic() - outage["_start"] > give_up_after_s:
                close_outage(time.monotonic(), recovered=False)
                raise VideoError("unreachable", f"the stream has been down for more than {give_up_after_s:g} s: "
                                                f"{exc.message}") from None
            if _wait(delay, should_stop, poll_s):
                break
            delay = min(delay * 2, backoff_max_s)
            continue
        stats.connections += 1
        if on_connect is not None:
            on_connect(source.info)
        frames = _connection(source, clock, read_timeout_s=read_timeout_s, should_stop=should_stop,
                             poll_s=poll_s, stats=stats)
        try:
            while True:
                frame = next(frames)
                if outage is not None:
                    close_outage(clock.t0 + frame.t, recovered=True)
                    delay = backoff_s
                yield frame
        except StopIteration as end:
            reason = end.value
        finally:
            frames.close()
            source.close()
        if reason == "stopped":
            break
        if outage is None:
            outage = {"_start": clock.last_arrival, "reason": reason, "attempts": 0, "error": None}
        else:
            outage["attempts"] += 1   # it opened, but no frame came
        if _wait(delay, should_stop, poll_s):
            break
        delay = min(delay * 2, backoff_max_s)
    if outage is not None:
        close_outage(time.monotonic(), recovered=False)
