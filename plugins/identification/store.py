"""Changing identifications: a person adds one (replacing their current one), withdraws or
restores their own, votes on data quality, and the observer opts out of the community taxon.

Every change is one transaction that locks the observation's row first
(``recompute.lock_observation``), so concurrent changes to one observation run one after the
other and none is lost; in it the rules' decision is stored again (``recompute``), the change
and a community taxon that moves are audited, and the observation is marked as owing a grade
(``assess_due_at``, as an edit does). After the commit: the grade (``core.enrichment.assess``,
which calls ``grade_observation`` and ``on_assessed``; a grade that changed is audited once,
``audit_grade``), then ``on_identification`` of every enabled plugin. A refused change (404, 403,
409, 422) changes nothing.

Who counts as an expert: the caller whose token holds the expert role, or a staff role (admin,
moderator, operator), in the observation's project at the time (``Principal.is_expert_of``);
it is stored with the identification and not re-read when roles change later.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from core.audit import audit
from core.db.models import Observation, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.enrichment import assess
from core.errors import Conflict, EngineError, Forbidden, NotFound
from core.read_model import read_view
from core.tokens import Principal
from core.types import IdentificationChange, ProjectContext
from plugins.identification import listing, rules
from plugins.identification.access import readable_observation
from plugins.identification.db import identifications, observation_taxa, quality_votes
from plugins.identification.facts import METRICS, TaxonInfo, taxa_by_id
from plugins.identification.recompute import Recomputed, ensure_row, lock_observation, recompute

log = logging.getLogger(__name__)

MAX_BODY = 5000


class Unprocessable(EngineError):
    """A well-formed request naming something the service cannot take (an unknown taxon, metric)."""

    code = "unprocessable"
    http_status = 422


def check_body(body: str | None) -> str | None:
    """The note as stored (trimmed, line ends as ``\\n``; None when empty); 422 ``body_too_long``
    or ``body_control_characters``."""
    if body is None:
        return None
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_BODY:
        raise Unprocessable(f"a note has at most {MAX_BODY} characters, this one {len(text)}", code="body_too_long")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in text):
        raise Unprocessable("a note must not contain control characters", code="body_control_characters")
    return text or None


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise Unprocessable(f"unknown quality metric {metric!r}; one of {', '.join(METRICS)}", code="unknown_metric")
    return metric


def _person(principal: Principal, doing: str) -> int:
    if principal.account_id is None:
        raise Forbidden(f"{doing} needs an account's token", code="unauthorized")
    return principal.account_id


@dataclass
class Pending:
    """What a committed change still owes: the grade, and the plugins told."""

    obs_id: int
    project: ProjectContext
    actor: str
    changes: list[IdentificationChange]


def add(engine: Engine, principal: Principal, obs_id: int, taxon_id: int, *, body: str | None = None,
        vision: bool = False, disagreement: bool | None = None, actor: str | None = None) -> dict[str, Any]:
    """A new identification of ``obs_id`` as ``taxon_id`` by ``principal``, who may read the
    observation; their current one (if any) stops being current. 422 ``unknown_taxon`` for a taxon
    that does not exist, ``inactive_taxon`` for one no longer in use."""
    account_id = _person(principal, "identifying")
    note = check_body(body)
    actor = actor or principal.actor
    with transaction(engine.sessions) as session:
        obs, project = readable_observation(engine, session, principal, obs_id, lock=True)
        taxon = taxa_by_id(session, [taxon_id]).get(taxon_id)
        if taxon is None:
            raise Unprocessable(f"no taxon {taxon_id}", code="unknown_taxon")
        if not taxon.active:
            raise Unprocessable(f"taxon {taxon_id} ({taxon.name}) is no longer in use", code="inactive_taxon")
        now = utcnow()
        before_taxon = session.scalar(select(observation_taxa.c.taxon_id)
                                      .where(observation_taxa.c.observation_id == obs.id))
        disagrees = _disagreement(session, taxon, before_taxon, disagreement)
        mine = (identifications.c.observation_id == obs.id) & (identifications.c.account_id == account_id)
        previous = session.execute(select(identifications.c.id, identifications.c.taxon_id)
                                   .where(mine, identifications.c.current.is_(True))).first()
        session.execute(update(identifications).where(mine, identifications.c.current.is_(True))
                        .values(current=False, updated_at=now))
        new_id = session.execute(insert(identifications).values(
            uuid=str(uuid.uuid4()), observation_id=obs.id, project=obs.project, account_id=account_id,
            taxon_id=taxon_id, body=note, vision=vision, current=True, withdrawn=False, disagreement=disagrees,
            previous_taxon_id=before_taxon,
            own=obs.contributor_id == account_id, expert=principal.is_expert_of(obs.project), created_at=now,
            updated_at=now)).inserted_primary_key[0]
        result = recompute(session, obs, project)
        audit(session, obs.project, obs.id, actor, "identify",
              {"identification_id": previous.id, "taxon_id": previous.taxon_id} if previous else None,
              {"identification_id": new_id, "taxon_id": taxon_id, "disagreement": disagrees, "vision": vision})
        done = changed(session, obs, project, actor, result, "added", new_id)
        item = listing.identification(session, principal, obs, new_id)
    after_commit(engine, done)
    return item


def _disagreement(session: Session, taxon: TaxonInfo, before_taxon: int | None, explicit: bool | None) -> bool | None:
    """The flag a new identification gets (``rules.disagreement_flag``): against the observation's
    taxon before it; an explicit disagreement stands only for an ancestor of that taxon."""
    previous = taxa_by_id(session, [before_taxon]).get(before_taxon) if before_taxon is not None else None
    lineage = (*previous.ancestry, previous.id) if previous is not None else None
    return rules.disagreement_flag((*taxon.ancestry, taxon.id), lineage, explicit)


def _own_identification(engine: Engine, session: Session, principal: Principal,
                        ident_id: int) -> tuple[Any, Observation, ProjectContext]:
    """The caller's identification ``ident_id`` (read again once its observation is locked); 404
    when it does not exist or its observation is not readable, 403 ``not_your_identification``."""
    missing = NotFound(f"no identification {ident_id}", code="identification_not_found")
    obs_id = session.scalar(select(identifications.c.observation_id).where(identifications.c.id == ident_id))
    if obs_id is None:
        raise missing
    try:
        obs, project = readable_observation(engine, session, principal, obs_id, lock=True)
    except NotFound:
        raise missing from None
    row = session.execute(select(identifications).where(identifications.c.id == ident_id)).first()
    if row is None:
        raise missing
    if principal.account_id is None or row.account_id != principal.account_id:
        raise Forbidden(f"identification {ident_id} is someone else's: only its author withdraws or restores it",
                        code="not_your_identification")
    return row, obs, project


def withdraw(engine: Engine, principal: Principal, ident_id: int, actor: str | None = None) -> dict[str, Any]:
    """The author withdraws their identification: it stays, not current, marked withdrawn.
    Withdrawing it again changes nothing."""
    return _set_withdrawn(engine, principal, ident_id, True, actor or principal.actor)


def restore(engine: Engine, principal: Principal, ident_id: int, actor: str | None = None) -> dict[str, Any]:
    """The author makes an identification of theirs current again (withdrawn or replaced); their
    other current one stops being current. Restoring a current one changes nothing."""
    return _set_withdrawn(engine, principal, ident_id, False, actor or principal.actor)


def _set_withdrawn(engine: Engine, principal: Principal, ident_id: int, withdrawn: bool, actor: str) -> dict[str, Any]:
    done: Pending | None = None
    with transaction(engine.sessions) as session:
        row, obs, project = _own_identification(engine, session, principal, ident_id)
        unchanged = row.withdrawn if withdrawn else row.current
        if not unchanged:
            now = utcnow()
            if not withdrawn:  # one current identification per person
                session.execute(update(identifications).where(
                    identifications.c.observation_id == obs.id, identifications.c.account_id == row.account_id,
                    identifications.c.current.is_(True)).values(current=False, updated_at=now))
            session.execute(update(identifications).where(identifications.c.id == ident_id)
                            .values(withdrawn=withdrawn, current=not withdrawn, updated_at=now))
            result = recompute(session, obs, project)
            state = {"identification_id": ident_id, "taxon_id": row.taxon_id}
            audit(session, obs.project, obs.id, actor, "withdraw_identification" if withdrawn else
                  "restore_identification", {**state, "current": row.current, "withdrawn": row.withdrawn},
                  {**state, "current": not withdrawn, "withdrawn": withdrawn})
            done = changed(session, obs, project, actor, result, "withdrawn" if withdrawn else "restored", ident_id)
        item = listing.identification(session, principal, obs, ident_id)
    if done is not None:
        after_commit(engine, done)
    return item


def vote(engine: Engine, principal: Principal, obs_id: int, metric: str, agree: bool,
         actor: str | None = None) -> dict[str, Any]:
    """The caller's data-quality vote on ``metric`` (agree or disagree), or a change of it; 409
    ``already_voted`` for the same vote again, 422 ``unknown_metric``."""
    account_id = _person(principal, "voting")
    check_metric(metric)
    actor = actor or principal.actor
    with transaction(engine.sessions) as session:
        obs, project = readable_observation(engine, session, principal, obs_id, lock=True)
        mine = ((quality_votes.c.observation_id == obs.id) & (quality_votes.c.account_id == account_id)
                & (quality_votes.c.metric == metric))
        before = session.scalar(select(quality_votes.c.agree).where(mine))
        if before is not None and bool(before) == agree:
            raise Conflict(f"you already voted {'agree' if agree else 'disagree'} on {metric!r} of observation "
                           f"{obs_id}", code="already_voted")
        if before is None:
            session.execute(insert(quality_votes).values(observation_id=obs.id, account_id=account_id, metric=metric,
                                                         agree=agree, created_at=utcnow()))
        else:
            session.execute(update(quality_votes).where(mine).values(agree=agree, created_at=utcnow()))
        _voted(session, obs, actor, metric, before, agree)
        done = Pending(obs.id, project, actor, [])
    after_commit(engine, done)
    return quality(engine, principal, obs_id)


def unvote(engine: Engine, principal: Principal, obs_id: int, metric: str, actor: str | None = None) -> None:
    """The caller takes back their vote on ``metric``; 404 ``vote_not_found`` when there is none."""
    account_id = _person(principal, "voting")
    check_metric(metric)
    actor = actor or principal.actor
    with transaction(engine.sessions) as session:
        obs, project = readable_observation(engine, session, principal, obs_id, lock=True)
        mine = ((quality_votes.c.observation_id == obs.id) & (quality_votes.c.account_id == account_id)
                & (quality_votes.c.metric == metric))
        before = session.scalar(select(quality_votes.c.agree).where(mine))
        if before is None:
            raise NotFound(f"you have no vote on {metric!r} of observation {obs_id}", code="vote_not_found")
        session.execute(delete(quality_votes).where(mine))
        _voted(session, obs, actor, metric, before, None)
        done = Pending(obs.id, project, actor, [])
    after_commit(engine, done)


def _voted(session: Session, obs: Observation, actor: str, metric: str, before: bool | None,
           after: bool | None) -> None:
    ensure_row(session, obs)
    audit(session, obs.project, obs.id, actor, "quality_vote", {"metric": metric, "agree": before},
          {"metric": metric, "agree": after})
    obs.assess_due_at = utcnow()  # owed again: cleared by the grading after the commit


def quality(engine: Engine, principal: Principal, obs_id: int) -> dict[str, Any]:
    """The observation's votes and grade as the caller sees them (``listing.summary``)."""
    with transaction(engine.readers) as session:
        obs, _project = readable_observation(engine, session, principal, obs_id, lock=False)
        return listing.summary(session, principal, obs)


def set_preference(engine: Engine, principal: Principal, obs_id: int, prefers_community_taxon: bool,
                   actor: str | None = None) -> dict[str, Any]:
    """The observer opts in to (True) or out of the community taxon: opted out, the observation's
    taxon is their own identification's (iNaturalist's ``prefers_community_taxon``). 403
    ``not_the_observer`` for anyone else."""
    actor = actor or principal.actor
    with transaction(engine.sessions) as session:
        obs, project = readable_observation(engine, session, principal, obs_id, lock=True)
        if principal.account_id is None or obs.contributor_id != principal.account_id:
            raise Forbidden("only the observer chooses whether the community taxon is the observation's",
                            code="not_the_observer")
        before = session.scalar(select(observation_taxa.c.prefers_community_taxon)
                                .where(observation_taxa.c.observation_id == obs.id))
        before = True if before is None else bool(before)
        done = None
        if before != prefers_community_taxon:
            result = recompute(session, obs, project, prefers_community_taxon=prefers_community_taxon)
            audit(session, obs.project, obs.id, actor, "taxon_preference",
                  {"prefers_community_taxon": before}, {"prefers_community_taxon": prefers_community_taxon})
            done = changed(session, obs, project, actor, result, None, None)
    if done is not None:
        after_commit(engine, done)
    return quality(engine, principal, obs_id)


def changed(session: Session, obs: Observation, project: ProjectContext, actor: str, result: Recomputed,
             kind: str | None, ident_id: int | None) -> Pending:
    """Audit a community taxon that moved, mark the grade owed, and say what plugins are told."""
    now = utcnow()
    decision = result.decision
    ids = [decision.community.taxon_id, result.before_taxon_id]
    row = None
    if ident_id is not None:
        row = session.execute(select(identifications.c.taxon_id, identifications.c.account_id)
                              .where(identifications.c.id == ident_id)).one()
        ids.append(row.taxon_id)
    taxa = taxa_by_id(session, [i for i in ids if i is not None])
    changes: list[IdentificationChange] = []
    if kind is not None and row is not None:
        changes.append(IdentificationChange(
            kind=kind, observation_id=obs.id, project=obs.project, taxon_id=row.taxon_id,  # type: ignore[arg-type]
            taxon_name=taxa[row.taxon_id].name if row.taxon_id in taxa else None, at=now, identification_id=ident_id,
            account_id=row.account_id, category=decision.categories.get(ident_id)))  # type: ignore[arg-type]
    if result.community_changed:
        after = decision.community.taxon_id
        audit(session, obs.project, obs.id, actor, "community_taxon",
              {"taxon_id": result.before_taxon_id, "score": result.before_score},
              {"taxon_id": after, "score": decision.community.score})
        changes.append(IdentificationChange(
            kind="community_taxon", observation_id=obs.id, project=obs.project, taxon_id=after,
            taxon_name=taxa[after].name if after in taxa else None, at=now,
            previous_taxon_id=result.before_taxon_id))
    obs.assess_due_at = now  # owed again: cleared by the grading after the commit
    return Pending(obs.id, project, actor, changes)


def after_commit(engine: Engine, done: Pending) -> None:
    """The grade, audited when it changed, then ``on_identification`` of every enabled plugin.
    Never raises: the change is committed, and ``assess_due_at`` tells the workers' recovery loop
    to grade it if this fails."""
    try:
        assess(engine, done.obs_id)
        audit_grade(engine, done.obs_id, done.actor)
    except Exception as exc:  # noqa: BLE001 (committed; recovery grades it)
        log.warning("observation %s: identifications stored, but grading failed (%s: %s); the workers' recovery "
                    "loop will grade it", done.obs_id, type(exc).__name__, exc, exc_info=True)
    if done.changes:
        tell(engine, done.obs_id, done.project, done.changes)


def audit_grade(engine: Engine, obs_id: int, actor: str) -> None:
    """Audit ``grade`` (before, after) when the observation's grade differs from the one the service
    last audited; under the observation's lock, so racing requests audit a change once."""
    with transaction(engine.sessions) as session:
        obs = lock_observation(session, obs_id)
        if obs is None:
            return
        last = session.execute(select(observation_taxa.c.audited_grade)
                               .where(observation_taxa.c.observation_id == obs_id)).first()
        if last is not None and last.audited_grade != obs.grade:
            audit(session, obs.project, obs_id, actor, "grade", {"grade": last.audited_grade}, {"grade": obs.grade})
            session.execute(update(observation_taxa).where(observation_taxa.c.observation_id == obs_id)
                            .values(audited_grade=obs.grade))


def tell(engine: Engine, obs_id: int, project: ProjectContext, changes: list[IdentificationChange]) -> None:
    """``on_identification`` of every enabled plugin, one at a time, for each change; a failure is
    logged, never raised."""
    try:
        with transaction(engine.readers) as session:
            view = read_view(session, obs_id, engine.media)
    except NotFound:
        return  # deleted meanwhile
    for change in changes:
        for called in engine.host.call_each("on_identification", project, view.kind, change=change,
                                            observation=view, project=project, engine=engine):
            if called.error is not None:
                log.error("on_identification of plugin %r failed on observation %s (%s): %s", called.plugin, obs_id,
                          change.kind, called.error)
