"""Reading the taxonomy: search by name prefix, one taxon with its ancestors and children, taxa
by scientific name, and a filter for "this taxon or below" other queries can use."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from core.errors import NotFound, ValidationFailed
from core.taxonomy.load import NAMES, SCIENTIFIC, TAXA
from core.taxonomy.names import clean_name, search_key
from core.types import Problem

if TYPE_CHECKING:
    from core.engine import Engine

MIN_QUERY = 2
"""The shortest name prefix searched (after accents and spaces are removed)."""
MAX_CHILDREN = 500
DEFAULT_LEXICON = "en"
_LAST = "\U0010ffff"


class TaxonNotFound(NotFound):
    code = "taxon_not_found"


class TaxonLike(Protocol):
    id: int
    ancestry: str | None


@dataclass(frozen=True)
class NameOut:
    name: str
    lexicon: str
    preferred: bool


@dataclass(frozen=True)
class TaxonSummary:
    """A taxon as lists show it. ``name`` is its scientific name; ``preferred_common_name`` its
    preferred name in the lexicon asked for (else English); ``matched_term`` the name a search
    matched."""

    id: int
    name: str
    rank: str
    rank_level: float
    parent_id: int | None
    ancestry: str | None
    iconic_taxon_id: int | None
    gbif_key: int | None
    is_active: bool
    preferred_common_name: str | None = None
    matched_term: str | None = None

    @property
    def ancestor_ids(self) -> list[int]:
        """The ancestors' ids root first, then the taxon's own (iNaturalist's ``ancestor_ids``)."""
        return [*ancestor_ids(self.ancestry), self.id]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ancestor_ids": self.ancestor_ids}


@dataclass(frozen=True)
class TaxonDetail(TaxonSummary):
    """One taxon: its ancestors (root first), children (by name, at most ``MAX_CHILDREN``;
    ``children_count`` says how many), every name, and its iconic group's name."""

    ancestors: list[TaxonSummary] = field(default_factory=list)
    children: list[TaxonSummary] = field(default_factory=list)
    children_count: int = 0
    names: list[NameOut] = field(default_factory=list)
    iconic_taxon_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("ancestors", "children", "names")}
        return {**out, "ancestor_ids": self.ancestor_ids, "ancestors": [a.to_dict() for a in self.ancestors],
                "children": [c.to_dict() for c in self.children], "names": [asdict(n) for n in self.names]}


@dataclass(frozen=True)
class TaxonSearch:
    """A page of search results and how many taxa match in all."""

    total: int
    results: list[TaxonSummary]

    def __iter__(self) -> Iterator[TaxonSummary]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


def ancestor_ids(ancestry: str | None) -> list[int]:
    """The ids in an ``ancestry`` ("48460/1/2" -> [48460, 1, 2]; None -> [])."""
    return [int(part) for part in ancestry.split("/")] if ancestry else []


def at_or_below(taxa: Iterable[TaxonLike], id_column: Any, ancestry_column: Any) -> ColumnElement[bool]:
    """A condition on a row of the taxa table (or an alias of it, given by its ``id`` and
    ``ancestry`` columns): its taxon is one of ``taxa`` or below one of them."""
    chosen = list(taxa)
    below: list[ColumnElement[bool]] = []
    for taxon in chosen:
        prefix = f"{taxon.ancestry}/{taxon.id}" if taxon.ancestry else str(taxon.id)
        below += [ancestry_column == prefix, ancestry_column.like(_escape(prefix) + "/%", escape="\\")]
    return sa.or_(id_column.in_([taxon.id for taxon in chosen]), *below)


def descendant_filter(column: Any, taxon: TaxonLike) -> ColumnElement[bool]:
    """A condition on ``column`` (a column of taxon ids, e.g. an identification's ``taxon_id``):
    the taxon is ``taxon`` or one below it (its ancestry starts with ``taxon``'s ancestry and id)."""
    below = sa.select(TAXA.c.id).where(at_or_below([taxon], TAXA.c.id, TAXA.c.ancestry))
    return sa.or_(column == taxon.id, column.in_(below))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _summary(row: Any, common: dict[int, str], matched: dict[int, str] | None = None) -> TaxonSummary:
    return TaxonSummary(row.id, row.scientific_name, row.rank, row.rank_level, row.parent_id, row.ancestry,
                        row.iconic_taxon_id, row.gbif_key, bool(row.is_active), common.get(row.id),
                        (matched or {}).get(row.id))


def _columns() -> list[Any]:
    return [TAXA.c[n] for n in ("id", "scientific_name", "rank", "rank_level", "parent_id", "ancestry",
                                "iconic_taxon_id", "gbif_key", "is_active")]


def common_names(conn: sa.Connection, ids: Iterable[int], lexicon: str | None = None) -> dict[int, str]:
    """The preferred common name of each taxon in ``lexicon`` (else English), where it has one."""
    wanted = [lexicon or DEFAULT_LEXICON] + ([DEFAULT_LEXICON] if lexicon and lexicon != DEFAULT_LEXICON else [])
    found: dict[int, str] = {}
    ids = list(ids)
    for chunk in range(0, len(ids), 500):
        rows = conn.execute(sa.select(NAMES.c.taxon_id, NAMES.c.lexicon, NAMES.c.name).where(
            NAMES.c.taxon_id.in_(ids[chunk:chunk + 500]), NAMES.c.lexicon.in_(wanted), NAMES.c.preferred.is_(True)))
        best: dict[int, tuple[int, str]] = {}
        for taxon_id, name_lexicon, name in rows:
            rank = wanted.index(name_lexicon)
            if taxon_id not in best or rank < best[taxon_id][0]:
                best[taxon_id] = (rank, name)
        found.update({k: v for k, (_, v) in best.items()})
    return found


def _query_problem(q: str | None) -> ValidationFailed | None:
    if q is None or len(clean_name(q)) < MIN_QUERY:
        return ValidationFailed([Problem(("q",), f"give at least {MIN_QUERY} letters of a name", "query_too_short")])
    return None


def search(engine: Engine, q: str, *, limit: int = 30, offset: int = 0, lexicon: str | None = None,
           rank: str | None = None) -> TaxonSearch:
    """Active taxa with a name starting with ``q`` (any language, accents and case ignored): a
    name equal to ``q`` first, then lower ranks first (species before genera), then shorter
    names. ``lexicon``: search common names of that language only (scientific names always), and
    show its preferred names. ``rank``: only taxa of that rank. Raises ValidationFailed for a
    ``q`` shorter than two characters (spaces around it aside)."""
    problem = _query_problem(q)
    if problem:
        raise problem
    key = search_key(q)
    if not key:  # nothing but accents
        return TaxonSearch(0, [])
    where = [NAMES.c.search.like(_escape(key) + "%", escape="\\"), TAXA.c.is_active.is_(True)]
    if engine.db.dialect.name == "sqlite":  # SQLite's LIKE cannot use the index; a range can
        where += [NAMES.c.search >= key, NAMES.c.search < key + _LAST]
    if lexicon:
        where.append(NAMES.c.lexicon.in_([SCIENTIFIC, lexicon]))
    if rank:
        where.append(TAXA.c.rank == rank)
    joined = NAMES.join(TAXA, TAXA.c.id == NAMES.c.taxon_id)
    exact = sa.func.max(sa.case((NAMES.c.search == key, 1), else_=0))
    page = (sa.select(TAXA.c.id).select_from(joined).where(*where)
            .group_by(TAXA.c.id, TAXA.c.rank_level, TAXA.c.scientific_name)
            .order_by(exact.desc(), TAXA.c.rank_level, sa.func.length(TAXA.c.scientific_name), TAXA.c.scientific_name,
                      TAXA.c.id)
            .limit(limit).offset(offset))
    with engine.readers() as session:
        conn = session.connection()
        ids = list(conn.execute(page).scalars())
        total = conn.execute(sa.select(sa.func.count(sa.distinct(NAMES.c.taxon_id))).select_from(joined).where(*where)).scalar_one()
        if not ids:
            return TaxonSearch(int(total), [])
        rows = {r.id: r for r in conn.execute(sa.select(*_columns()).where(TAXA.c.id.in_(ids)))}
        matched: dict[int, str] = {}
        name_where = [NAMES.c.taxon_id.in_(ids), where[0]]
        if lexicon:
            name_where.append(NAMES.c.lexicon.in_([SCIENTIFIC, lexicon]))
        exact_name: set[int] = set()
        for taxon_id, name, searched in conn.execute(sa.select(NAMES.c.taxon_id, NAMES.c.name, NAMES.c.search)
                                                     .where(*name_where).order_by(sa.func.length(NAMES.c.name), NAMES.c.name)):
            if taxon_id not in matched or (searched == key and taxon_id not in exact_name):
                matched[taxon_id] = name
            if searched == key:
                exact_name.add(taxon_id)
        common = common_names(conn, ids, lexicon)
    return TaxonSearch(int(total), [_summary(rows[i], common, matched) for i in ids])


def get(engine: Engine, taxon_id: int, *, lexicon: str | None = None) -> TaxonDetail:
    """One taxon with its ancestors (root first), children, names and iconic group; raises
    TaxonNotFound (404, ``taxon_not_found``)."""
    with engine.readers() as session:
        conn = session.connection()
        row = conn.execute(sa.select(*_columns()).where(TAXA.c.id == taxon_id)).first()
        if row is None:
            raise TaxonNotFound(f"there is no taxon {taxon_id}")
        above = ancestor_ids(row.ancestry)
        ancestors = {r.id: r for r in conn.execute(sa.select(*_columns()).where(TAXA.c.id.in_(above)))} if above else {}
        children = list(conn.execute(sa.select(*_columns()).where(TAXA.c.parent_id == taxon_id, TAXA.c.is_active.is_(True))
                                     .order_by(TAXA.c.scientific_name, TAXA.c.id).limit(MAX_CHILDREN)))
        count = conn.execute(sa.select(sa.func.count()).select_from(TAXA).where(
            TAXA.c.parent_id == taxon_id, TAXA.c.is_active.is_(True))).scalar_one()
        names = [NameOut(n.name, n.lexicon, bool(n.preferred)) for n in conn.execute(
            sa.select(NAMES.c.name, NAMES.c.lexicon, NAMES.c.preferred).where(NAMES.c.taxon_id == taxon_id)
            .order_by(NAMES.c.lexicon, NAMES.c.preferred.desc(), NAMES.c.name))]
        common = common_names(conn, [taxon_id, *ancestors, *(c.id for c in children)], lexicon)
        iconic = None
        if row.iconic_taxon_id is not None:
            iconic = conn.execute(sa.select(TAXA.c.scientific_name).where(TAXA.c.id == row.iconic_taxon_id)).scalar()
    base = _summary(row, common)
    return TaxonDetail(**{k: getattr(base, k) for k in TaxonSummary.__dataclass_fields__},
                       ancestors=[_summary(ancestors[i], common) for i in above if i in ancestors],
                       children=[_summary(c, common) for c in children], children_count=int(count),
                       names=names, iconic_taxon_name=iconic)


def ids_by_name(engine: Engine, names: Iterable[str]) -> dict[str, int]:
    """The id of the active taxon of each scientific name that has one (as given, e.g.
    ``"Tinca tinca"``); a name that is a synonym gives its accepted taxon. Names with no taxon
    are left out. Where two taxa share a name (homonyms in two kingdoms), the older one."""
    wanted = sorted({n for n in names if n and n.strip()})
    found: dict[str, int] = {}
    if not wanted:
        return found
    with engine.readers() as session:
        conn = session.connection()
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk:chunk + 500]
            for taxon_id, name in conn.execute(sa.select(TAXA.c.id, TAXA.c.scientific_name).where(
                    TAXA.c.scientific_name.in_(part), TAXA.c.is_active.is_(True)).order_by(TAXA.c.id.desc())):
                found[name] = taxon_id
        missing = {search_key(n): n for n in wanted if n not in found}
        keys = sorted(missing)
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            for taxon_id, searched in conn.execute(
                    sa.select(NAMES.c.taxon_id, NAMES.c.search).join(TAXA, TAXA.c.id == NAMES.c.taxon_id).where(
                        NAMES.c.search.in_(part), NAMES.c.lexicon == SCIENTIFIC, TAXA.c.is_active.is_(True))
                    .order_by(NAMES.c.taxon_id.desc())):
                found[missing[searched]] = taxon_id
    return found
