"""The audit log: who changed what, when, before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.db.models import AuditEntry, Observation
from core.readable import readable


def snapshot(obs: Observation) -> dict[str, Any]:
    """The parts of an observation a change can touch, as readers are shown them (``readable``: an
    older row holding what the field checks now refuse is recorded repaired, so that the entry
    can always be stored and read back, and the moderation or edit of that row goes through)."""
    return {
        "status": obs.status,
        "grade": obs.grade,
        "kind": obs.kind,
        "observed_at": obs.observed_at.isoformat() if obs.observed_at else None,
        "location": {"lat": obs.lat, "lon": obs.lon, "accuracy_m": obs.accuracy_m},
        "fields": dict(readable(obs.fields or {})),
        "media": [m.sha256 for m in obs.media],
    }


def audit(
    session: Session,
    project: str,
    observation_id: int | None,
    actor: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        AuditEntry(project=project, observation_id=observation_id, actor=actor, action=action, before=before, after=after)
    )
