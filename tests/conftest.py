"""The engine's own test set-up on top of the public test kit (``core.testing``, a pytest plugin
that every package plugging into the engine gets): this file only says what is particular to the
engine's tests, its registry (``BASE_REGISTRY``) and its test plugins (``tests/support``), by
overriding the kit's ``registry`` and ``plugins`` fixtures. The rest (``database_url``,
``settings_factory``, ``make_engine``, ``engine``, ``client``, ``photos``...) is the kit's, so the
kit is what the engine's own tests run on. Broker tests start real worker processes
(tests/test_worker_e2e.py)."""

from __future__ import annotations

import pytest

from core.testing import PG_ENV, draft  # noqa: F401  (imported from here by the tests)
from tests.support.browser import browser  # noqa: F401  (one Chromium for the whole session: tests/web, the analysis maps)

TEST_PLUGINS = ",".join(
    f"{name}=tests.support.{name}" for name in ("flaky", "recorder", "sleepy")
)

BASE_REGISTRY = """
services:
  flaky:
    summary: fails the first N attempts
    config: {timeout_s: 5}
    settings:
      type: object
      properties:
        failures: {type: integer, minimum: 0, default: 1}
  recorder:
    summary: records which observations it saw
    settings: {type: object}
  sleepy:
    summary: sleeps
    config: {timeout_s: 2}
    settings:
      type: object
      properties:
        seconds: {type: number, default: 30}
projects:
  - slug: alpha
    name: Alpha
    timezone: Europe/Madrid
    services: {recorder: {}, flaky: {failures: 1}}
  - slug: beta
    name: Beta
    public: false
    services: {}
"""


@pytest.fixture
def registry() -> str:
    """The engine's tests start on ``BASE_REGISTRY`` (projects ``alpha`` and ``beta``)."""
    return BASE_REGISTRY


@pytest.fixture
def plugins() -> str:
    """The engine's test plugins (``tests/support``), which ``BASE_REGISTRY`` offers."""
    return TEST_PLUGINS


def own_plugins() -> str:
    """The entry points this repository installs (pyproject.toml), comma-separated: the engine's
    tests load these and no other installed plugin (``OBSERVATORY_LOAD_PLUGINS``), so a third-party
    plugin in the same environment changes nothing here."""
    import tomllib
    from pathlib import Path

    declared = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    return ",".join(declared["project"]["entry-points"]["observatory"])


@pytest.fixture(scope="session", autouse=True)
def _only_the_engines_own_plugins() -> None:
    import os

    os.environ["OBSERVATORY_LOAD_PLUGINS"] = own_plugins()  # read by every engine and subprocess the tests start
