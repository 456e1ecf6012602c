"""``/inat/v1/taxa`` (search) and ``/inat/v1/taxa/{ids}`` (details: ancestors, children, names)
over the engine's taxonomy, in iNaturalist's shapes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from core.db.models import Taxon, TaxonName
from core.taxonomy.names import search_key
from core.taxonomy.search import at_or_below
from plugins.identification.inat_query import TAXON_COLUMNS, iconic, known_taxa, like_escape, read_taxa
from plugins.identification.inat_render import taxon_json

_taxa = Taxon.__table__
_names = TaxonName.__table__


@dataclass(frozen=True)
class TaxaFilters:
    q: str | None = None
    taxon_ids: list[int] | None = None
    parent_id: int | None = None
    ranks: list[str] | None = None
    rank_level: float | None = None
    is_active: bool | None = True
    id_above: int | None = None
    id_below: int | None = None


def _named(q: str) -> ColumnElement[bool]:
    """A name of the taxon (scientific or common, any language) has a word starting with ``q``."""
    key = like_escape(search_key(q))
    starts, inside = key + "%", "% " + key + "%"
    scientific = func.lower(_taxa.c.scientific_name)
    named = select(_names.c.taxon_id).where(or_(_names.c.search.like(starts, escape="\\"),
                                                _names.c.search.like(inside, escape="\\")))
    return or_(scientific.like(starts, escape="\\"), scientific.like(inside, escape="\\"), _taxa.c.id.in_(named))


def _where(session: Session, f: TaxaFilters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.q:
        out.append(_named(f.q))
    if f.taxon_ids:
        out.append(at_or_below(known_taxa(session, f.taxon_ids), _taxa.c.id, _taxa.c.ancestry))
    if f.parent_id is not None:
        out.append(_taxa.c.parent_id == f.parent_id)
    if f.ranks:
        out.append(_taxa.c.rank.in_(f.ranks))
    if f.rank_level is not None:
        out.append(_taxa.c.rank_level == f.rank_level)
    if f.is_active is not None:
        out.append(_taxa.c.is_active.is_(True) if f.is_active else _taxa.c.is_active.is_(False))
    if f.id_above is not None:
        out.append(_taxa.c.id > f.id_above)
    if f.id_below is not None:
        out.append(_taxa.c.id < f.id_below)
    return out


def _names_of(session: Session, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = session.execute(select(_names.c.taxon_id, _names.c.name, _names.c.lexicon)
                           .where(_names.c.taxon_id.in_(list(ids))).order_by(_names.c.taxon_id, _names.c.id))
    for row in rows:
        out[row.taxon_id].append({"name": row.name, "locale": row.lexicon, "is_valid": True})
    return out


def search(session: Session, f: TaxaFilters, *, page: int, per_page: int, order_by: str, order: str,
           lexicon: str, all_names: bool) -> tuple[int, list[dict[str, Any]]]:
    """(total, the page) of the taxa ``f`` selects."""
    where = _where(session, f)
    total = int(session.execute(select(func.count()).select_from(_taxa).where(*where)).scalar_one())
    if not per_page:
        return total, []
    column = _taxa.c.scientific_name if order_by == "name" else _taxa.c.id
    keys = [column.asc(), _taxa.c.id.asc()] if order == "asc" else [column.desc(), _taxa.c.id.desc()]
    rows = session.execute(select(*TAXON_COLUMNS).outerjoin(iconic, iconic.c.id == _taxa.c.iconic_taxon_id)
                           .where(*where).order_by(*keys).limit(per_page).offset((page - 1) * per_page)).all()
    common = read_taxa(session, [r.id for r in rows], lexicon).common
    names = _names_of(session, [r.id for r in rows]) if all_names else {}
    out = []
    for row in rows:
        item = taxon_json(row, common.get(row.id))
        if all_names:
            item["names"] = names.get(row.id, [])
        out.append(item)
    return total, out


def details(session: Session, ids: Sequence[int], *, lexicon: str, all_names: bool) -> list[dict[str, Any]]:
    """The taxa of ``ids`` that exist, in that order, each with its ancestors (root first) and its
    active children (by name); four queries whatever the number of taxa."""
    wanted = list(dict.fromkeys(ids))
    found = read_taxa(session, wanted, lexicon)
    ancestor_ids = {a for row in found.rows.values() for a in _ancestry(row.ancestry)}
    children_rows = session.execute(select(_taxa.c.id).where(_taxa.c.parent_id.in_(list(found.rows)),
                                                            _taxa.c.is_active.is_(True))
                                    .order_by(_taxa.c.scientific_name, _taxa.c.id)).all() if found.rows else []
    related = read_taxa(session, ancestor_ids | {r.id for r in children_rows}, lexicon)
    children: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for child in children_rows:
        row = related.rows[child.id]
        children[row.parent_id].append(taxon_json(row, related.common.get(row.id)))
    names = _names_of(session, list(found.rows)) if all_names and found.rows else {}
    out = []
    for taxon_id in wanted:
        row = found.rows.get(taxon_id)
        if row is None:
            continue
        item = taxon_json(row, found.common.get(taxon_id))
        item["ancestors"] = [taxon_json(related.rows[a], related.common.get(a))
                             for a in _ancestry(row.ancestry) if a in related.rows]
        item["children"] = children.get(taxon_id, [])
        if all_names:
            item["names"] = names.get(taxon_id, [])
        out.append(item)
    return out


def _ancestry(text: str | None) -> list[int]:
    return [int(part) for part in text.split("/") if part] if text else []
