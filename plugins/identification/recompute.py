"""Recomputing an observation after its identifications changed: what the rules decide
(``facts.decide``) is stored in ``observation_taxa`` and in each identification's ``category``.
Called inside the transaction that made the change, with the observation's row locked
(``lock_observation``), so that concurrent changes are recomputed one after the other and the
last one stored sees them all."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from core.db.models import Observation, utcnow
from core.types import ProjectContext
from plugins.identification.db import identifications, observation_taxa
from plugins.identification.facts import Decision, decide


def lock_observation(session: Session, obs_id: int) -> Observation | None:
    """The observation, its row locked until the transaction ends (``SELECT ... FOR UPDATE`` on
    PostgreSQL; SQLite's writing transactions hold the database's write lock already)."""
    return session.execute(select(Observation).where(Observation.id == obs_id).with_for_update()).scalar_one_or_none()


@dataclass(frozen=True)
class Recomputed:
    """The community taxon before and after, and what was decided."""

    before_taxon_id: int | None
    before_score: float | None
    decision: Decision

    @property
    def community_changed(self) -> bool:
        return self.before_taxon_id != self.decision.community.taxon_id


def recompute(session: Session, obs: Observation, project: ProjectContext, *,
              prefers_community_taxon: bool | None = None) -> Recomputed:
    """Decide again and store it: the categories of the observation's identifications (None for
    those not current) and its ``observation_taxa`` row (made on first use, holding the grade the
    observation had then as ``audited_grade``)."""
    stored = session.execute(select(observation_taxa).where(observation_taxa.c.observation_id == obs.id)).first()
    decision = decide(session, obs.id, project, prefers_community_taxon=prefers_community_taxon)
    _store_categories(session, obs.id, decision.categories)
    agreements, disagreements = decision.lineage_counts()
    values = {"taxon_id": decision.taxon_id, "community_taxon_id": decision.community.taxon_id,
              "community_score": decision.community.score, "prefers_community_taxon": decision.prefers_community_taxon,
              "identifications_count": len(decision.current), "agreements": agreements,
              "disagreements": disagreements, "updated_at": utcnow()}
    if stored is None:
        session.execute(insert(observation_taxa).values(observation_id=obs.id, project=obs.project,
                                                        audited_grade=obs.grade, **values))
        return Recomputed(None, None, decision)
    session.execute(update(observation_taxa).where(observation_taxa.c.observation_id == obs.id).values(**values))
    return Recomputed(stored.community_taxon_id, stored.community_score, decision)


def ensure_row(session: Session, obs: Observation) -> None:
    """The observation's ``observation_taxa`` row, made (with no identification counted yet, and the
    grade it has now as ``audited_grade``) when it has none: a vote before any identification."""
    if session.scalar(select(observation_taxa.c.observation_id).where(observation_taxa.c.observation_id == obs.id)) \
            is None:
        session.execute(insert(observation_taxa).values(observation_id=obs.id, project=obs.project,
                                                        audited_grade=obs.grade, updated_at=utcnow()))


def _store_categories(session: Session, obs_id: int, categories: dict[int, str]) -> None:
    rows = session.execute(select(identifications.c.id, identifications.c.category)
                           .where(identifications.c.observation_id == obs_id)).all()
    for row in rows:
        category = categories.get(row.id)
        if row.category != category:
            session.execute(update(identifications).where(identifications.c.id == row.id).values(category=category))
