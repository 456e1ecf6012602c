"""The pages' test set-up: the engine served on loopback by uvicorn in a thread, and Debian's
Chromium driven by Playwright for Python (nothing downloaded by a test tool).

Chromium resolves no host but loopback (``--host-resolver-rules``), and every page records the
requests it made: :func:`page` fails a test whose page asked anything of another host. Tests
write a screenshot of each page they open (:func:`shot`) under ``test-output/screenshots`` (or
``$OBSERVATORY_TEST_OUTPUT/screenshots``), and check accessibility with axe-core
(:func:`axe_check`: no serious or critical violation).

Without Chromium the browser tests skip on a developer's machine; with ``OBSERVATORY_TEST_BROWSER=1``
(CI) they fail instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from core import accounts
from core.engine import Engine
from tests.support.browser import CHROMIUM_ARGS, LiveServer, chromium_path  # noqa: F401  (used by tests)

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("OBSERVATORY_TEST_OUTPUT", ROOT / "test-output")) / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    """The ``app`` fixture's engine served by uvicorn on 127.0.0.1 (a thread of this process)."""
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in ("127.0.0.1", "localhost", "::1")


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new browser page (its own cookies) that records every request; the test fails if one
    went to a host other than loopback. ``page.outside`` lists such requests.
    The language is English unless the test is marked with ``@pytest.mark.parametrize`` of a
    ``locale`` fixture."""
    locale = getattr(request, "param", None) or "en-GB"
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    outside: list[str] = []
    opened.on("request", lambda r: None if _loopback(r.url) else outside.append(r.url))
    opened.outside = outside
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    assert not outside, f"the page asked for something outside the engine: {outside[:5]}"


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``<output>/screenshots/<name>.png``; its path."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


SERIOUS = ("serious", "critical")


def axe_check(page: Any, name: str = "") -> list[dict[str, Any]]:
    """Run axe-core (``axe-playwright-python``, which ships it) on the page; fail on any serious
    or critical violation, naming the rule and the elements. Returns the lesser violations."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = results.response.get("violations", [])
    serious = [v for v in violations if v.get("impact") in SERIOUS]
    assert not serious, f"accessibility violations on {name or page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}" for v in serious)
    return violations


@dataclass(frozen=True)
class Staff:
    account_id: int
    email: str
    password: str
    name: str


def make_staff(engine: Engine, name: str, email: str, *, project: str | None = None, role: str = "admin",
               operator: bool = False, password: str = PASSWORD) -> Staff:
    """An account with a password (and a role in ``project``), as ``observatory accounts create``
    and ``accounts password`` make one."""
    info = accounts.create_account(engine, name, email=email, operator=operator)
    if project is not None:
        accounts.grant(engine, info.id, project, role)
    accounts.set_password(engine, info.id, password)
    return Staff(account_id=info.id, email=email, password=password, name=name)


def sign_in(page: Any, server: LiveServer, staff: Staff, then: str = "/console") -> None:
    """Sign in through the sign-in form, as a person does."""
    page.goto(server.url(f"/console/sign-in?next={then}"))
    page.get_by_label(re.compile("e-?mail", re.I)).fill(staff.email)
    page.get_by_label(re.compile("password|contraseña", re.I)).fill(staff.password)
    page.get_by_role("button", name=re.compile("sign in|entrar|iniciar", re.I)).click()
    page.wait_for_load_state("domcontentloaded")
