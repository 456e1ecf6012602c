"""/docs works with no internet: Swagger UI's files come from this server, and a real browser renders it.

The browser test runs headless Chromium (Debian's ``chromium``) with every host name but the
loopback address made unresolvable, so a page that still loaded anything from a CDN would stay
blank. It runs where Chromium is installed, and always when ``OBSERVATORY_TEST_BROWSER=1``
(CI sets it and installs Chromium): then a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.engine import Engine
from tests.support.serving import ServerDidNotStart, api_server

ROOT = Path(__file__).resolve().parents[2]
BROWSER_REQUIRED = os.environ.get("OBSERVATORY_TEST_BROWSER") == "1"


def test_the_docs_page_loads_its_scripts_and_styles_from_this_server(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links, "the page links Swagger UI's script and styles"
    assert all(link.startswith("/docs/assets/") for link in links), links
    assert "://" not in page.text, "nothing is loaded from another host"
    for link in links:
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert len(asset.content) > 500, link
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert "SwaggerUIBundle" in script.text


def test_no_other_docs_page_depends_on_a_cdn(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def rendered_dom(browser: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts have run, as headless Chromium sees it with no internet."""
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", f"--user-data-dir={profile}",
        # every host but loopback is unresolvable: a CDN script would fail to load
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000", "--dump-dom", url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_browser_without_internet_renders_every_operation(make_engine: Callable[..., Engine], tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        if BROWSER_REQUIRED:
            pytest.fail("OBSERVATORY_TEST_BROWSER=1 but no Chromium is installed (apt-get install chromium)")
        pytest.skip("no Chromium here; set OBSERVATORY_TEST_BROWSER=1 to require it (CI does)")
    make_engine()  # writes this test's OBSERVATORY_* settings to the environment the server inherits
    try:
        with api_server(tmp_path, ROOT, {"OBSERVATORY_SERVE_DISPATCHER": "inline"}) as base:
            dom = rendered_dom(browser, f"{base}/docs", tmp_path / "chromium-profile")
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))
    assert 'class="swagger-ui' in dom, "Swagger UI started"
    paths = set(re.findall(r'data-path="([^"]+)"', dom))
    expected = {
        "/api/v1/projects", "/api/v1/projects/{slug}", "/api/v1/projects/{slug}/observations",
        "/api/v1/observations/{obs_id}", "/api/v1/observations/{obs_id}/moderation",
        "/api/v1/projects/{slug}/audit", "/healthz", "/readyz",
    }
    assert expected <= paths, f"operations missing from the rendered page: {sorted(expected - paths)}"
    assert "Observatory engine" in dom
