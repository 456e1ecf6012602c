"""What the identification service keeps about a person, for their export (``personal_data``)
and their erasure (``erase_account``): their identifications, quality votes and expert
subscriptions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from core.audit import audit
from core.db.session import transaction
from core.engine import Engine
from plugins.identification.db import expert_subscriptions, identifications, quality_votes
from plugins.identification.facts import taxa_by_id
from plugins.identification.recompute import lock_observation, recompute
from plugins.identification.access import SERVICE
from plugins.identification.store import after_commit, changed

ERASURE_ACTOR = "erasure"


def erase_account(engine: Engine, account_id: int) -> None:
    """Delete the person's identifications, votes and subscriptions; each observation they had
    identified or voted on is decided again (audited when its community taxon moves), graded,
    and plugins are told of a community taxon that moved. Idempotent."""
    with transaction(engine.readers) as session:
        touched = sorted(set(session.scalars(select(identifications.c.observation_id)
                                             .where(identifications.c.account_id == account_id)))
                         | set(session.scalars(select(quality_votes.c.observation_id)
                                               .where(quality_votes.c.account_id == account_id))))
    for obs_id in touched:  # one observation at a time, each locked as every change locks it
        with transaction(engine.sessions) as session:
            obs = lock_observation(session, obs_id)
            session.execute(delete(identifications).where(identifications.c.observation_id == obs_id,
                                                          identifications.c.account_id == account_id))
            session.execute(delete(quality_votes).where(quality_votes.c.observation_id == obs_id,
                                                        quality_votes.c.account_id == account_id))
            if obs is None:
                continue
            project = engine.registry.project(obs.project)
            if not project.enables(SERVICE):
                continue  # switched off since: nothing is decided there any more
            audit(session, obs.project, obs.id, ERASURE_ACTOR, "erase_identifications", None, None)
            done = changed(session, obs, project, ERASURE_ACTOR, recompute(session, obs, project), None, None)
        after_commit(engine, done)
    with transaction(engine.sessions) as session:
        session.execute(delete(expert_subscriptions).where(expert_subscriptions.c.account_id == account_id))


def personal_data(engine: Engine, account_id: int) -> dict[str, Any]:
    """The person's own identifications (with their taxa's names), quality votes and expert
    subscriptions, as JSON-able lists."""
    with transaction(engine.readers) as session:
        rows = session.execute(select(identifications).where(identifications.c.account_id == account_id)
                               .order_by(identifications.c.id)).all()
        taxa = taxa_by_id(session, [r.taxon_id for r in rows])
        idents = [{"id": r.id, "uuid": r.uuid, "observation_id": r.observation_id, "project": r.project,
                   "taxon_id": r.taxon_id, "taxon": taxa[r.taxon_id].name if r.taxon_id in taxa else None,
                   "body": r.body, "vision": r.vision, "disagreement": r.disagreement, "current": r.current,
                   "withdrawn": r.withdrawn, "category": r.category, "created_at": r.created_at.isoformat(),
                   "updated_at": r.updated_at.isoformat()} for r in rows]
        votes = [{"observation_id": r.observation_id, "metric": r.metric, "agree": r.agree,
                  "created_at": r.created_at.isoformat()}
                 for r in session.execute(select(quality_votes).where(quality_votes.c.account_id == account_id)
                                          .order_by(quality_votes.c.id))]
        subscriptions = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r._mapping.items()
                          if k != "account_id"}
                         for r in session.execute(select(expert_subscriptions)
                                                  .where(expert_subscriptions.c.account_id == account_id)
                                                  .order_by(expert_subscriptions.c.id))]
    return {"identifications": idents, "quality_votes": votes, "expert_subscriptions": subscriptions}
