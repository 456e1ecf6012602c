"""Waiting in tests for something to happen: a condition polled until a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_s: float, what: str, *, every_s: float = 0.05,
               details: Callable[[], str] | None = None) -> T:
    """Call ``condition`` until it returns something truthy and return that; fail the test naming
    ``what`` (and ``details()``, e.g. a server's log) when ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}"
                        + (f"\n{details()}" if details is not None else ""))
        time.sleep(every_s)
