"""What every mobile bridge test module shares: the engine's own plugins only (no test plugins),
and the bridge's own tables emptied (the kit empties every table; this makes it explicit where
the bridge's tests depend on it)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.mobile_bridge.bridge_kit import empty_bridge_tables


@pytest.fixture
def plugins() -> str:
    return ""


@pytest.fixture(autouse=True)
def _empty_bridge_tables(request: pytest.FixtureRequest) -> None:
    if "engine" in request.fixturenames:
        engine: Any = request.getfixturevalue("engine")
        empty_bridge_tables(engine)
