"""Servers the tests and benchmarks start on loopback: a free port, and waiting for /healthz."""

from __future__ import annotations

import socket
import subprocess
import time

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
