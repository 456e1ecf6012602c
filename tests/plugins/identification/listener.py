"""A test plugin that records every ``on_identification`` call it receives (the registry of
``conftest.py`` offers it as the service ``listener``)."""

from __future__ import annotations

from typing import Any

from core import hookimpl


def calls(engine: Any) -> list[tuple[str, int, int | None, int | None]]:
    """(kind, observation id, taxon id, account id) of every call this engine made, in order."""
    return engine.state("listener.calls", list)


@hookimpl
def on_identification(change: Any, observation: Any, project: Any, engine: Any) -> None:
    assert observation.id == change.observation_id and project.slug == change.project
    calls(engine).append((change.kind, change.observation_id, change.taxon_id, change.account_id))
    if engine.state("listener.fail", lambda: [False])[0]:
        raise RuntimeError("the listener fails on purpose")
