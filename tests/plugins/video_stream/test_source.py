"""video_stream's sources: files probed and refused early with a clear code, sampling by frame
index (the right frames at the right times, the same after a resume), paths kept inside the
allowed folders, http(s) files and URLs with time limits. Real videos written with OpenCV; each
frame shows its number, so a test sees which frame it got. No database."""

from __future__ import annotations

import math
import os
import struct
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from plugins.video_stream.source import VideoError, check_path, open_url, open_video, safe_url
from tests.plugins.video_stream import synth
from tests.plugins.video_stream.mjpeg_server import MjpegServer, frame_image, frame_number, within, write_numbered

BIG = 10 ** 7
CODECS = [("mp4v", "mp4"), ("MJPG", "avi")]


def refused(code: str, fn, *args, **kwargs) -> VideoError:
    with pytest.raises(VideoError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code == code, (caught.value.code, caught.value.message)
    assert caught.value.message
    return caught.value


@pytest.fixture(params=CODECS, ids=[c for c, _ in CODECS])
def numbered(request, tmp_path) -> Path:
    codec, ext = request.param
    return write_numbered(tmp_path / f"n.{ext}", frames=60, fps=10, codec=codec)


# ---------------------------------------------------------------- reading and sampling

def test_info_and_sampled_frames_are_the_right_frames_at_the_right_times(numbered):
    with open_video(numbered, max_pixels=BIG) as src:
        assert (src.info.fps, src.info.width, src.info.height, src.info.frame_count) == (10.0, 160, 120, 60)
        assert src.info.duration_s == 6.0 and src.info.start_time is None
        got = list(src.frames(sample_fps=3))
    expected = [math.ceil(k * 10 / 3 - 1e-9) for k in range(18)]   # 0, 4, 7, 10, 14, ... 57
    assert [f.index for f in got] == expected
    assert [frame_number(f.image) for f in got] == expected          # the frame really shown
    assert [f.t for f in got] == pytest.approx([i / 10 for i in expected])
    assert all(f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8 for f in got)


def test_every_frame_when_sampling_at_or_above_the_frame_rate(numbered):
    with open_video(numbered, max_pixels=BIG) as src:
        got = [frame_number(f.image) for f in src.frames(sample_fps=25)]
    assert got == list(range(60))


def test_a_resumed_read_picks_the_same_frames_as_an_uninterrupted_one(numbered):
    with open_video(numbered, max_pixels=BIG) as src:
        whole = [f.index for f in src.frames(sample_fps=3)]
    with open_video(numbered, max_pixels=BIG) as src:
        resumed = [(f.index, frame_number(f.image)) for f in src.frames(sample_fps=3, start_frame=15)]
    assert [i for i, _ in resumed] == [i for i in whole if i >= 15]
    assert all(i == n for i, n in resumed)


@pytest.mark.parametrize("codec,ext", CODECS)
def test_long_gaps_are_seeked_and_land_on_the_frame_asked_for(tmp_path, codec, ext):
    path = write_numbered(tmp_path / f"long.{ext}", frames=400, fps=20, codec=codec)
    with open_video(path, max_pixels=BIG) as src:
        got = [(f.index, frame_number(f.image)) for f in src.frames(sample_fps=0.25, start_frame=90)]
        assert src.seeks >= 3                      # 80-frame gaps: seeks, not grabs
    assert [i for i, _ in got] == [160, 240, 320]
    assert all(i == n for i, n in got)


def test_the_mp4_creation_time_is_the_start_time(tmp_path):
    path = write_numbered(tmp_path / "dated.mp4", frames=5)
    synth.set_mp4_creation_time(path, datetime(2024, 5, 1, 6, 30, 15, tzinfo=timezone.utc))
    with open_video(path, max_pixels=BIG) as src:
        assert src.info.start_time == datetime(2024, 5, 1, 6, 30, 15, tzinfo=timezone.utc)
        assert src.info.as_dict()["start_time"] == "2024-05-01T06:30:15+00:00"


def test_synthetic_camera_trap_video_reads_whole(tmp_path):
    truth = synth.write_video(tmp_path / "trap.mp4", seconds=2, fps=10, passes=[(0.2, 1.5, "cat", "ltr")])
    with open_video(truth["path"], max_pixels=BIG) as src:
        assert src.info.frame_count == truth["frames"] == 20
        assert len(list(src.frames(sample_fps=10))) == 20


# ---------------------------------------------------------------- bad input, refused early

def test_not_a_video(tmp_path):
    img = frame_image(3)
    cases = {"photo.jpg": cv2.imencode(".jpg", img)[1].tobytes(), "photo.png": cv2.imencode(".png", img)[1].tobytes(),
             "noise.mp4": np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
             "notes.mp4": b"camera 3, battery low\n" * 500, "empty.mp4": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        error = refused("not_a_video", open_video, tmp_path / name, max_pixels=BIG)
        assert {"photo.jpg": "JPEG", "photo.png": "PNG", "notes.mp4": "text", "empty.mp4": "empty"}.get(
            name, "not a video") in error.message
    refused("not_a_video", open_video, tmp_path, max_pixels=BIG)           # a folder
    refused("not_found", open_video, tmp_path / "missing.mp4", max_pixels=BIG)


@pytest.mark.parametrize("codec,ext", CODECS)
def test_a_cut_short_file_is_refused_before_any_frame(tmp_path, codec, ext):
    path = write_numbered(tmp_path / f"cut.{ext}", frames=60, codec=codec)
    synth.truncate(path, keep=0.5)
    error = refused("truncated", open_video, path, max_pixels=BIG)
    assert "cut short" in error.message


def test_frames_that_stop_early_are_read_then_reported_with_the_frame_reached(tmp_path):
    # an AVI whose headers promise 60 frames but whose data stops near the middle (the RIFF size
    # mended, so only reading finds out): the readable frames come, then `truncated`
    path = write_numbered(tmp_path / "short.avi", frames=60, codec="MJPG")
    synth.truncate(path, keep=0.5)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 4, len(raw) - 8)
    path.write_bytes(bytes(raw))
    seen = []
    with open_video(path, max_pixels=BIG) as src:
        assert src.info.frame_count == 60
        with pytest.raises(VideoError) as caught:
            for f in src.frames(sample_fps=5):
                seen.append(frame_number(f.image))
    assert caught.value.code == "truncated"
    assert 20 <= caught.value.frame <= 40 and f"frame {caught.value.frame}" in caught.value.message
    assert seen == list(range(0, seen[-1] + 1, 2)) and seen[-1] >= 18


@pytest.mark.parametrize("codec,ext", CODECS)
def test_zero_frames(tmp_path, codec, ext):
    path = tmp_path / f"zero.{ext}"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, (160, 120)).release()
    refused("no_frames", open_video, path, max_pixels=BIG)


def test_an_unreadable_codec(tmp_path):
    path = write_numbered(tmp_path / "odd.avi", frames=10, codec="MJPG")
    path.write_bytes(path.read_bytes().replace(b"MJPG", b"ZZZZ"))   # a FourCC no decoder knows
    error = refused("unreadable_codec", open_video, path, max_pixels=BIG)
    assert "codec" in error.message


def test_a_resolution_above_max_pixels(tmp_path):
    path = write_numbered(tmp_path / "big.mp4", frames=3, size=(320, 240))
    error = refused("too_large", open_video, path, max_pixels=320 * 240 - 1)
    assert "320 x 240" in error.message
    with open_video(path, max_pixels=320 * 240) as src:
        assert src.info.width == 320


# ---------------------------------------------------------------- paths

def test_check_path_keeps_reads_inside_the_allowed_folders(tmp_path):
    allowed, outside = tmp_path / "videos", tmp_path / "private"
    (allowed / "cam1").mkdir(parents=True)
    outside.mkdir()
    (allowed / "cam1" / "a.mp4").write_bytes(b"x")
    (outside / "secret.mp4").write_bytes(b"x")
    os.symlink(outside / "secret.mp4", allowed / "cam1" / "link.mp4")
    (tmp_path / "videos-evil").mkdir()
    (tmp_path / "videos-evil" / "b.mp4").write_bytes(b"x")
    folders = [str(allowed)]

    assert check_path(str(allowed / "cam1" / "a.mp4"), folders) == (allowed / "cam1" / "a.mp4").resolve()
    assert check_path(str(allowed / "cam1" / ".." / "cam1" / "a.mp4"), folders).name == "a.mp4"
    for bad in (outside / "secret.mp4", allowed / ".." / "private" / "secret.mp4", allowed / "cam1" / "link.mp4",
                tmp_path / "videos-evil" / "b.mp4", "cam1/a.mp4", "", "/etc/passwd", f"{allowed}/a\x00.mp4"):
        refused("path_not_allowed", check_path, str(bad), folders)
    refused("path_not_allowed", check_path, str(allowed / "cam1" / "a.mp4"), [])
    refused("not_found", check_path, str(allowed / "cam1" / "nope.mp4"), folders)
    refused("not_a_video", check_path, str(allowed / "cam1"), folders)


# ---------------------------------------------------------------- URLs

@pytest.fixture
def server(tmp_path):
    video = write_numbered(tmp_path / "n.mp4", frames=120, fps=10)
    files = {"n.mp4": (video.read_bytes(), "video/mp4"),
             "photo.jpg": (cv2.imencode(".jpg", frame_image(1))[1].tobytes(), "image/jpeg"),
             "page.html": (b"<html><body>Camera login</body></html>", "text/html")}
    with MjpegServer(fps=20, stall_at=12, stall_s=20, hang_s=20, files=files) as srv:
        yield srv


def test_an_http_file_reads_like_a_local_one(server):
    def read():
        with open_url(server.url("/files/n.mp4"), max_pixels=BIG, open_timeout_s=5, read_timeout_s=5) as src:
            info = src.info
            whole = [(f.index, frame_number(f.image)) for f in src.frames(sample_fps=2)]
        with open_url(server.url("/files/n.mp4"), max_pixels=BIG, open_timeout_s=5, read_timeout_s=5) as src:
            tail = [f.index for f in src.frames(sample_fps=0.25, start_frame=50)]
        return info, whole, tail
    info, whole, tail = within(30, read)
    assert (info.frame_count, info.fps, info.container) == (120, 10.0, "mp4")
    assert [i for i, _ in whole] == list(range(0, 120, 5)) and all(i == n for i, n in whole)
    assert tail == [80]


def test_urls_that_are_not_videos_or_not_there(server):
    def url(path: str) -> str:
        return server.url(path)
    limits = {"max_pixels": BIG, "open_timeout_s": 5, "read_timeout_s": 5}
    assert "JPEG" in within(10, lambda: refused("not_a_video", open_url, url("/files/photo.jpg"), **limits)).message
    assert "web page" in within(10, lambda: refused("not_a_video", open_url, url("/files/page.html"), **limits)).message
    within(10, lambda: refused("not_found", open_url, url("/nothing.mp4"), **limits))
    within(10, lambda: refused("unreachable", open_url, "http://127.0.0.1:9/cam.mp4", **limits))
    within(10, lambda: refused("unreachable", open_url, "rtsp://127.0.0.1:9/live", **limits))
    for bad in ("file:///etc/passwd", "ftp://example.org/a.mp4", "/srv/videos/a.mp4", "http://", "http://a b/c"):
        refused("path_not_allowed", open_url, bad, **limits)
    within(10, lambda: refused("too_large", open_url, url("/stream.mjpg"), max_pixels=100, open_timeout_s=5,
                               read_timeout_s=5))


def test_a_url_that_never_answers_gives_up_at_the_open_limit(server):
    started = time.monotonic()
    error = within(10, lambda: refused("unreachable", open_url, server.url("/hang"), max_pixels=BIG,
                                       open_timeout_s=1.5, read_timeout_s=5))
    assert 1.3 < time.monotonic() - started < 4.0
    assert server.hangs == 1 and "1.5 s" in error.message


def test_a_stream_that_stalls_gives_up_at_the_read_limit(server):
    # the server stops sending at its 12th frame but keeps the connection open
    def read() -> tuple[list[int], VideoError, float]:
        seen = []
        with open_url(server.url("/stream.mjpg"), max_pixels=BIG, open_timeout_s=5, read_timeout_s=1.0) as src:
            assert src.info.frame_count is None and src.info.duration_s is None
            try:
                for f in src.frames(sample_fps=100):
                    seen.append(frame_number(f.image))
                    last = time.monotonic()
            except VideoError as exc:
                return seen, exc, time.monotonic() - last
        raise AssertionError("the stream ended instead of stalling")
    seen, error, waited = within(15, read)
    assert error.code == "stalled" and error.frame is not None
    assert seen and seen[-1] == 11 and 0.9 < waited < 3.0


def test_messages_never_show_credentials():
    assert safe_url("rtsp://admin:hunter2@10.0.0.5:554/live?token=abc") == "rtsp://10.0.0.5:554/live"
    error = within(10, lambda: refused("unreachable", open_url, "http://admin:hunter2@127.0.0.1:9/a.mp4",
                                       max_pixels=BIG, open_timeout_s=2, read_timeout_s=2))
    assert "hunter2" not in error.message and "admin" not in error.message
