"""What the rules (``rules``, pure) are given about one observation, read from the database: its
current identifications as ``rules.Ident`` with their taxa's ancestry, and the rank levels of
every taxon involved; and what they decide (``decide``). Reading only: ``recompute`` writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Taxon
from core.types import ProjectContext
from plugins.identification import rules
from plugins.identification.db import identifications, observation_taxa, quality_votes

_taxa = Taxon.__table__
METRICS = ("wild", "location", "date", "evidence", "recent", "needs_id")
"""Data-quality metrics, as iNaturalist's: wild, location accurate, date accurate, evidence of an
organism, recent evidence, and ``needs_id`` (a disagree vote: "no further ID possible")."""


def ancestry_of(text: str | None) -> tuple[int, ...]:
    """iNaturalist's ancestry text (``"1/2/3"``, root first) as ids."""
    return tuple(int(part) for part in text.split("/") if part) if text else ()


@dataclass(frozen=True)
class TaxonInfo:
    """What the identification service shows and checks of a taxon."""

    id: int
    name: str
    rank: str
    rank_level: float
    ancestry: tuple[int, ...]
    active: bool

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "rank": self.rank, "rank_level": self.rank_level}


def taxa_by_id(session: Session, ids: Iterable[int]) -> dict[int, TaxonInfo]:
    """The taxa of ``ids`` that exist, by id."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(select(_taxa.c.id, _taxa.c.scientific_name, _taxa.c.rank, _taxa.c.rank_level,
                                  _taxa.c.ancestry, _taxa.c.is_active).where(_taxa.c.id.in_(wanted))).all()
    return {r.id: TaxonInfo(r.id, r.scientific_name, r.rank, r.rank_level, ancestry_of(r.ancestry), r.is_active)
            for r in rows}


def idents_of(session: Session, obs_id: int) -> list[rules.Ident]:
    """Every identification of the observation (current or not), oldest first, as the rules see them."""
    rows = session.execute(
        select(identifications.c.id, identifications.c.account_id, identifications.c.taxon_id,
               identifications.c.created_at, identifications.c.disagreement, identifications.c.own,
               identifications.c.expert, identifications.c.current, identifications.c.previous_taxon_id,
               _taxa.c.ancestry)
        .join(_taxa, _taxa.c.id == identifications.c.taxon_id)
        .where(identifications.c.observation_id == obs_id)
        .order_by(identifications.c.created_at, identifications.c.id)).all()
    return [rules.Ident(id=r.id, account_id=r.account_id, taxon_id=r.taxon_id, ancestry=ancestry_of(r.ancestry),
                        created_at=r.created_at, disagreement=r.disagreement, own=r.own, expert=r.expert,
                        current=r.current, previous_taxon_id=r.previous_taxon_id)
            for r in rows]


def rank_levels(session: Session, idents: Iterable[rules.Ident]) -> dict[int, float]:
    """The rank level of every taxon the identifications name or descend from."""
    ids: set[int] = set()
    for ident in idents:
        ids.add(ident.taxon_id)
        ids.update(ident.ancestry)
    if not ids:
        return {}
    rows = session.execute(select(_taxa.c.id, _taxa.c.rank_level).where(_taxa.c.id.in_(sorted(ids)))).all()
    return {r.id: r.rank_level for r in rows}


def expert_weight(project: ProjectContext) -> int:
    return int(project.settings("identification").get("expert_weight", 1))


@dataclass(frozen=True)
class Decision:
    """What the rules decide for an observation now."""

    idents: list[rules.Ident]
    """Every identification, current or not (the rules look at the current ones where they should)."""
    rank_level: dict[int, float]
    community: rules.Community
    categories: dict[int, str]
    taxon_id: int | None
    """The observation's taxon (the community's, or the observer's when they opted out)."""
    prefers_community_taxon: bool

    def lineage_counts(self) -> tuple[int, int]:
        """(agreements, disagreements) with the observation's taxon, one per person, as iNaturalist
        counts them: agreeing are identifications of the taxon or a descendant; disagreeing those of
        another branch, and of an ancestor marked as a disagreement."""
        if self.taxon_id is None:
            return 0, 0
        agree = disagree = 0
        for ident in self.current:
            if ident.taxon_id == self.taxon_id or self.taxon_id in ident.ancestry:
                agree += 1
            elif ident.taxon_id in self.lineage:
                disagree += 1 if ident.disagreement else 0
            else:
                disagree += 1
        return agree, disagree

    @property
    def current(self) -> list[rules.Ident]:
        return [i for i in self.idents if i.current]

    @property
    def lineage(self) -> tuple[int, ...]:
        """The observation taxon's ancestors (empty when it has none or no identification names it)."""
        for ident in self.current:
            if ident.taxon_id == self.taxon_id:
                return ident.ancestry
            if self.taxon_id in ident.ancestry:
                return ident.ancestry[: ident.ancestry.index(self.taxon_id)]
        return ()


def prefers_community(session: Session, obs_id: int) -> bool:
    value = session.scalar(select(observation_taxa.c.prefers_community_taxon)
                           .where(observation_taxa.c.observation_id == obs_id))
    return True if value is None else bool(value)


def decide(session: Session, obs_id: int, project: ProjectContext, *,
           prefers_community_taxon: bool | None = None) -> Decision:
    """The community taxon, each current identification's category and the observation's taxon,
    by ``rules``, from what is stored (``prefers_community_taxon`` None: as stored)."""
    idents = idents_of(session, obs_id)
    levels = rank_levels(session, idents)
    community = rules.community_taxon(idents, levels, expert_weight=expert_weight(project))
    prefers = prefers_community(session, obs_id) if prefers_community_taxon is None else prefers_community_taxon
    return Decision(idents, levels, community, rules.categories(idents, community),
                    rules.observation_taxon(community, idents, prefers, rank_level=levels), prefers)


def votes_of(session: Session, obs_id: int) -> list[tuple[str, bool]]:
    """Every (metric, agree) quality vote on the observation."""
    return [(r.metric, r.agree) for r in session.execute(
        select(quality_votes.c.metric, quality_votes.c.agree).where(quality_votes.c.observation_id == obs_id)
        .order_by(quality_votes.c.id))]


def vote_counts(votes: Iterable[tuple[str, bool]]) -> dict[str, dict[str, int]]:
    """metric -> {agree, disagree} counts, for every metric voted on."""
    out: dict[str, dict[str, int]] = {}
    for metric, agree in votes:
        counts = out.setdefault(metric, {"agree": 0, "disagree": 0})
        counts["agree" if agree else "disagree"] += 1
    return out
