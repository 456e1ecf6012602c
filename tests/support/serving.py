"""Servers the tests and benchmarks start on loopback: a free port, and waiting for /healthz."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerDidNotStart(RuntimeError):
    """The server process exited, or /healthz did not answer 200 in time."""


def wait_until_healthy(base: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Poll ``base``/healthz until it answers 200; raise ServerDidNotStart otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise ServerDidNotStart(f"the server stopped at start-up (exit code {process.returncode})")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerDidNotStart(f"the server did not answer /healthz within {timeout_s:g} s")
        time.sleep(0.1)


@contextmanager
def api_server(folder: Path, root: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """uvicorn serving ``tests.api.serve_app`` on loopback; yields the base URL.

    The server reads its ``OBSERVATORY_*`` settings from this process's environment plus ``env``;
    its log goes to ``folder``/server.log and its tail is printed when it stops.
    """
    port = free_port()
    log = (folder / "server.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.api.serve_app:create", "--host", HOST,
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root), **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://{HOST}:{port}"
    try:
        try:
            wait_until_healthy(base, process)
        except ServerDidNotStart as exc:
            log.seek(0)
            raise ServerDidNotStart(f"{exc}:\n{log.read()[-4000:]}") from None
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.seek(0)
        tail = log.read()[-4000:]
        log.close()
        if tail.strip():
            print(f"server log (tail):\n{tail}")


def server_pid(port: int) -> int:
    """The uvicorn child of this process that serves ``port``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int(re.search(r"^PPid:\s+(\d+)", (entry / "status").read_text(), re.M).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            continue
        if ppid == os.getpid() and b"uvicorn" in b" ".join(cmdline) and str(port).encode() in cmdline:
            return int(entry.name)
    raise AssertionError(f"no uvicorn child serving port {port}")


def proc_memory(pid: int, key: str) -> int:
    """``key`` of /proc/PID/status (VmRSS: now, VmHWM: the peak so far), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) * 1024  # type: ignore[union-attr]
