"""Moderation: pending, published, unpublished, trashed; every change audited."""

from __future__ import annotations

import logging

from core.audit import audit, snapshot
from core.db.session import transaction
from core.engine import Engine
from core.errors import InvalidTransition
from core.types import ObservationView
from core.views import load_observation, observation_view

log = logging.getLogger(__name__)

# action -> (statuses it may start from, status it leads to); restore goes back to pending.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "publish": (frozenset({"pending", "unpublished"}), "published"),
    "unpublish": (frozenset({"published"}), "unpublished"),
    "trash": (frozenset({"pending", "published", "unpublished"}), "trashed"),
    "restore": (frozenset({"trashed"}), "pending"),
}
ACTIONS = tuple(TRANSITIONS)


def moderate(engine: Engine, obs_id: int, action: str, actor: str, reason: str | None = None) -> tuple[str, str]:
    """Apply ``action``; return (old status, new status). Raise InvalidTransition if it cannot."""
    if action not in TRANSITIONS:
        raise InvalidTransition(f"unknown action {action!r}; one of {', '.join(ACTIONS)}", code="unknown_action")
    allowed, new = TRANSITIONS[action]
    with transaction(engine.sessions) as session:
        obs = load_observation(session, obs_id)
        old = obs.status
        if old not in allowed:
            raise InvalidTransition(f"cannot {action} observation {obs_id}: it is {old}")
        before = snapshot(obs)
        obs.status = new
        after = snapshot(obs)
        if reason:
            after["reason"] = reason
        audit(session, obs.project, obs.id, actor, action, before, after)
        session.flush()
        view = observation_view(obs, engine.media)
    try:  # committed: what the plugins are told afterwards never turns the change into an error
        _notify(engine, view, old, new)
    except Exception:  # noqa: BLE001
        log.exception("observation %s is %s, but the plugins could not be told", obs_id, new)
    return old, new


def _notify(engine: Engine, view: ObservationView, old: str, new: str) -> None:
    """Tell every enabled plugin, one at a time: a broken notifier never stops the others."""
    project = engine.registry.project(view.project)
    for called in engine.host.call_each("on_status_change", project, view.kind, observation=view, old=old, new=new,
                                        project=project, engine=engine):
        if called.error is not None:
            log.error("on_status_change of plugin %r failed for observation %s", called.plugin, view.id,
                      exc_info=called.error)
