"""Debian's Chromium under Playwright, and the app served on loopback, for any test that opens
pages: the session's one ``browser`` (Playwright's sync API allows one per thread, so every test
shares it: tests/conftest.py registers the fixture) and :class:`LiveServer`."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from tests.support.serving import HOST, free_port

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    # every host name but loopback fails to resolve: a page that needs the internet shows it here
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright (one per test session)."""
    path = chromium_path()
    if path is None:
        if os.environ.get("OBSERVATORY_TEST_BROWSER") == "1":
            pytest.fail("OBSERVATORY_TEST_BROWSER=1 but no Chromium is installed (apt-get install chromium)")
        pytest.skip("no Chromium on this machine (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


class LiveServer:
    """The app served on loopback; ``url(path)`` is an address on it."""

    def __init__(self, app: FastAPI):
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(app, host=HOST, port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def url(self, path: str = "/") -> str:
        return self.base + path
