"""The expert queue's query: needs_id observations across the projects that enable the service,
matching the caller's subscriptions, as the caller may read and see them, best first.

What may be read is ``core.api.access``'s rule, written as SQL per project: all observations but
trashed ones for its staff; published ones of a public project for everyone else. Never a
private place's observation, unless the caller is staff of its project. A place filter tests the
place as the caller is shown it (``core.privacy.visible_coordinate``: an obscured place on its
public cell), so a box can never reveal more than the output does. The caller's own observations,
and those they already identify, are left out: the queue is what is left for them to do.

The observation's taxon is the one the identification service keeps (``observation_taxa``), or
while it has none, species_id's best suggestion's ``taxon_id``. Order: no identification yet,
then with disagreements, then the rest; within each the longest waiting (oldest submitted) first.

One page costs a fixed number of reads whatever its size: the page of ids with its counts, the
total, the observations (``core.read_model``: four reads), and the taxa named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import ColumnElement, and_, case, false, func, not_, or_, select
from sqlalchemy.orm import Session

from core.api.access import render
from core.db.models import Enrichment, Observation, Taxon
from core.engine import Engine
from core.place_filter import bbox_where
from core.privacy import visible_coordinate
from core.read_model import observation_rows, read_observations
from core.tokens import Principal
from core.types import ProjectContext
from plugins.identification.db import identifications, observation_taxa
from plugins.identification.queue_subscriptions import Subscription, TaxonRef, taxon_and_below

MEDIA_URL = "/api/v1/observations/{obs_id}/media/{media_id}"
SUGGESTER = "species_id"

_obs = Observation.__table__
_taxa = Taxon.__table__
_suggestion = Enrichment.__table__.alias("suggestion")
# "done" tested here, not in the join: the join then has only the (observation, plugin) key to use
_suggested_taxon = case((_suggestion.c.status == "done", _suggestion.c.result[("best", "taxon_id")].as_integer()))
_obs_taxon = func.coalesce(observation_taxa.c.taxon_id, _suggested_taxon)
_matched = _taxa.alias("matched")


@dataclass(frozen=True)
class QueueRequest:
    principal: Principal
    subscriptions: Sequence[Subscription]
    projects: Sequence[ProjectContext]
    taxon: TaxonRef | None
    page: int
    per_page: int


def _project_scope(project: ProjectContext, request: QueueRequest) -> ColumnElement[bool] | None:
    """Observations of ``project`` the caller may read, matching one of the subscriptions."""
    staff = request.principal.is_staff_of(project.slug)
    if staff:
        readable = _obs.c.status != "trashed"
    elif project.public:
        readable = and_(_obs.c.status == "published", _obs.c.location_privacy != "private")
    else:
        return None
    lat, lon = (visible_coordinate(column, project, staff=staff, privacy_column=_obs.c.location_privacy)
                for column in (_obs.c.lat, _obs.c.lon))
    matches = []
    for sub in request.subscriptions:
        parts = []
        if sub.taxon is not None:
            parts.append(taxon_and_below(sub.taxon, _matched.c.id, _matched.c.ancestry))
        if sub.place is not None:
            parts.append(bbox_where(sub.place, lat, lon))
        matches.append(and_(*parts))
    return and_(_obs.c.project == project.slug, readable, or_(*matches))


def _where(request: QueueRequest) -> list[ColumnElement[bool]]:
    scopes = [s for s in (_project_scope(p, request) for p in request.projects) if s is not None] \
        if request.subscriptions else []
    me = request.principal.account_id
    mine = select(identifications.c.id).where(identifications.c.observation_id == _obs.c.id,
                                              identifications.c.account_id == me, identifications.c.current)
    where = [_obs.c.grade == "needs_id", or_(*scopes) if scopes else false(),
             or_(_obs.c.contributor_id.is_(None), _obs.c.contributor_id != me), not_(mine.exists())]
    if request.taxon is not None:
        where.append(taxon_and_below(request.taxon, _matched.c.id, _matched.c.ancestry))
    return where


def _joined() -> Any:
    return (_obs.outerjoin(observation_taxa, observation_taxa.c.observation_id == _obs.c.id)
            .outerjoin(_suggestion, and_(_suggestion.c.observation_id == _obs.c.id, _suggestion.c.plugin == SUGGESTER))
            .outerjoin(_matched, _matched.c.id == _obs_taxon))


def _bucket() -> ColumnElement[int]:
    """0: no identification yet; 1: identifications that disagree; 2: the rest."""
    count = func.coalesce(observation_taxa.c.identifications_count, 0)
    return case((count == 0, 0), (func.coalesce(observation_taxa.c.disagreements, 0) > 0, 1), else_=2)


def _taxa_named(session: Session, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(select(_taxa.c.id, _taxa.c.scientific_name, _taxa.c.rank).where(_taxa.c.id.in_(ids)))
    return {r.id: {"id": r.id, "name": r.scientific_name, "rank": r.rank} for r in rows}


def _suggestion_of(data: dict[str, Any]) -> dict[str, Any] | None:
    enrichment = data.get("enrichments", {}).get(SUGGESTER) or {}
    best = (enrichment.get("result") or {}).get("best") if enrichment.get("status") == "done" else None
    if not best:
        return None
    names = best.get("common_names") or []
    return {"taxon_id": best.get("taxon_id"), "name": best.get("scientific_name"),
            "common_name": names[0] if names else None, "score": best.get("score")}


def _photos(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": m["id"], "url": m.get("url"), "content_type": m["content_type"], "width": m.get("width"),
             "height": m.get("height")} for m in data.get("media", []) if m["content_type"].startswith("image/")]


def queue_page(engine: Engine, session: Session, request: QueueRequest) -> dict[str, Any]:
    """One page of the queue: ``{total_results, page, per_page, results}``."""
    where = _where(request)
    ordered = (select(_obs.c.id, observation_taxa.c.identifications_count, observation_taxa.c.agreements,
                      observation_taxa.c.disagreements, observation_taxa.c.community_taxon_id,
                      _matched.c.id.label("taxon_id"))
               .select_from(_joined()).where(*where)
               .order_by(_bucket(), _obs.c.created_at, _obs.c.id)
               .limit(request.per_page).offset((request.page - 1) * request.per_page))
    rows = session.execute(ordered).all()
    total = session.scalar(select(func.count()).select_from(_joined()).where(*where)) or 0
    stored = {o.data["id"]: o for o in read_observations(
        session, observation_rows().where(_obs.c.id.in_([r.id for r in rows])), media_url=MEDIA_URL)} if rows else {}
    named = _taxa_named(session, {t for r in rows for t in (r.community_taxon_id, r.taxon_id) if t is not None})
    results = []
    for row in rows:
        obs = stored[row.id]
        data = render(engine, request.principal, obs, obs.data)
        results.append({
            "observation": data,
            "photos": _photos(data),
            "suggestion": _suggestion_of(data),
            "taxon": named.get(row.taxon_id) if row.taxon_id is not None else None,
            "identifications_count": row.identifications_count or 0,
            "agreements": row.agreements or 0,
            "disagreements": row.disagreements or 0,
            "community_taxon": named.get(row.community_taxon_id) if row.community_taxon_id is not None else None,
        })
    return {"total_results": total, "page": request.page, "per_page": request.per_page, "results": results}
