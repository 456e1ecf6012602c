"""The grade of an observation in a project that enables the service, by iNaturalist's rules
(``rules.quality_grade``): from the community taxon and the observation's taxon (decided again
from the current identifications, as ``recompute`` stores them), the quality votes, the
observation's date, place and media (a photo or a sound), its error flags, and the project's
``require_expert`` setting."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.db.session import transaction
from core.engine import Engine
from core.types import Flag, ObservationView, ProjectContext
from plugins.identification import rules
from plugins.identification.facts import decide, taxa_by_id, votes_of


def has_media(observation: ObservationView) -> bool:
    """A photo or a sound: evidence iNaturalist takes for research grade."""
    return any(m.content_type.startswith(("image/", "audio/")) for m in observation.media)


def facts_of(session: Session, observation: ObservationView, flags: list[Flag],
             project: ProjectContext) -> rules.GradeFacts:
    decision = decide(session, observation.id, project)
    community = decision.community
    return rules.GradeFacts(
        community=community, taxon_id=decision.taxon_id, rank_level=decision.rank_level,
        has_date=observation.observed_at is not None,
        has_location=observation.location is not None,
        has_media=has_media(observation), votes=votes_of(session, observation.id),
        flagged=any(f.severity == "error" for f in flags),
        expert_agrees=rules.expert_agrees(decision.idents, community),
        require_expert=bool(project.settings("identification").get("require_expert", False)),
        prefers_community_taxon=decision.prefers_community_taxon, idents=decision.idents,
        human=is_human(session, community.taxon_id or decision.taxon_id))


def is_human(session: Session, taxon_id: int | None) -> bool:
    """Whether the taxon is Homo or a species of it (iNaturalist grades people casual)."""
    taxon = taxa_by_id(session, [taxon_id]).get(taxon_id) if taxon_id is not None else None
    return taxon is not None and (taxon.name == "Homo" or taxon.name.startswith("Homo "))


def grade(engine: Engine, observation: ObservationView, flags: list[Flag], project: ProjectContext) -> str:
    """``research``, ``needs_id`` or ``casual``, as ``rules.quality_grade`` decides."""
    with transaction(engine.readers) as session:
        return rules.quality_grade(facts_of(session, observation, flags, project))
