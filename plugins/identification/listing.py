"""What the identification API shows: an observation's identifications and its summary
(community taxon, the observation's taxon, grade, quality votes).

Who is shown as comments show their authors (``core.comments``): the identifier's display name,
whether it is yours, and the account id to the project's staff only. Whether an identification
is the observer's own (``own``) is shown only to those who may see who the observer is (staff
and the observer, ``core.api.access.sees_everything``): to others it would name the observer, and
for the same reason the author of the observer's own identifications is not named to them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.api.access import sees_everything
from core.db.models import Account, Observation
from core.db.session import transaction
from core.engine import Engine
from core.tokens import Principal
from plugins.identification import rules
from plugins.identification.access import readable_observation
from plugins.identification.db import identifications, observation_taxa, quality_votes
from plugins.identification.facts import METRICS, TaxonInfo, taxa_by_id, vote_counts, votes_of

_accounts = Account.__table__


def _rows(where: Any) -> Select[Any]:
    return (select(identifications, _accounts.c.display_name)
            .outerjoin(_accounts, _accounts.c.id == identifications.c.account_id)
            .where(where).order_by(identifications.c.created_at, identifications.c.id))


def _item(row: Any, taxa: dict[int, TaxonInfo], principal: Principal, obs: Observation) -> dict[str, Any]:
    taxon = taxa.get(row.taxon_id)
    out: dict[str, Any] = {
        "id": row.id, "uuid": row.uuid, "observation_id": row.observation_id,
        "taxon": taxon.as_dict() if taxon else {"id": row.taxon_id, "name": None, "rank": None, "rank_level": None},
        "body": row.body, "vision": row.vision, "disagreement": row.disagreement, "category": row.category,
        "current": row.current, "withdrawn": row.withdrawn, "expert": row.expert,
        # the observer's own identification would name the observer to a caller who may not know who it is
        "author": row.display_name if row.account_id != obs.contributor_id or sees_everything(principal, obs) else None,
        "yours": principal.account_id is not None and row.account_id == principal.account_id,
        "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
    }
    if sees_everything(principal, obs):
        out["own"] = row.own
    if principal.is_staff_of(obs.project):
        out["author_id"] = row.account_id
    return out


def identification(session: Session, principal: Principal, obs: Observation, ident_id: int) -> dict[str, Any]:
    """One identification as ``principal`` sees it."""
    row = session.execute(_rows(identifications.c.id == ident_id)).one()
    return _item(row, taxa_by_id(session, [row.taxon_id]), principal, obs)


def of_observation(engine: Engine, principal: Principal, obs_id: int) -> dict[str, Any]:
    """Every identification of the observation, oldest first (current or not, withdrawn ones
    marked), with the observation's ``summary``."""
    with transaction(engine.readers) as session:
        obs, _project = readable_observation(engine, session, principal, obs_id, lock=False)
        rows = session.execute(_rows(identifications.c.observation_id == obs.id)).all()
        taxa = taxa_by_id(session, [r.taxon_id for r in rows])
        return {"items": [_item(r, taxa, principal, obs) for r in rows], "summary": summary(session, principal, obs)}


def summary(session: Session, principal: Principal, obs: Observation) -> dict[str, Any]:
    """The community taxon and its score, the observation's taxon (the community's, or the
    observer's own when they opted out), counts, the grade, and the quality votes: per metric the
    agree and disagree counts and whether it passes (``rules.metric_passes``), and the caller's."""
    stored = session.execute(select(observation_taxa).where(observation_taxa.c.observation_id == obs.id)).first()
    community_id = stored.community_taxon_id if stored else None
    taxon_id = stored.taxon_id if stored else None
    taxa = taxa_by_id(session, [i for i in (community_id, taxon_id) if i is not None])
    votes = votes_of(session, obs.id)
    counts = vote_counts(votes)
    passes = rules.metric_passes(votes)
    mine: dict[str, bool] = {}
    if principal.account_id is not None:
        mine = {r.metric: r.agree for r in session.execute(
            select(quality_votes.c.metric, quality_votes.c.agree).where(
                quality_votes.c.observation_id == obs.id, quality_votes.c.account_id == principal.account_id))}
    return {
        "observation_id": obs.id,
        "community_taxon": taxa[community_id].as_dict() if community_id in taxa else None,
        "community_score": stored.community_score if stored else None,
        "taxon": taxa[taxon_id].as_dict() if taxon_id in taxa else None,
        "prefers_community_taxon": bool(stored.prefers_community_taxon) if stored else True,
        "identifications_count": stored.identifications_count if stored else 0,
        "agreements": stored.agreements if stored else 0,
        "disagreements": stored.disagreements if stored else 0,
        "grade": obs.grade,
        "quality": {m: {**counts.get(m, {"agree": 0, "disagree": 0}), "passes": passes.get(m, True)}
                    for m in METRICS},
        "your_votes": mine,
    }
