"""video_stream's live streams against an MJPEG stream served on loopback: frames keep coming
after the stream is cut once and stalled once, both outages recorded as gaps, nothing ever
hangs (every run has a hard time limit), a stop request is obeyed within about a second even
while stalled or reconnecting, and memory holds the newest frame, not a queue. No database."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from plugins.video_stream.source import VideoError
from plugins.video_stream.stream import StreamStats, stream_frames
from tests.plugins.video_stream.mjpeg_server import MjpegServer, frame_number, within

LIMITS = {"open_timeout_s": 3.0, "read_timeout_s": 1.0, "max_pixels": 10 ** 6, "backoff_s": 0.2}


class Stopper:
    """should_stop() that turns true at a given moment; remembers when it first said so."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.said: float | None = None

    def stop_in(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def __call__(self) -> bool:
        if self.at is not None and time.monotonic() >= self.at:
            self.said = self.said or time.monotonic()
            return True
        return False


def test_cut_once_and_stalled_once_frames_keep_coming_and_two_gaps_are_recorded():
    gaps: list[dict] = []
    seen: list[tuple[int, float, int]] = []
    stop = Stopper()
    stats = StreamStats()

    def run() -> None:
        for f in stream_frames(server.url(), sample_fps=5, should_stop=stop, on_gap=gaps.append, stats=stats,
                               **LIMITS):
            seen.append((f.index, f.t, frame_number(f.image)))
            if len(gaps) == 2 and stop.at is None:
                stop.stop_in(1.0)   # a second of frames after the second outage, then stop

    with MjpegServer(fps=20, cut_at=20, stall_at=60, stall_s=20) as server:
        within(30, run)
        cut, stall = (dict(what=e[0], frame=e[1]) for e in server.events)
    assert (cut["what"], stall["what"]) == ("cut", "stall")

    assert [g["reason"] for g in gaps] == ["dropped", "stalled"] and stats.gaps == gaps
    assert all(g["recovered"] and g["end_s"] > g["start_s"] for g in gaps)
    assert gaps[1]["start_s"] > gaps[0]["end_s"]
    assert 0.8 <= gaps[1]["duration_s"] < 4.0          # the stall: found after read_timeout_s, then reopened
    assert datetime.fromisoformat(gaps[0]["end"]) > datetime.fromisoformat(gaps[0]["start"])
    numbers = [n for _, _, n in seen]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert any(n < cut["frame"] for n in numbers)                        # before the cut,
    assert any(cut["frame"] < n < stall["frame"] for n in numbers)      # between,
    assert sum(n > stall["frame"] for n in numbers) >= 3               # and after the stall
    indices, times = [i for i, _, _ in seen], [t for _, t, _ in seen]
    assert indices == sorted(indices) and times == sorted(times)
    after = [t for t in times if t > gaps[1]["end_s"]]
    assert all(b - a > 0.1 for a, b in zip(after, after[1:]))          # sampled at ~5 fps, not 20
    assert stats.connections == 3 and stats.sampled == len(seen) and stats.received > stats.sampled


def test_should_stop_is_obeyed_within_a_second_while_frames_flow():
    stop = Stopper()
    with MjpegServer(fps=20) as server:
        def run() -> int:
            n = 0
            for _ in stream_frames(server.url(), sample_fps=2, should_stop=stop, on_gap=lambda g: None, **LIMITS):
                n += 1
                if stop.at is None:
                    stop.stop_in(1.0)
            return n
        within(15, run)
    assert time.monotonic() - stop.at < 1.2


def test_should_stop_is_obeyed_within_a_second_while_stalled():
    gaps: list[dict] = []
    stop = Stopper()
    with MjpegServer(fps=20, stall_at=5, stall_s=30) as server:
        def run() -> None:
            limits = {**LIMITS, "read_timeout_s": 20.0}      # a long stall: we are stuck in it
            for _ in stream_frames(server.url(), sample_fps=20, should_stop=stop, on_gap=gaps.append, **limits):
                if stop.at is None:
                    stop.stop_in(1.5)                       # lands inside the stall
        within(15, run)
    assert time.monotonic() - stop.at < 1.2
    assert gaps == []                                       # stopped before the stall was declared


def test_should_stop_is_obeyed_while_reconnecting_and_the_open_gap_is_recorded():
    gaps: list[dict] = []
    stop = Stopper()
    server = MjpegServer(fps=20)
    server.__enter__()

    def run() -> int:
        n = 0
        for _ in stream_frames(server.url(), sample_fps=5, should_stop=stop, on_gap=gaps.append, **LIMITS):
            n += 1
            if n == 3:
                server.stop()            # the camera goes away for good: reconnecting fails
                stop.stop_in(2.5)
        return n
    assert within(15, run) >= 3
    assert time.monotonic() - stop.at < 1.2
    assert len(gaps) == 1 and gaps[0]["recovered"] is False and gaps[0]["attempts"] >= 1
    assert gaps[0]["error"] and "127.0.0.1" in gaps[0]["error"]


def test_an_outage_longer_than_give_up_after_fails_with_unreachable():
    gaps: list[dict] = []
    server = MjpegServer(fps=20)
    server.__enter__()

    def run() -> None:
        for i, _ in enumerate(stream_frames(server.url(), sample_fps=5, should_stop=lambda: False,
                                            on_gap=gaps.append, give_up_after_s=1.5, **LIMITS)):
            if i == 2:
                server.stop()
    with pytest.raises(VideoError) as caught:
        within(15, run)
    assert caught.value.code == "unreachable" and "1.5 s" in caught.value.message
    assert len(gaps) == 1 and gaps[0]["recovered"] is False and gaps[0]["duration_s"] >= 1.5


def test_a_stream_that_cannot_be_opened_fails_at_once():
    with pytest.raises(VideoError) as caught:
        within(10, lambda: list(stream_frames("http://127.0.0.1:9/cam.mjpg", sample_fps=2,
                                              should_stop=lambda: False, on_gap=lambda g: None, **LIMITS)))
    assert caught.value.code == "unreachable"


def test_a_slow_consumer_gets_the_newest_frame_not_a_backlog():
    # 20 frames/s arrive, 10 are due per second, the consumer takes 0.4 s each: most samples are
    # replaced while it works, and what it gets is fresh (memory holds one frame, never a queue)
    stop = Stopper()
    stats = StreamStats()
    lags: list[int] = []
    with MjpegServer(fps=20) as server:
        def run() -> None:
            for f in stream_frames(server.url(), sample_fps=10, should_stop=stop, on_gap=lambda g: None,
                                   stats=stats, **LIMITS):
                lags.append(server.frames_sent - frame_number(f.image))
                if stop.at is None:
                    stop.stop_in(3.0)
                time.sleep(0.4)
        within(20, run)
    assert stats.replaced >= 5 and len(lags) <= 10
    assert max(lags[1:]) <= 12          # at most ~0.5 s behind the camera (20 fps), however slow we are


def test_threads_are_not_left_behind():
    before = threading.active_count()
    stop = Stopper()
    with MjpegServer(fps=20, cut_at=10) as server:
        def run() -> None:
            for _ in stream_frames(server.url(), sample_fps=5, should_stop=stop, on_gap=lambda g: None, **LIMITS):
                if stop.at is None:
                    stop.stop_in(1.5)
        within(15, run)
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threading.active_count() <= before
