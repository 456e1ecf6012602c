"""The SQL behind ``/inat/v1/observations``: which observations (published, of the served
projects, narrowed by the iNaturalist filters), in which order, and everything a page shows,
read in a fixed number of queries whatever its size (the page with its "wild" votes counted, its
count, then its media, its identifications and the taxa named, each for the whole page at once).

Every filter works on what the public is shown: the observation's taxon and grade, its dates,
its observer's handle, and for places the coordinates as the public sees them
(``core.privacy.visible_coordinate``: on the project's grid, on the obscured cell, NULL when
private), so that no filter, order or count tells more than the answers do. There is no order
by place.
"""

from __future__ import annotations

from collections import defaultdict, namedtuple
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any, Iterable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import (ColumnElement, Select, and_, bindparam, case, exists, false, func, literal, null, or_,
                        select)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from core.db.models import MediaBlob, Observation, ObservationMedia, Taxon, TaxonName
from core.privacy import visible_coordinate
from core.taxonomy.names import search_key
from core.taxonomy.search import at_or_below
from core.types import ProjectContext
from plugins.identification.db import identifications, observation_taxa, quality_votes
from plugins.identification.inat_params import Moment, invalid

obs = Observation.__table__
ot = observation_taxa
_media = ObservationMedia.__table__
_blobs = MediaBlob.__table__
_taxa = Taxon.__table__
_names = TaxonName.__table__
iconic = _taxa.alias("iconic")
obs_taxon = _taxa.alias("obs_taxon")

PAGE_COLUMNS = (obs.c.id, obs.c.project, obs.c.contributor_id, obs.c.observed_at, obs.c.lat, obs.c.lon,
                obs.c.accuracy_m, obs.c.licence, obs.c.location_privacy, obs.c.grade, obs.c.created_at,
                obs.c.updated_at,
                # only the fields shown (description, captive...) as text, not the whole JSON decoded
                *(obs.c.fields[name].as_string().label(f"f_{name}")
                  for name in ("description", "notes", "note", "species_guess", "place_guess", "captive")),
                ot.c.taxon_id, ot.c.community_taxon_id, ot.c.identifications_count, ot.c.agreements,
                ot.c.disagreements, ot.c.updated_at.label("taxa_updated_at"),
                # the "wild" votes (iNaturalist's captive is that metric failing), counted per row
                *(select(func.count()).where(quality_votes.c.observation_id == obs.c.id,
                                             quality_votes.c.metric == "wild", quality_votes.c.agree.is_(agree))
                  .scalar_subquery().label(f"wild_{'yes' if agree else 'no'}") for agree in (True, False)))


PageRow = namedtuple("PageRow", [c.key for c in PAGE_COLUMNS])  # type: ignore[misc]
Executor = Session | Connection
"""Where the queries run: a session, or its connection (quicker for Core statements)."""


@dataclass(frozen=True)
class Filters:
    """An ``/inat/v1/observations`` request's filters, parsed (``inat_api``)."""

    projects: dict[str, ProjectContext]
    """The served projects in scope (all of them, or those ``project_id`` names)."""
    ids: list[int] | None = None
    taxon_ids: list[int] | None = None
    accounts: list[int] | None = None
    """The observers ``user_id`` / ``user_login`` name (empty: they name nobody)."""
    d1: Moment | None = None
    d2: Moment | None = None
    created_d1: Moment | None = None
    created_d2: Moment | None = None
    grades: list[str] | None = None
    id_above: int | None = None
    id_below: int | None = None
    updated_since: Moment | None = None
    q: str | None = None
    photos: bool | None = None
    sounds: bool | None = None
    geo: bool | None = None
    bbox: tuple[float, float, float, float] | None = None
    """swlat, swlng, nelat, nelng."""


def _joined(with_taxon: bool) -> Any:
    joined = obs.outerjoin(ot, ot.c.observation_id == obs.c.id)
    return joined.outerjoin(obs_taxon, obs_taxon.c.id == ot.c.taxon_id) if with_taxon else joined


def _uses_taxon(filters: Filters) -> bool:
    return bool(filters.taxon_ids) or bool(filters.q)


def _day_start(day: Any, zone: ZoneInfo) -> datetime | None:
    try:
        return datetime.combine(day, time(0), zone).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def _next_day(day: Any) -> Any:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        return None


def _bounds(column: Any, low: Moment | None, high: Moment | None, zone: ZoneInfo) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if low is not None:
        start = low.instant if low.instant is not None else _day_start(low.day, zone)
        if start is not None:
            out.append(column >= start)
    if high is not None:
        if high.instant is not None:
            out.append(column <= high.instant)
        else:
            following = _next_day(high.day)
            end = _day_start(following, zone) if following is not None else None
            if end is not None:
                out.append(column < end)
    return out


def _time_range(column: Any, low: Moment | None, high: Moment | None,
                projects: dict[str, ProjectContext]) -> ColumnElement[bool] | None:
    """``low <= column <= high``; a bare day is a day of each project's own time zone."""
    if low is None and high is None:
        return None
    days = any(m is not None and m.day is not None for m in (low, high))
    if not days:
        return and_(*_bounds(column, low, high, ZoneInfo("UTC")))
    by_zone: defaultdict[str, list[str]] = defaultdict(list)
    for slug, project in projects.items():
        by_zone[project.timezone].append(slug)
    parts = [and_(obs.c.project.in_(slugs), *_bounds(column, low, high, ZoneInfo(zone)))
             for zone, slugs in sorted(by_zone.items())]
    return or_(*parts) if parts else false()


def known_taxa(session: Executor, taxon_ids: Sequence[int]) -> list[Any]:
    """The taxa ``taxon_ids`` name (id and ancestry); 422 naming those that do not exist."""
    rows = session.execute(select(_taxa.c.id, _taxa.c.ancestry).where(_taxa.c.id.in_(sorted(set(taxon_ids))))).all()
    unknown = sorted(set(taxon_ids) - {r.id for r in rows})
    if unknown:
        raise invalid("taxon_id", f"no taxon {', '.join(map(str, unknown))}")
    return list(rows)


def taxon_scope(session: Executor, taxon_ids: Sequence[int]) -> ColumnElement[bool]:
    """The observation's taxon is one of ``taxon_ids`` or below one; 422 for a taxon that does not exist."""
    return at_or_below(known_taxa(session, taxon_ids), obs_taxon.c.id, obs_taxon.c.ancestry)


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def name_scope(q: str) -> ColumnElement[bool]:
    """The observation's taxon has a name (scientific or common, any language) with a word that
    starts with ``q`` (compared as ``core.taxonomy.names.search_key`` keeps names: lower case, no accents)."""
    escaped = like_escape(search_key(q))
    starts, inside = escaped + "%", "% " + escaped + "%"
    named = select(_names.c.taxon_id).where(or_(_names.c.search.like(starts, escape="\\"),
                                                _names.c.search.like(inside, escape="\\")))
    scientific = func.lower(obs_taxon.c.scientific_name)
    return or_(scientific.like(starts, escape="\\"), scientific.like(inside, escape="\\"),
               obs_taxon.c.id.in_(named))


def _visible(column: Any, projects: dict[str, ProjectContext]) -> ColumnElement[Any]:
    """A coordinate as the public sees it, whichever served project the row is of."""
    whens = [(obs.c.project == slug, visible_coordinate(column, project, staff=False,
                                                         privacy_column=obs.c.location_privacy))
             for slug, project in projects.items()]
    return case(*whens, else_=null()) if whens else null()


def _bbox(box: tuple[float, float, float, float], projects: dict[str, ProjectContext]) -> ColumnElement[bool]:
    swlat, swlng, nelat, nelng = box
    lat, lon = _visible(obs.c.lat, projects), _visible(obs.c.lon, projects)
    lons = lon.between(swlng, nelng) if swlng <= nelng else or_(lon >= swlng, lon <= nelng)  # across 180°
    return and_(lat.between(swlat, nelat), lons)


def _has_media(prefix: str) -> ColumnElement[bool]:
    return exists(select(literal(1)).select_from(_media.join(_blobs, _blobs.c.sha256 == _media.c.sha256))
                  .where(_media.c.observation_id == obs.c.id, _blobs.c.content_type.startswith(prefix)))


def conditions(session: Executor, filters: Filters) -> list[ColumnElement[bool]]:
    """The WHERE of the list: published, of the projects in scope, and every filter given."""
    f = filters
    out: list[ColumnElement[bool]] = [obs.c.status == "published", obs.c.project.in_(sorted(f.projects))]
    if f.ids is not None:
        out.append(obs.c.id.in_(f.ids))
    if f.taxon_ids:
        out.append(taxon_scope(session, f.taxon_ids))
    if f.q:
        out.append(name_scope(f.q))
    if f.accounts is not None:
        out.append(obs.c.contributor_id.in_(f.accounts) if f.accounts else false())
    for column, low, high in ((obs.c.observed_at, f.d1, f.d2), (obs.c.created_at, f.created_d1, f.created_d2)):
        scope = _time_range(column, low, high, f.projects)
        if scope is not None:
            out.append(scope)
    if f.grades:
        out.append(func.coalesce(obs.c.grade, "casual").in_(f.grades))
    if f.id_above is not None:
        out.append(obs.c.id > f.id_above)
    if f.id_below is not None:
        out.append(obs.c.id < f.id_below)
    if f.updated_since is not None:
        since = f.updated_since.instant or datetime.combine(f.updated_since.day, time(0), timezone.utc)
        out.append(or_(obs.c.updated_at >= since, ot.c.updated_at >= since))
    if f.geo is not None:
        located = obs.c.location_privacy.in_(("open", "obscured"))
        out.append(located if f.geo else ~located)
    for wanted, prefix in ((f.photos, "image/"), (f.sounds, "audio/")):
        if wanted is not None:
            out.append(_has_media(prefix) if wanted else ~_has_media(prefix))
    if f.bbox is not None:
        out.append(_bbox(f.bbox, f.projects))
    return out


def _order_column(order_by: str) -> Any:
    if order_by == "created_at":
        return obs.c.created_at
    if order_by == "observed_on":
        return obs.c.observed_at
    if order_by == "updated_at":  # an identification changes the observation as iNaturalist shows it
        return case((ot.c.updated_at > obs.c.updated_at, ot.c.updated_at), else_=obs.c.updated_at)
    return obs.c.id


def page_query(filters: Filters, where: list[ColumnElement[bool]], order_by: str, order: str) -> Select[Any]:
    """The page's rows (``PAGE_COLUMNS``), sorted, ties broken by id; narrow with limit and offset."""
    column = _order_column(order_by)
    direction = (lambda c: c.asc()) if order == "asc" else (lambda c: c.desc())
    keys = [direction(column)] if column is obs.c.id else [direction(column), direction(obs.c.id)]
    return select(*PAGE_COLUMNS).select_from(_joined(_uses_taxon(filters))).where(*where).order_by(*keys)


def count(session: Executor, filters: Filters, where: list[ColumnElement[bool]]) -> int:
    query = select(func.count()).select_from(_joined(_uses_taxon(filters))).where(*where)
    return int(session.execute(query).scalar_one())


# -- what a page shows, read for all its observations at once ---------------------------------------

_MEDIA = (select(_media.c.id, _media.c.observation_id, _blobs.c.content_type, _blobs.c.width, _blobs.c.height)
          .join(_blobs, _blobs.c.sha256 == _media.c.sha256)
          .where(_media.c.observation_id.in_(bindparam("ids", expanding=True)))
          .order_by(_media.c.observation_id, _media.c.position, _media.c.id))
_IDENTS = (select(identifications.c.id, identifications.c.uuid, identifications.c.observation_id,
                  identifications.c.account_id, identifications.c.taxon_id, identifications.c.body,
                  identifications.c.vision, identifications.c.current, identifications.c.disagreement,
                  identifications.c.category, identifications.c.created_at)
           .where(identifications.c.observation_id.in_(bindparam("ids", expanding=True)))
           .order_by(identifications.c.created_at, identifications.c.id))
TAXON_COLUMNS = (_taxa.c.id, _taxa.c.scientific_name, _taxa.c.rank, _taxa.c.rank_level, _taxa.c.parent_id,
                 _taxa.c.ancestry, _taxa.c.iconic_taxon_id, _taxa.c.is_active, _taxa.c.gbif_key,
                 iconic.c.scientific_name.label("iconic_name"))
TaxonRow = namedtuple("TaxonRow", [c.key for c in TAXON_COLUMNS])  # type: ignore[misc]
# with each taxon's common names in one language, its preferred one first
_TAXA = (select(*TAXON_COLUMNS, _names.c.name.label("common"))
         .outerjoin(iconic, iconic.c.id == _taxa.c.iconic_taxon_id)
         .outerjoin(_names, and_(_names.c.taxon_id == _taxa.c.id, _names.c.lexicon == bindparam("lexicon")))
         .where(_taxa.c.id.in_(bindparam("taxon_ids", expanding=True)))
         .order_by(_taxa.c.id, _names.c.preferred.desc(), _names.c.id))


@dataclass(frozen=True)
class TaxaRead:
    """Taxa by id with their common name in the language asked (when they have one)."""

    rows: dict[int, Any]
    common: dict[int, str]


def read_taxa(session: Executor, taxon_ids: Iterable[int], lexicon: str) -> TaxaRead:
    """The taxa of ``taxon_ids`` with their iconic group's name and common name (one query)."""
    wanted = sorted({t for t in taxon_ids if t is not None})
    rows: dict[int, Any] = {}
    common: dict[int, str] = {}
    if not wanted:
        return TaxaRead(rows, common)
    for row in session.execute(_TAXA, {"taxon_ids": wanted, "lexicon": lexicon}):
        if row[0] not in rows:
            rows[row[0]] = TaxonRow._make(row[:-1])
            if row[-1] is not None:
                common[row[0]] = row[-1]
    return TaxaRead(rows, common)


@dataclass(frozen=True)
class PageParts:
    """What a page of observations shows besides their own rows, by observation id."""

    media: dict[int, list[Any]]
    idents: dict[int, list[Any]]
    taxa: TaxaRead


def _grouped(rows: Iterable[Any], at: int) -> dict[int, list[Any]]:
    """Rows by their observation id (column ``at``)."""
    out: defaultdict[int, list[Any]] = defaultdict(list)
    for row in rows:
        out[row[at]].append(row)
    return out


def page_rows(session: Executor, query: Select[Any]) -> list[Any]:
    """The rows of ``page_query`` as named tuples (read by name many times: a tuple is quicker to read)."""
    return [PageRow._make(row) for row in session.execute(query)]


def page_parts(session: Executor, rows: Sequence[Any], lexicon: str) -> PageParts:
    """Media, identifications and taxa of the page's observations (three queries)."""
    ids = [row.id for row in rows]
    if not ids:
        return PageParts({}, {}, TaxaRead({}, {}))
    media = _grouped(session.execute(_MEDIA, {"ids": ids}), 1)
    idents = _grouped(session.execute(_IDENTS, {"ids": ids}), 2)  # the column order is the renderer's too
    taxon_ids = {row.taxon_id for row in rows} | {i[4] for found in idents.values() for i in found}
    return PageParts(media, idents, read_taxa(session, taxon_ids, lexicon))
