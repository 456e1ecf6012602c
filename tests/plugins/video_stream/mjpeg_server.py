"""A loopback HTTP server for the video source tests: an endless MJPEG stream of numbered
synthetic frames (``multipart/x-mixed-replace``, what IP cameras serve), which can cut the
connection once mid-stream and stall once (socket open, nothing sent); plain files with Range
support (videos read over http); a path that accepts and never answers; 404 for the rest.

    with MjpegServer(fps=20, cut_at=20, stall_at=60) as server:
        cv2.VideoCapture(server.url("/stream.mjpg"))

Each frame shows its number in a row of black and white blocks (``frame_number`` reads it back),
so a test can tell which frames arrived, and a disc moving across a grey scene; ``write_numbered``
writes such frames into a video file; ``within`` runs a call with a hard time limit.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, TypeVar

import cv2
import numpy as np

T = TypeVar("T")
BLOCK = 8    # pixels per bit of the frame number
BITS = 16    # numbers up to 65535


def frame_image(n: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """Frame ``n`` (BGR uint8, ``size`` = (width, height), width >= 128): its number in the top
    row of blocks (white = 1, least significant bit first) and a disc moving to the right."""
    w, h = size
    img = np.full((h, w, 3), 90, np.uint8)
    cv2.circle(img, (int(10 + (n * 3) % max(1, w - 20)), h * 2 // 3), max(4, h // 10), (40, 180, 230), -1)
    for b in range(BITS):
        img[0:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 255 if (n >> b) & 1 else 0
    return img


def frame_number(img: np.ndarray) -> int:
    """The number ``frame_image`` drew into ``img`` (survives JPEG and MPEG-4 compression)."""
    c = BLOCK // 2
    return sum(1 << b for b in range(BITS) if img[c - 2:c + 2, b * BLOCK + c - 2:b * BLOCK + c + 2].mean() > 127)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        owner = self.server.owner
        path = self.path.split("?")[0]
        if path == "/stream.mjpg":
            owner._stream(self)
        elif path == "/hang":
            owner.hangs += 1
            owner._stopped.wait(owner.hang_s)
        elif path.startswith("/files/") and path[7:] in owner.files:
            owner._file(self, *owner.files[path[7:]])
        else:
            self.send_error(404, "no such thing")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "MjpegServer"


class MjpegServer:
    """Serves ``/stream.mjpg`` at ``fps`` frames per second of ``size``; when the frame numbered
    ``cut_at`` is due, that connection is closed abruptly (once); when ``stall_at`` is due, that
    connection sends nothing more for ``stall_s`` seconds and is then closed (once). Frame numbers
    run on across connections. ``files``: name -> (bytes, content type) under ``/files/``."""

    def __init__(self, *, fps: float = 20.0, size: tuple[int, int] = (160, 120), cut_at: int | None = None,
                 stall_at: int | None = None, stall_s: float = 30.0, hang_s: float = 30.0,
                 files: dict[str, tuple[bytes, str]] | None = None) -> None:
        self.fps, self.size = fps, size
        self.cut_at, self.stall_at, self.stall_s, self.hang_s = cut_at, stall_at, stall_s, hang_s
        self.files = dict(files or {})
        self.frames_sent = 0          # frames written, all connections together
        self.connections = 0          # /stream.mjpg requests
        self.hangs = 0
        self.events: list[tuple[str, int, float]] = []   # ("cut" | "stall", frame, time.monotonic())
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._http = _Server(("127.0.0.1", 0), _Handler)
        self._http.owner = self
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="mjpeg-server")

    def url(self, path: str = "/stream.mjpg") -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}{path}"

    def __enter__(self) -> "MjpegServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        self._http.shutdown()
        self._http.server_close()

    def _next_frame(self) -> tuple[int, str | None]:
        """The next frame's number, and what happens to this connection instead ("cut", "stall")."""
        with self._lock:
            n = self.frames_sent
            for what in ("cut", "stall"):
                if getattr(self, f"{what}_at") == n and not any(e[0] == what for e in self.events):
                    self.events.append((what, n, time.monotonic()))
                    return n, what
            self.frames_sent += 1
            return n, None

    def _stream(self, req: _Handler) -> None:
        with self._lock:
            self.connections += 1
        req.send_response(200)
        req.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        req.send_header("Cache-Control", "no-cache")
        req.end_headers()
        period = 1.0 / self.fps
        due = time.monotonic()
        try:
            while not self._stopped.is_set():
                n, what = self._next_frame()
                if what == "stall":
                    self._stopped.wait(self.stall_s)
                if what is not None:
                    req.connection.shutdown(socket.SHUT_RDWR)
                    return
                ok, jpeg = cv2.imencode(".jpg", frame_image(n, self.size), [cv2.IMWRITE_JPEG_QUALITY, 90])
                assert ok
                req.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg.tobytes() + b"\r\n")
                req.wfile.flush()
                due += period
                self._stopped.wait(max(0.0, due - time.monotonic()))
        except OSError:
            return  # the client went away

    def _file(self, req: _Handler, body: bytes, content_type: str) -> None:
        start, end = 0, len(body) - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", req.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(end, int(match.group(2))) if match.group(2) else end
            if start >= len(body):
                req.send_response(416)
                req.send_header("Content-Range", f"bytes */{len(body)}")
                req.end_headers()
                return
            req.send_response(206)
            req.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        else:
            req.send_response(200)
        req.send_header("Content-Type", content_type)
        req.send_header("Accept-Ranges", "bytes")
        req.send_header("Content-Length", str(end - start + 1))
        req.end_headers()
        try:
            req.wfile.write(body[start:end + 1])
        except OSError:
            pass


def within(seconds: float, fn: Callable[[], T]) -> T:
    """``fn()`` run in a thread; the test fails (instead of hanging) when it takes longer than
    ``seconds``; its exception is raised here."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="within")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"still running after {seconds:g} s (it would hang)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def write_numbered(path: Path, *, frames: int, fps: float = 10.0, codec: str = "mp4v",
                   size: tuple[int, int] = (160, 120)) -> Path:
    """A small video whose frame ``i`` shows the number ``i`` (``frame_number`` reads it)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {codec} to {path}"
    for i in range(frames):
        writer.write(frame_image(i, size))
    writer.release()
    return path
