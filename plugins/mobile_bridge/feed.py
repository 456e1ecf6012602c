"""The change feed: what an app shows its user about their observations and those they follow.

Entries (``feed_store``) are written from the core's hooks: ``results`` when an observation is
first assessed (the enrichments' summaries and the grade) or its results change, ``grade`` when
only the grade changes, ``moderation`` for a status change, ``deleted`` (a tombstone, no data)
when it is trashed or a follower can no longer read it, ``comment`` for others' comments,
``identification`` for others' identifications and community taxon changes. Each
goes to the contributor and to the followers who may read the observation, in the same
transaction as its webhook deliveries; the event stream and the webhook sender are woken after
the commit. Routes: the feed, marking entries seen, following (``feed_stream``: Server-Sent Events).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.api.access import can_read
from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import MAX_ID, EngineDep, ObsId, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.schemas import error_responses
from core.db.models import Account, Observation, Taxon, TaxonName
from core.db.session import transaction
from core.engine import Engine
from core.tokens import Principal, principal_of
from core.types import CommentView, Flag, IdentificationChange, ObservationView, ProjectContext
from core.views import observation_not_found
from plugins.mobile_bridge import feed_codesign, feed_store, feed_stream, webhook_delivery
from plugins.mobile_bridge.feed_store import NewEntry, told

SERVICE = "mobile_bridge"
router = APIRouter(prefix="/api/v1/mobile", tags=["mobile"])
router.include_router(feed_stream.router)


# -- what an entry says ----------------------------------------------------------------------


def _species(result: dict[str, Any]) -> dict[str, Any]:
    best = result.get("best") or next(iter(result.get("results") or []), None)
    if not best:
        return {"outcome": result.get("outcome"), "label": None, "scientific_name": None, "score": None}
    names = best.get("common_names") or []
    return {"outcome": result.get("outcome"), "label": names[0] if names else best.get("scientific_name"),
            "scientific_name": best.get("scientific_name"), "score": best.get("score")}


def _odour(result: dict[str, Any]) -> dict[str, Any]:
    nearest = next(iter(result.get("points_of_interest") or []), None)
    return {"nearest": {"name": nearest.get("name"), "distance_m": nearest.get("distance_m")} if nearest else None,
            "zone": result.get("zone"), "local_time": result.get("local_time")}


def _keys(result: dict[str, Any]) -> dict[str, Any]:
    return {"keys": sorted(result)}


SUMMARIES = {"species_id": _species, "odour": _odour}
"""Services whose results an app shows as such; any other's entry lists its result's keys."""


def summarise(enrichments: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The summary of each finished enrichment, by service name."""
    return {name: SUMMARIES.get(name, _keys)(result or {}) for name, result in sorted(enrichments.items())}


# -- who is told ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AsIf:
    """An observation as access sees it, in a given status."""

    project: str
    contributor_id: int | None
    status: str


def _follower_principals(session: Session, view: ObservationView) -> dict[int, Principal]:
    """The followers of ``view`` (its contributor left out), with their accounts' full rights."""
    ids = [a for a in feed_store.followers(session, view.id) if a != view.contributor_id]
    if not ids:
        return {}
    accounts = session.scalars(select(Account).where(Account.id.in_(ids)).options(selectinload(Account.memberships)))
    return {a.id: principal_of(a, None) for a in accounts}


def _readers(session: Session, view: ObservationView, project: ProjectContext) -> list[int]:
    """The contributor and the followers who may read the observation now."""
    now = _AsIf(view.project, view.contributor_id, view.status)
    found = [view.contributor_id] if view.contributor_id is not None else []
    return found + [a for a, p in _follower_principals(session, view).items() if can_read(p, now, project)]


def _record(session: Session, view: ObservationView, entries: list[NewEntry]) -> int:
    """Write the entries and their webhook deliveries; returns how many deliveries."""
    rows = feed_store.add_entries(session, view.id, view.project, entries)
    return webhook_delivery.enqueue(session, rows)


def _announce(engine: Engine, deliveries: int) -> None:
    """After the commit: wake this process's event streams, and its webhook sender if it has work."""
    feed_stream.notify(engine)
    if deliveries:
        webhook_delivery.wake(engine)


# -- hooks (plugin.py forwards them) ------------------------------------------------------------


def _assessment_news(session: Session, obs_id: int, grade: str,
                     summary: dict[str, Any]) -> tuple[str | None, str | None]:
    """(``results``, ``grade`` or None when nothing is new since the feed last told it; the grade it told)."""
    digest = hashlib.sha256(json.dumps(summary, sort_keys=True, default=str).encode()).hexdigest()
    feed_store.insert_ignore(session, told, [{"observation_id": obs_id, "grade": None, "results_digest": None}])
    last = session.execute(select(told).where(told.c.observation_id == obs_id).with_for_update()).one()
    news = "results" if last.results_digest != digest else "grade" if last.grade != grade else None
    if news:
        session.execute(told.update().where(told.c.observation_id == obs_id)
                        .values(grade=grade, results_digest=digest))
    return news, last.grade


def on_assessed(observation: ObservationView, flags: list[Flag], grade: str, project: ProjectContext,
                engine: Engine) -> None:
    """An observation's results are in: an entry in its contributor's (and followers') feed."""
    summary = summarise(observation.enrichments)
    with transaction(engine.sessions) as session:
        news, previous = _assessment_news(session, observation.id, grade, summary)
        if news is None:
            return
        payload = {"grade": grade, "results": summary} if news == "results" else {"grade": grade, "previous": previous}
        queued = _record(session, observation, [NewEntry(a, news, payload)
                                                for a in _readers(session, observation, project)])
    _announce(engine, queued)


def on_status_change(observation: ObservationView, old: str, new: str, project: ProjectContext,
                     engine: Engine) -> None:
    """A moderation decision in the feed. Trashed: a tombstone (``deleted``) for all; a follower who
    could read the observation and no longer may: a tombstone too."""
    before, after = (_AsIf(observation.project, observation.contributor_id, s) for s in (old, new))
    decision = {"status": new, "previous": old}
    with transaction(engine.sessions) as session:
        told_to: list[tuple[int, bool]] = []  # (account, may still read it)
        if observation.contributor_id is not None:
            told_to.append((observation.contributor_id, True))
        for account, principal in _follower_principals(session, observation).items():
            reads_now = can_read(principal, after, project)
            if reads_now or can_read(principal, before, project):
                told_to.append((account, reads_now))
        entries = [NewEntry(a, "moderation", decision) if reads and new != "trashed" else NewEntry(a, "deleted", None)
                   for a, reads in told_to]
        queued = _record(session, observation, entries)
    _announce(engine, queued)


def on_comment(comment: CommentView, observation: ObservationView, project: ProjectContext, engine: Engine) -> None:
    """A comment in the feed of the observation's contributor and followers, but its author's."""
    if comment.hidden:
        return
    with transaction(engine.sessions) as session:
        author = session.scalar(select(Account.display_name).where(Account.id == comment.account_id)) \
            if comment.account_id is not None else None
        payload = {"comment_id": comment.id, "author": author, "body": comment.body,
                   "created_at": comment.created_at.isoformat()}
        readers = [a for a in _readers(session, observation, project) if a != comment.account_id]
        queued = _record(session, observation, [NewEntry(a, "comment", payload) for a in readers])
    _announce(engine, queued)


def _taxon(session: Session, taxon_id: int | None, name: str | None = None) -> dict[str, Any] | None:
    """A taxon as an entry names it: scientific name, rank and English common name (None: none)."""
    if taxon_id is None:
        return None
    row = session.execute(select(Taxon.id, Taxon.scientific_name, Taxon.rank).where(Taxon.id == taxon_id)).first()
    if row is None:  # gone since: what the change said
        return {"id": taxon_id, "name": name, "rank": None, "common_name": None}
    common = session.scalar(select(TaxonName.name).where(TaxonName.taxon_id == taxon_id, TaxonName.lexicon == "en")
                            .order_by(TaxonName.preferred.desc(), TaxonName.id).limit(1))
    return {"id": row.id, "name": row.scientific_name, "rank": row.rank, "common_name": common}


def on_identification(change: IdentificationChange, observation: ObservationView, project: ProjectContext,
                      engine: Engine) -> None:
    """Someone else's identification, or a new community taxon, in the feed of the observation's
    contributor and followers. Never who identified it (the identifications API shows them as the
    comments API shows authors, and forgets an erased person): the entry names the taxon."""
    if change.kind not in ("added", "community_taxon"):
        return
    with transaction(engine.sessions) as session:
        taxon = _taxon(session, change.taxon_id, change.taxon_name)
        payload: dict[str, Any] = {"kind": change.kind, "taxon": taxon, "category": change.category,
                                   "at": change.at.isoformat()}
        if change.kind == "added":
            payload["identification_id"] = change.identification_id
        else:
            payload["previous"] = _taxon(session, change.previous_taxon_id)
        readers = _readers(session, observation, project)
        if change.kind == "added":
            readers = [a for a in readers if a != change.account_id]
        queued = _record(session, observation, [NewEntry(a, "identification", payload) for a in readers])
    _announce(engine, queued)


# -- routes ------------------------------------------------------------------------------------


class FeedEntryOut(BaseModel):
    id: int = Field(description="the entry's id: the cursor to continue from, and the event id of the stream")
    type: Literal["results", "grade", "moderation", "comment", "identification", "deleted", "feedback", "data_use"]
    observation_id: int = Field(description="0 for an entry about you rather than one observation (feedback, "
                                "data_use)")
    project: str
    created_at: str
    seen: bool
    data: dict[str, Any] | None = Field(description="by type: results {grade, results: {service: summary}}; "
                                        "grade {grade, previous}; moderation {status, previous}; comment "
                                        "{comment_id, author, body, created_at}; identification {kind: added or "
                                        "community_taxon, taxon: {id, name, rank, common_name}, category, at, "
                                        "identification_id (added) or previous (community_taxon: the taxon before, "
                                        "or null)}; deleted: null; feedback {feedback_id, service, kind, state: "
                                        "planned, done, declined or new, note, text}; data_use {month, downloads, "
                                        "purposes: {purpose: downloads}, text: \"your observations were used in 12 "
                                        "downloads this month: 9 research, 3 education\"}")


class FeedPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "unread": 1, "next_cursor": 7, "items": [{
            "id": 7, "type": "results", "observation_id": 42, "project": "wildlife",
            "created_at": "2026-05-01T07:31:02+00:00", "seen": False,
            "data": {"grade": "needs_id", "results": {"species_id": {
                "outcome": "identified", "label": "red fox", "scientific_name": "Vulpes vulpes", "score": 0.91}}}}]}]})

    unread: int = Field(description="how many of your entries are not marked seen")
    items: list[FeedEntryOut]
    next_cursor: int | None = Field(description="the last item's id (send it as `cursor` for the next page); "
                                    "the cursor given when there are no items")


class SeenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"up_to": 7}]})

    up_to: int = Field(ge=1, le=MAX_ID, description="mark your entries up to this id (included) seen")


class SeenOut(BaseModel):
    marked: int
    unread: int


class FollowOut(BaseModel):
    observation_id: int
    following: bool


def _account(principal: Principal, what: str) -> int:
    if principal.account_id is None:
        raise deny(principal, what)
    return principal.account_id


@router.get("/feed", response_model=FeedPage, openapi_extra=TOKEN_REQUIRED_EXTRA,
            summary="Your change feed, oldest first from a cursor",
            description="What to show about your observations and those you follow: enrichment results, grade "
            "changes, moderation decisions, others' comments and identifications, community taxon changes and "
            "deletions (`deleted`, a tombstone); the state maintainers gave your feedback on a service (`feedback`) "
            "and how often your observations were downloaded this month (`data_use`). `cursor`: the "
            "id of the last entry you have (0 or none: from the start); `per_page=0`: only the unread count.",
            responses=error_responses(401, 422, 429))
def get_feed(engine: EngineDep, principal: PrincipalDep,
             cursor: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
             per_page: Annotated[int, Query(ge=0, le=200)] = 50) -> dict[str, Any]:
    account = _account(principal, "reading the feed")
    feed_codesign.catch_up(engine, account)
    items = feed_store.entries_after(engine, account, cursor, per_page) if per_page else []
    webhook_delivery.wake_if_due(engine)
    return {"unread": feed_store.unread_count(engine, account), "items": items,
            "next_cursor": items[-1]["id"] if items else cursor}


@router.post("/feed/seen", response_model=SeenOut, openapi_extra=TOKEN_REQUIRED_EXTRA,
             summary="Mark your feed seen up to an entry", description="Idempotent; answers how many were marked "
             "now and how many are still unread.", responses=error_responses(401, 422, 429))
def post_seen(body: SeenIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    account = _account(principal, "marking the feed seen")
    marked = feed_store.mark_seen(engine, account, body.up_to)
    return {"marked": marked, "unread": feed_store.unread_count(engine, account)}


def _followable(engine: Engine, principal: Principal, obs_id: int) -> None:
    with transaction(engine.readers) as session:
        obs = session.execute(select(Observation.project, Observation.contributor_id, Observation.status)
                              .where(Observation.id == obs_id)).one_or_none()
    if obs is None or not can_read(principal, obs, engine.registry.project(obs.project)):
        raise observation_not_found(obs_id)
    if not engine.registry.project(obs.project).enables(SERVICE):
        raise ApiError(409, "feed_off", f"project {obs.project!r} does not use the mobile bridge: its "
                       "observations have no feed to follow")


@router.post("/observations/{obs_id}/follow", response_model=FollowOut, openapi_extra=TOKEN_REQUIRED_EXTRA,
             summary="Follow an observation", description="Its results, grade changes, moderation and comments come "
             "to your feed while you may read it. Only an observation you may read (404 otherwise, as for a missing "
             "one); 409 `feed_off` when its project does not use the mobile bridge. Idempotent.",
             responses=error_responses(401, 404, 409, 422, 429))
def post_follow(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    account = _account(principal, "following")
    _followable(engine, principal, obs_id)
    feed_store.follow(engine, account, obs_id)
    return {"observation_id": obs_id, "following": True}


@router.delete("/observations/{obs_id}/follow", response_model=FollowOut, openapi_extra=TOKEN_REQUIRED_EXTRA,
               summary="Stop following an observation", description="Idempotent; works also for one you may no "
               "longer read.", responses=error_responses(401, 422, 429))
def delete_follow(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    feed_store.unfollow(engine, _account(principal, "unfollowing"), obs_id)
    return {"observation_id": obs_id, "following": False}
