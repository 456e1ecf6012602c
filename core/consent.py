"""Consent: what each person agreed to (or declined) per project, and to which version.

A person's newest answer per (project, choice) holds; older ones stay as history.
Choices: ``licence`` (the project's data licence, versioned by ``licence_version``),
``attribution`` (name me as the recorder in open data) and the project's own
``consent_choices`` from registry.yaml.
"""

from __future__ import annotations

from sqlalchemy import func, select

from core.db.models import Consent
from core.engine import Engine

LICENCE = "licence"
"""The project's data licence; its version is the project's ``licence_version``."""
ATTRIBUTION = "attribution"
"""Built-in choice: "name me as the recorder in open data" (Darwin Core recordedBy)."""


def _newest_ids(project: str, choice: str):  # type: ignore[no-untyped-def]
    """The id of each account's newest Consent row for (project, choice)."""
    return (select(func.max(Consent.id)).where(Consent.project == project, Consent.choice == choice)
            .group_by(Consent.account_id))


def agreed(engine: Engine, project: str, choice: str) -> set[int]:
    """Account ids whose newest answer to ``choice`` in ``project`` is yes."""
    with engine.readers() as session:
        rows = session.scalars(select(Consent.account_id).where(
            Consent.id.in_(_newest_ids(project, choice)), Consent.agreed.is_(True)))
        return set(rows)
