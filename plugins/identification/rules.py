"""iNaturalist's community rules as pure functions: no database, no engine.

Ported from iNaturalist's ``app/models/observation.rb`` (``community_taxon_nodes``,
``get_community_taxon``, ``probable_taxon``, ``set_taxon_from_probable_taxon``,
``get_quality_grade``, ``research_grade_candidate?``, ``voted_out_of_needs_id?``) and
``app/models/identification.rb`` (``update_categories_for_observation``, ``set_disagreement``).
Where this module differs from iNaturalist it says so (see also docs/identification.md).

Callers read the taxa (ancestry, rank level) and the identifications from the database and pass
them in; every function here answers from its arguments alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

# iNaturalist's rank levels (Taxon::RANK_LEVELS): the smaller, the finer.
RANK_LEVELS: dict[str, float] = {
    "stateofmatter": 100, "kingdom": 70, "phylum": 60, "subphylum": 57, "superclass": 53,
    "class": 50, "subclass": 47, "infraclass": 45, "subterclass": 44, "superorder": 43,
    "order": 40, "suborder": 37, "infraorder": 35, "parvorder": 34.5, "zoosection": 34,
    "zoosubsection": 33.5, "superfamily": 33, "epifamily": 32, "family": 30, "subfamily": 27,
    "supertribe": 26, "tribe": 25, "subtribe": 24, "genus": 20, "genushybrid": 20,
    "subgenus": 15, "section": 13, "subsection": 12, "complex": 11, "species": 10,
    "hybrid": 10, "subspecies": 5, "variety": 5, "form": 5, "infrahybrid": 5,
}
SPECIES_LEVEL = RANK_LEVELS["species"]
FAMILY_LEVEL = RANK_LEVELS["family"]
# a taxon without a rank level sorts as iNaturalist's does: coarser than anything
UNKNOWN_RANK_LEVEL = 500.0

COMMUNITY_TAXON_SCORE_CUTOFF = 2.0 / 3

LEADING, IMPROVING, SUPPORTING, MAVERICK = "leading", "improving", "supporting", "maverick"
RESEARCH, NEEDS_ID, CASUAL = "research", "needs_id", "casual"

# the data-quality metrics that make an observation casual when voted down (QualityMetric::METRICS)
QUALITY_METRICS: tuple[str, ...] = ("wild", "location", "date", "evidence", "recent", "subject", "accurate")
# "Can the community taxon still be confirmed or improved?": agree = yes, disagree = "no further ID possible"
NEEDS_ID_METRIC = "needs_id"


@dataclass(frozen=True)
class Ident:
    """One identification as the rules see it. Withdrawn or replaced ones have ``current=False``:
    the community taxon ignores them; categories (as iNaturalist's) still place them."""

    id: int
    account_id: int | None
    taxon_id: int
    ancestry: tuple[int, ...]            # the taxon's ancestors, root first, without the taxon
    created_at: datetime
    disagreement: bool | None = None     # explicit "No, but it is a member of ..." (None = False)
    own: bool = False                    # made by the observer
    expert: bool = False                 # made by an expert of the project
    current: bool = True
    # the observation's taxon when this was made (iNat's previous_observation_taxon): what an
    # explicit disagreement disagrees with; None: everything below this identification's taxon
    previous_taxon_id: int | None = None

    @property
    def lineage(self) -> tuple[int, ...]:
        """The taxon's ancestors and the taxon, root first."""
        return (*self.ancestry, self.taxon_id)


@dataclass(frozen=True)
class Community:
    taxon_id: int | None                 # None: no community taxon
    score: float | None
    cumulative: int = 0                  # of the winner (weighted counts when experts count double)
    disagreements: int = 0
    ancestor_disagreements: int = 0


@dataclass(frozen=True)
class Node:
    """One candidate taxon's counts (iNaturalist's community taxon node)."""

    taxon_id: int
    lineage: tuple[int, ...]
    rank_level: float | None
    cumulative: int
    disagreements: int
    ancestor_disagreements: int

    @property
    def score(self) -> float:
        return self.cumulative / (self.cumulative + self.disagreements + self.ancestor_disagreements)


def _lineages(idents: Sequence[Ident]) -> dict[int, tuple[int, ...]]:
    """Every taxon on the identifications' lineages -> its own lineage (root first, itself last)."""
    found: dict[int, tuple[int, ...]] = {}
    for ident in idents:
        lineage = ident.lineage
        for depth, taxon_id in enumerate(lineage):
            found.setdefault(taxon_id, lineage[:depth + 1])
    return found


def _disagreement_branch(ident: Ident, lineages: Mapping[int, tuple[int, ...]]) -> frozenset[int] | None:
    """The taxa an explicit disagreement rejects: those between its taxon (excluded) and the taxon
    it disagreed with (included). None when it rejects nothing any more: the disagreed taxon has no
    current identification left, or the identification is not of one of its ancestors."""
    if ident.previous_taxon_id is None:
        return None
    previous = lineages.get(ident.previous_taxon_id)
    if previous is None or ident.taxon_id not in previous[:-1]:
        return None
    return frozenset(previous[previous.index(ident.taxon_id) + 1:])


def _weight(ident: Ident, expert_weight: int) -> int:
    return expert_weight if ident.expert else 1


def community_nodes(idents: Sequence[Ident], rank_level: Mapping[int, float], *,
                    expert_weight: int = 1) -> list[Node]:
    """The counts of every taxon on the current identifications' lineages (community_taxon_nodes)."""
    working = sorted((i for i in idents if i.current), key=lambda i: i.id)
    lineages = _lineages(working)
    branches = {i.id: _disagreement_branch(i, lineages) for i in working if i.disagreement}
    weighed = [(ident, frozenset(ident.lineage), _weight(ident, expert_weight)) for ident in working]
    nodes = []
    for taxon_id, lineage in lineages.items():
        ancestors = frozenset(lineage[:-1])
        cumulative = disagreements = ancestor_disagreements = 0
        for ident, ident_lineage, weight in weighed:
            if taxon_id in ident_lineage:
                cumulative += weight
            elif ident.taxon_id not in ancestors:
                disagreements += weight      # neither this taxon's ancestor nor in its subtree
            elif ident.disagreement and _rejects(ident, taxon_id, lineage, branches.get(ident.id)):
                ancestor_disagreements += weight
        nodes.append(Node(taxon_id, lineage, rank_level.get(taxon_id), cumulative, disagreements,
                          ancestor_disagreements))
    return nodes


def _rejects(ident: Ident, taxon_id: int, lineage: tuple[int, ...], branch: frozenset[int] | None) -> bool:
    """Whether an explicit disagreement (an identification of an ancestor of ``taxon_id``) counts
    against ``taxon_id``."""
    if ident.previous_taxon_id is None:
        return True                          # "not anything below my taxon"
    return branch is not None and not branch.isdisjoint(lineage)


def _finest(nodes: Sequence[Node]) -> Node:
    """The lowest-ranked node; a tie (equal rank levels on one lineage) goes to the deeper taxon."""
    return min(nodes, key=lambda n: (n.rank_level if n.rank_level is not None else UNKNOWN_RANK_LEVEL,
                                     -len(n.lineage), n.taxon_id))


def community_taxon(idents: Sequence[Ident], rank_level: Mapping[int, float], *,
                    expert_weight: int = 1) -> Community:
    """iNaturalist's community taxon: with more than one current identification, the lowest-ranked
    taxon whose score is above 2/3 and that more than one identification supports."""
    if expert_weight < 1:
        raise ValueError("expert_weight must be 1 or more")
    if sum(1 for i in idents if i.current) <= 1:
        return Community(None, None)
    nodes = community_nodes(idents, rank_level, expert_weight=expert_weight)
    eligible = [n for n in nodes if n.cumulative > 1 and n.score > COMMUNITY_TAXON_SCORE_CUTOFF]
    if not eligible:
        return Community(None, None)
    best = _finest(eligible)
    return Community(best.taxon_id, best.score, best.cumulative, best.disagreements, best.ancestor_disagreements)


def community_lineage(community: Community, idents: Sequence[Ident]) -> tuple[int, ...]:
    """The community taxon's lineage, read from the identifications (empty without one)."""
    if community.taxon_id is None:
        return ()
    return _lineages(idents).get(community.taxon_id, (community.taxon_id,))


def categories(idents: Sequence[Ident], community: Community) -> dict[int, str]:
    """Each identification's category, as iNaturalist's update_categories_for_observation: in the
    order they were made, leading (below the community taxon, or no community taxon), improving
    (the first to propose the community taxon or one of its ancestors), supporting (agrees, later),
    maverick (outside the community taxon's lineage). Pass withdrawn ones too to match iNat."""
    ct = community.taxon_id
    ct_ancestors = set(community_lineage(community, idents)[:-1])
    found: dict[int, str] = {}
    agreeing: list[Ident] = []               # improving and supporting ones so far
    for ident in sorted(idents, key=lambda i: i.id):
        if ct is None or ct in ident.ancestry:
            found[ident.id] = LEADING
            continue
        if ident.taxon_id != ct and ident.taxon_id not in ct_ancestors:
            found[ident.id] = MAVERICK
            continue
        progressive = not any(ident.taxon_id in earlier.lineage for earlier in agreeing)
        found[ident.id] = IMPROVING if progressive else SUPPORTING
        agreeing.append(ident)
    return found


def _owners(idents: Sequence[Ident]) -> Ident | None:
    """The observer's current identification (their latest)."""
    own = [i for i in idents if i.own and i.current]
    return max(own, key=lambda i: (i.created_at, i.id)) if own else None


def probable_taxon(idents: Sequence[Ident], community: Community,
                   rank_level: Mapping[int, float] | None = None) -> int | None:
    """What the organism probably is (iNat's probable_taxon): with no disagreement at all, the
    finest taxon proposed; otherwise the community taxon."""
    current = [i for i in idents if i.current]
    if not current:
        return None
    nodes = community_nodes(current, rank_level or {})
    if any(n.disagreements or n.ancestor_disagreements for n in nodes):
        return community.taxon_id
    # no disagreement: every node scores 1 and the proposals lie on one lineage
    return _finest(nodes).taxon_id


def observation_taxon(community: Community, idents: Sequence[Ident], prefers_community_taxon: bool, *,
                      rank_level: Mapping[int, float] | None = None) -> int | None:
    """The observation's taxon, as iNat's set_taxon_from_probable_taxon: the observer's own when
    they opted out of the community taxon; otherwise the probable taxon (a subspecies proposed
    after the community taxon counts as its species); failing that the observer's, or the latest
    other identification's. ``rank_level`` (as for community_taxon) enables the subspecies rule."""
    current = [i for i in idents if i.current]
    if not current:
        return None
    owners = _owners(current)
    if not prefers_community_taxon:
        return owners.taxon_id if owners else None
    probable = probable_taxon(current, community, rank_level)
    ct = community.taxon_id
    levels = rank_level or {}
    if ct is not None and probable is not None and probable != ct:
        level = levels.get(probable)
        lineage = _lineages(current)[probable]
        if level is not None and level < SPECIES_LEVEL and ct in lineage:
            first_probable = _first_of(current, probable)
            first_ct = _first_of(current, ct)
            if first_probable and first_ct and first_probable.id < first_ct.id:
                return probable          # the subspecies came first
            species = [t for t in lineage if levels.get(t) == SPECIES_LEVEL]
            return species[-1] if species else ct
    if probable is not None:
        return probable
    if owners is not None:
        return owners.taxon_id
    others = [i for i in current if not i.own]
    return max(others, key=lambda i: i.id).taxon_id if others else None


def _first_of(idents: Sequence[Ident], taxon_id: int) -> Ident | None:
    exact = [i for i in idents if i.taxon_id == taxon_id]
    return min(exact, key=lambda i: (i.created_at, i.id)) if exact else None


def metric_passes(votes: Sequence[tuple[str, bool]]) -> dict[str, bool]:
    """(metric, agree) votes -> metric -> passes: half or more agree, or no vote at all. Every
    known metric is in the answer (True when nobody voted), and any other voted on."""
    tally: dict[str, list[int]] = {}
    for metric, agree in votes:
        counts = tally.setdefault(metric, [0, 0])
        counts[0 if agree else 1] += 1
    passes = {metric: True for metric in (*QUALITY_METRICS, NEEDS_ID_METRIC)}
    for metric, (agree, disagree) in tally.items():
        passes[metric] = agree / (agree + disagree) >= 0.5
    return passes


def needs_id_votes(votes: Sequence[tuple[str, bool]]) -> tuple[int, int]:
    """(yes, no) votes on "can the community taxon still be confirmed or improved?"."""
    yes = sum(1 for metric, agree in votes if metric == NEEDS_ID_METRIC and agree)
    no = sum(1 for metric, agree in votes if metric == NEEDS_ID_METRIC and not agree)
    return yes, no


def expert_agrees(idents: Sequence[Ident], community: Community) -> bool:
    """Whether a current expert identification is of the community taxon or one of its descendants."""
    ct = community.taxon_id
    return ct is not None and any(i.expert and i.current and ct in i.lineage for i in idents)


@dataclass(frozen=True)
class GradeFacts:
    community: Community
    taxon_id: int | None                 # the observation's taxon (observation_taxon)
    rank_level: Mapping[int, float]      # rank levels of the taxa involved
    has_date: bool
    has_location: bool
    has_media: bool                      # a photo or a sound
    votes: Sequence[tuple[str, bool]]    # every (metric, agree) vote
    flagged: bool                        # an error-severity quality flag stands
    expert_agrees: bool                  # a current expert identification of the community taxon or a descendant
    require_expert: bool                 # the project's require_expert setting
    # the observer opted out of the community taxon: the grade then follows their own
    # identification, which the rules find in ``idents`` (pass them when opted out)
    prefers_community_taxon: bool = True
    idents: Sequence[Ident] = ()
    human: bool = False                  # the taxon is Homo (iNat: casual)


def research_grade_candidate(facts: GradeFacts) -> bool:
    """iNat's research_grade_candidate?: located, dated, with a photo or sound, no quality metric
    voted down, not flagged, not a human."""
    passes = metric_passes(facts.votes)
    return (facts.has_location and facts.has_date and facts.has_media and not facts.flagged
            and not facts.human and all(passes[m] for m in QUALITY_METRICS))


def quality_grade(facts: GradeFacts) -> str:
    """iNaturalist's get_quality_grade, plus the project's require_expert."""
    grade = _inat_grade(facts)
    if grade == RESEARCH and facts.require_expert and not facts.expert_agrees:
        return NEEDS_ID
    return grade


def _inat_grade(facts: GradeFacts) -> str:
    if not research_grade_candidate(facts):
        return CASUAL
    yes, no = needs_id_votes(facts.votes)
    if yes > no:
        return NEEDS_ID                       # voted in to needs_id
    voted_out = no > yes
    ct = facts.community.taxon_id
    ct_level = facts.rank_level.get(ct) if ct is not None else None
    if ct is not None and not facts.prefers_community_taxon:
        return _opted_out_grade(facts, voted_out)
    if ct is not None and ct_level is not None and ct_level <= SPECIES_LEVEL and ct == facts.taxon_id:
        return RESEARCH
    if ct is not None and voted_out:
        below_family = ct_level is not None and ct_level < FAMILY_LEVEL
        return RESEARCH if below_family and ct == facts.taxon_id else CASUAL
    return NEEDS_ID


def _opted_out_grade(facts: GradeFacts, voted_out: bool) -> str:
    """The grade when the observer opted out: their own identification must agree with the community."""
    owners = _owners(facts.idents)
    if owners is None or categories(facts.idents, facts.community).get(owners.id) == MAVERICK:
        return CASUAL
    level = facts.rank_level.get(owners.taxon_id)
    ct = facts.community.taxon_id
    if level is not None:
        if level <= SPECIES_LEVEL and owners.taxon_id in community_lineage(facts.community, facts.idents):
            return RESEARCH
        if level < FAMILY_LEVEL and owners.taxon_id == ct and voted_out:
            return RESEARCH
    return CASUAL if voted_out else NEEDS_ID


def disagreement_flag(taxon_lineage: Sequence[int], previous_lineage: Sequence[int] | None,
                      explicit: bool | None) -> bool | None:
    """The disagreement flag a new identification gets (iNat's set_disagreement): None with no
    previous taxon; an explicit "No, but" stands when the taxon is an ancestor of the previous
    taxon; otherwise a disagreement when neither an ancestor nor a descendant of it. Lineages are
    root first, the taxon last."""
    if not previous_lineage:
        return None
    taxon_id, previous_id = taxon_lineage[-1], previous_lineage[-1]
    if explicit and taxon_id in previous_lineage[:-1]:
        return True
    return taxon_id not in previous_lineage and previous_id not in taxon_lineage
