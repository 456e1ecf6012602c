"""Loading taxa: the upsert every source goes through (checklists, plugins' ``register_taxa``).

A taxon is found again by its source's id (``source``, ``source_id``); a taxon with no id of its
own (a plugin's record, a higher taxon named only in a classification) gets a derived id
``name:<kingdom>/<rank>/<name>``. When a source does not know a taxon yet, one of the same name,
rank and kingdom from another source is the same taxon: a checklist with ids takes over a taxon
that only had a derived id (it sets its parent from then on); otherwise the source only adds its
names to it. So the defaults and any number of checklists make one tree, not several.

Everything is computed in memory over the whole table (100,000 taxa are a few seconds), then
written in batches; ``ancestry`` and ``iconic_taxon_id`` are recomputed for every taxon whose
ancestors moved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import sqlalchemy as sa

from core.db.models import Taxon, TaxonName
from core.taxonomy.names import (
    CLASSIFICATION_RANKS,
    ICONIC_NAMES,
    RANK_LEVELS,
    clean_name,
    rank_of,
    search_key,
)
from core.types import TaxonRecord

if TYPE_CHECKING:
    from core.engine import Engine

TAXA = Taxon.__table__
NAMES = TaxonName.__table__
DERIVED = "name:"
"""How a derived ``source_id`` starts (a taxon known by its name only, no id of its source)."""
SCIENTIFIC = "scientific"
_ICONIC = frozenset(ICONIC_NAMES)
_BATCH = 5000


@dataclass(frozen=True)
class NameIn:
    """A name to give a taxon: a common name in a language, or a synonym (``scientific``)."""

    name: str
    lexicon: str
    preferred: bool = False
    """The source says this is the name to show in its lexicon."""


@dataclass
class Entry:
    """A taxon as a source gives it. ``source_id`` None: known by its name only (a plugin's
    record). ``parent`` is the parent's ``source_id`` in the same source (Darwin Core
    ``parentNameUsageID``); without one, the parent is made from ``classification`` (rank to
    name, e.g. ``{"kingdom": "Animalia", "genus": "Tinca"}``)."""

    scientific_name: str
    rank: str | None
    source_id: str | None = None
    parent: str | None = None
    classification: dict[str, str] = field(default_factory=dict)
    names: list[NameIn] = field(default_factory=list)
    gbif_key: int | None = None
    line: int | None = None
    file: str | None = None
    """Where the record is (a DwC-A's data file), for the report."""


@dataclass(frozen=True)
class ExtraName:
    """A name for a taxon given by its ``source_id`` elsewhere in the source (a synonym's
    accepted taxon, a vernacular-name extension row)."""

    source_id: str
    name: NameIn
    line: int | None = None
    file: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A record not loaded, and why (with its line in the file, where there is one)."""

    reason: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = " ".join(p for p in (self.file, f"line {self.line}" if self.line else None) if p)
        return f"{where}: {self.reason}" if where else self.reason


@dataclass
class Report:
    """What a load did: taxa ``added``, ``updated`` or ``unchanged`` (of the records given),
    ``skipped`` records with their reasons, ``higher_added`` (higher taxa made from
    classifications), ``names_added``, ``descendants_moved`` (other taxa whose ancestry changed)."""

    source: str
    dry_run: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    higher_added: int = 0
    names_added: int = 0
    descendants_moved: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "dry_run": self.dry_run, "added": self.added, "updated": self.updated,
            "unchanged": self.unchanged, "higher_added": self.higher_added, "names_added": self.names_added,
            "descendants_moved": self.descendants_moved, "skipped": len(self.skipped),
            "skipped_records": [{"line": s.line, "file": s.file, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        head = (f"{self.source}: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{len(self.skipped)} skipped; {self.higher_added} higher taxa added, {self.names_added} names "
                f"added, {self.descendants_moved} other taxa moved ({self.seconds:.2f} s)")
        return head + (" [dry run: nothing stored]" if self.dry_run else "")


@dataclass(slots=True)
class _Row:
    id: int
    scientific_name: str
    rank: str
    rank_level: float
    parent_id: int | None
    ancestry: str | None
    gbif_key: int | None
    iconic_taxon_id: int | None
    source: str
    source_id: str
    is_active: bool
    new: bool = False
    changed: bool = False

    def fields(self) -> tuple[Any, ...]:
        return (self.scientific_name, self.rank, self.rank_level, self.parent_id, self.gbif_key, self.source,
                self.source_id, self.is_active)


@dataclass(slots=True)
class _Name:
    id: int | None
    preferred: bool
    stored_preferred: bool


def derived_id(kingdom: str | None, rank: str, name: str) -> str:
    """The ``source_id`` of a taxon known by its name only."""
    parts = [kingdom] if kingdom and rank != "kingdom" else []
    return DERIVED + "/".join([*parts, rank, name])


def entry_of(record: TaxonRecord) -> Entry:
    """A plugin's ``TaxonRecord`` as an entry known by its name."""
    classification = {rank_of(k) or k: clean_name(v) for k, v in record.classification.items() if clean_name(v)}
    names = [NameIn(clean_name(n), lexicon.lower(), True) for lexicon, n in record.common_names.items() if clean_name(n)]
    return Entry(clean_name(record.scientific_name), record.rank, None, None, classification, names, record.gbif_key)


class _Loader:
    """One load's state: every taxon and name of the table, and what the load changes."""

    def __init__(self, conn: sa.Connection, source: str, report: Report) -> None:
        self.conn, self.source, self.report = conn, source, report
        self.rows: dict[int, _Row] = {}
        self.by_key: dict[tuple[str, str], _Row] = {}
        self.by_name: dict[tuple[str, str], list[_Row]] = {}
        self.names: dict[int, dict[tuple[str, str], _Name]] = {}
        self.preferred: dict[int, dict[str, str]] = {}  # taxon id: lexicon: its preferred name
        self.claimed: set[int] = set()  # rows an entry of this load has matched
        self.touched_higher: set[int] = set()
        self.names_changed: set[int] = set()
        self.lost: dict[str, int | None] = {}  # ids of skipped records (their line): their children are skipped
        self.results: list[_Row] = []
        self.loops: set[str] = set()  # ids of records in a loop of parents
        self.next_temp = -1
        self._read()

    def _read(self) -> None:
        # the driver's rows as they are: 100,000 taxa through SQLAlchemy's row objects cost seconds
        for r in self.conn.exec_driver_sql(
                'SELECT id, scientific_name, "rank", rank_level, parent_id, ancestry, gbif_key, iconic_taxon_id, '
                "source, source_id, is_active FROM taxa").fetchall():
            self._index(_Row(*r))
        for taxon_id, lexicon, name, preferred, name_id in self.conn.exec_driver_sql(
                "SELECT taxon_id, lexicon, name, preferred, id FROM taxon_names").fetchall():
            self.names.setdefault(taxon_id, {})[(lexicon, name)] = _Name(name_id, bool(preferred), bool(preferred))
            if preferred:
                self.preferred.setdefault(taxon_id, {})[lexicon] = name

    def _index(self, row: _Row) -> None:
        self.rows[row.id] = row
        self.by_key[(row.source, row.source_id)] = row
        self.by_name.setdefault((row.scientific_name, row.rank), []).append(row)

    # -- the tree -------------------------------------------------------------------------------

    def kingdom_of(self, row: _Row | None) -> str | None:
        seen = 0
        while row is not None and seen < 200:
            if row.rank == "kingdom":
                return row.scientific_name
            row = self.rows.get(row.parent_id) if row.parent_id is not None else None
            seen += 1
        return None

    def is_ancestor(self, candidate: _Row, row: _Row | None) -> bool:
        """Whether ``candidate`` is ``row`` or one of its ancestors."""
        seen = 0
        while row is not None and seen < 500:
            if row.id == candidate.id:
                return True
            row = self.rows.get(row.parent_id) if row.parent_id is not None else None
            seen += 1
        return False

    def find_by_name(self, name: str, rank: str, kingdom: str | None, *, strong: bool,
                     any_claimed: bool = False) -> _Row | None:
        """A taxon of this name and rank (and kingdom, where both know it) not matched yet in this
        load (``any_claimed``: or matched); for an entry with its own id, not another taxon of the
        same source."""
        best = None
        for row in self.by_name.get((name, rank), ()):
            if (row.id in self.claimed and not any_claimed) or (strong and row.source == self.source and not row.source_id.startswith(DERIVED)):
                continue
            theirs = self.kingdom_of(row)
            if kingdom and theirs and theirs != kingdom:
                continue
            if best is None or (kingdom and theirs == kingdom and self.kingdom_of(best) != kingdom):
                best = row
        return best

    def new_row(self, name: str, rank: str, parent: _Row | None, key: str, gbif_key: int | None) -> _Row:
        row = _Row(self.next_temp, name, rank, RANK_LEVELS[rank], parent.id if parent else None, None, gbif_key,
                   None, self.source, key, True, new=True)
        self.next_temp -= 1
        self._index(row)
        return row

    def higher(self, kingdom: str | None, rank: str, name: str, parent: _Row | None) -> _Row:
        """The higher taxon ``name`` at ``rank`` below ``parent``, made when no source has it."""
        key = derived_id(kingdom, rank, name)
        row = self.by_key.get((self.source, key))
        if row is None:
            row = self.find_by_name(name, rank, kingdom, strong=False, any_claimed=True)
        if row is None:
            self.report.higher_added += 1
            row = self.new_row(name, rank, parent, key, None)
            self.touched_higher.add(row.id)
            self._give_names(row, [NameIn(name, SCIENTIFIC, True)], owner=True)
            return row
        if row.source == self.source and row.source_id == key and row.id not in self.touched_higher:
            self.touched_higher.add(row.id)  # ours: its place follows this load's first classification
            if parent is not None and row.parent_id != parent.id and not self.is_ancestor(row, parent):
                row.parent_id, row.changed = parent.id, True
        return row

    # -- names ----------------------------------------------------------------------------------

    def _give_names(self, row: _Row, wanted: Sequence[NameIn], *, owner: bool) -> bool:
        """Add the names ``row`` lacks; set the preferred name of each lexicon (the owner's
        scientific name always; a common name where the source marks one and owns the taxon, or
        where the lexicon has none). Whether anything changed."""
        have = self.names.setdefault(row.id, {})
        preferred = self.preferred.setdefault(row.id, {})
        changed = False
        firsts: dict[str, NameIn] = {}
        for name in wanted:
            key = (name.lexicon, name.name)
            if key not in have:
                have[key] = _Name(None, False, False)
                self.report.names_added += 1
                changed = True
            first = firsts.get(name.lexicon)
            if first is None or (name.preferred and not first.preferred):
                firsts[name.lexicon] = name
        for lexicon, first in firsts.items():
            current = preferred.get(lexicon)
            if lexicon == SCIENTIFIC and owner:
                target, enforce = row.scientific_name, True
            else:
                target, enforce = first.name, owner and first.preferred
            if current == target or (current is not None and not enforce) or (lexicon, target) not in have:
                continue
            if current is not None:
                have[(lexicon, current)].preferred = False
            have[(lexicon, target)].preferred = True
            preferred[lexicon] = target
            changed = True
        return changed

    # -- entries --------------------------------------------------------------------------------

    def load(self, entries: list[Entry], extra_names: Sequence[ExtraName]) -> None:
        """Match or make a taxon for every entry (parents first), then give the extra names."""
        skipped = self.report.skipped
        kept: list[Entry] = []
        by_id: dict[str, Entry] = {}
        passthrough: dict[str, str | None] = {}  # records skipped for their rank: their children go to their parent
        for entry in entries:
            entry.scientific_name = clean_name(entry.scientific_name)
            rank = rank_of(entry.rank)
            if not entry.scientific_name:
                self._skip(entry, "no scientific name")
                continue
            if rank is None:
                skipped.append(Skipped(f"{entry.scientific_name}: unknown rank {entry.rank or ''!r} (kingdom, phylum, "
                                       "class, order, family, genus, species... as iNaturalist has them)",
                                       entry.line, entry.file))
                if entry.source_id:
                    passthrough[entry.source_id] = entry.parent
                continue
            entry.rank = rank
            if entry.source_id is not None:
                if entry.source_id in by_id:
                    self._skip(entry, f"taxonID {entry.source_id!r} again (first on line {by_id[entry.source_id].line})",
                               lose=False)
                    continue
                by_id[entry.source_id] = entry
            kept.append(entry)

        def parent_of(entry: Entry) -> str | None:
            parent, hops = entry.parent, 0
            while parent is not None and parent in passthrough and hops < 100:
                parent, hops = passthrough[parent], hops + 1
            return parent if parent != entry.source_id else None

        done: dict[str, _Row] = {}
        for entry in self._parents_first(kept, by_id, parent_of):
            outcome = self._one(entry, by_id, done, parent_of(entry))
            if isinstance(outcome, str):
                self._skip(entry, f"{entry.scientific_name}: {outcome}")
            else:
                self.results.append(outcome)
        for extra in extra_names:
            row = done.get(extra.source_id) or self.by_key.get((self.source, extra.source_id))
            if row is None:
                skipped.append(Skipped(f"{extra.name.name!r}: taxon {extra.source_id!r} is not in the checklist",
                                       extra.line, extra.file))
            elif self._give_names(row, [extra.name], owner=row.source == self.source):
                self.names_changed.add(row.id)

    def _skip(self, entry: Entry, reason: str, *, lose: bool = True) -> None:
        self.report.skipped.append(Skipped(reason, entry.line, entry.file))
        if lose and entry.source_id:
            self.lost.setdefault(entry.source_id, entry.line)

    def _parents_first(self, kept: list[Entry], by_id: dict[str, Entry], parent_of: Any) -> list[Entry]:
        """The entries with every parent before its children (files list taxa in any order); the
        records of a loop of parents are noted in ``loops``."""
        order: list[Entry] = []
        state: dict[str, int] = {}  # 1: its ancestors are being visited, 2: placed
        for entry in kept:
            if entry.source_id is None:
                order.append(entry)
                continue
            stack = [entry]
            while stack:
                top = stack[-1]
                sid = top.source_id
                assert sid is not None
                if state.get(sid) == 2:
                    stack.pop()
                elif state.get(sid) == 1:
                    state[sid] = 2
                    order.append(top)
                    stack.pop()
                else:
                    state[sid] = 1
                    parent = parent_of(top)
                    if parent is not None and parent in by_id:
                        if state.get(parent) is None:
                            stack.append(by_id[parent])
                        elif state[parent] == 1:
                            self.loops.add(sid)
        return order

    def _one(self, entry: Entry, by_id: dict[str, Entry], done: dict[str, _Row], parent_sid: str | None) -> _Row | str:
        """Match or make the taxon of one entry: its row, or why it is skipped."""
        assert entry.rank is not None
        level = RANK_LEVELS[entry.rank]
        parent: _Row | None = None
        classification = {r: n for r, n in entry.classification.items() if r in RANK_LEVELS and n}
        kingdom = classification.get("kingdom") or (entry.scientific_name if entry.rank == "kingdom" else None)
        if entry.source_id in self.loops:
            return f"its parentNameUsageID {parent_sid!r} makes a loop (the taxon would be its own ancestor)"
        if parent_sid is not None:
            if parent_sid in self.lost:
                line = self.lost[parent_sid]
                return f"its parent {parent_sid!r}{f' (line {line})' if line else ''} was skipped"
            parent = done.get(parent_sid) or self.by_key.get((self.source, parent_sid))
            if parent is None and not classification:
                return f"parentNameUsageID {parent_sid!r} is not in the checklist"
        if parent is None:
            for rank in CLASSIFICATION_RANKS:
                name = classification.get(rank)
                if name and RANK_LEVELS[rank] > level and not (rank == entry.rank and name == entry.scientific_name):
                    parent = self.higher(kingdom, rank, name, parent)
        elif parent.rank_level < level or (parent.rank_level == level and level > 5):
            return f"its parent {parent.scientific_name} ({parent.rank}) is not of a higher rank than {entry.rank}"
        kingdom = kingdom or self.kingdom_of(parent)
        strong = entry.source_id is not None
        key = entry.source_id if strong else derived_id(kingdom, entry.rank, entry.scientific_name)
        row = self.by_key.get((self.source, key))
        owner = row is not None
        if row is None:
            row = self.find_by_name(entry.scientific_name, entry.rank, kingdom, strong=strong)
            # a taxon known by its name only is taken over by a source with ids, or moved by its own source
            owner = row is not None and row.source_id.startswith(DERIVED) and (strong or row.source == self.source)
        if row is None:
            row = self.new_row(entry.scientific_name, entry.rank, parent, key, entry.gbif_key)
            owner = True
        elif row.id in self.claimed:  # the same name again from a source without ids: more names for it
            owner = False
        self.claimed.add(row.id)
        if strong:
            done[key] = row
        before = row.fields()
        if owner:
            if parent is not None and not row.new and self.is_ancestor(row, parent):
                return f"its parent {parent.scientific_name} is below it in the tree"
            row.scientific_name, row.rank, row.rank_level = entry.scientific_name, entry.rank, level
            row.parent_id = parent.id if parent is not None else None
            row.source, row.source_id, row.is_active = self.source, key, True
            if entry.gbif_key is not None:
                row.gbif_key = entry.gbif_key
        elif row.gbif_key is None and entry.gbif_key is not None:
            row.gbif_key = entry.gbif_key
        if row.fields() != before:
            self._reindex(row, before)
            row.changed = True
        if self._give_names(row, [NameIn(entry.scientific_name, SCIENTIFIC, True), *entry.names], owner=owner):
            self.names_changed.add(row.id)
        return row

    def _reindex(self, row: _Row, before: tuple[Any, ...]) -> None:
        old_name, old_rank, _, _, _, old_source, old_sid, _ = before
        if (old_source, old_sid) != (row.source, row.source_id):
            self.by_key.pop((old_source, old_sid), None)
            self.by_key[(row.source, row.source_id)] = row
        if (old_name, old_rank) != (row.scientific_name, row.rank):
            same = self.by_name.get((old_name, old_rank), [])
            if row in same:
                same.remove(row)
            self.by_name.setdefault((row.scientific_name, row.rank), []).append(row)

    # -- ancestry, ids, writing -----------------------------------------------------------------

    def allocate_ids(self, dry_run: bool) -> None:
        fresh = [row for row in self.rows.values() if row.new]
        if not fresh:
            return
        if dry_run or self.conn.dialect.name != "postgresql":
            start = (max((r.id for r in self.rows.values() if not r.new), default=0)) + 1
            ids = list(range(start, start + len(fresh)))
        else:
            ids = list(self.conn.execute(sa.text(
                "SELECT nextval(pg_get_serial_sequence('taxa', 'id')) FROM generate_series(1, :n)"), {"n": len(fresh)}
            ).scalars())
        mapping = {row.id: new_id for row, new_id in zip(fresh, ids)}
        for row in fresh:
            row.id = mapping[row.id]
        for row in self.rows.values():
            if row.parent_id is not None and row.parent_id < 0:
                row.parent_id = mapping[row.parent_id]
        self.rows = {row.id: row for row in self.rows.values()}
        self.names = {mapping.get(k, k): v for k, v in self.names.items()}
        self.preferred = {mapping.get(k, k): v for k, v in self.preferred.items()}
        self.names_changed = {mapping.get(k, k) for k in self.names_changed}

    def place(self) -> set[int]:
        """Recompute ``ancestry`` and ``iconic_taxon_id`` everywhere; the ids of the taxa whose
        place changed."""
        ancestry: dict[int, str | None] = {}
        iconic: dict[int, int | None] = {}
        moved: set[int] = set()
        for start in self.rows.values():
            path: list[_Row] = []
            row: _Row | None = start
            while row is not None and row.id not in ancestry:
                path.append(row)
                row = self.rows.get(row.parent_id) if row.parent_id is not None else None
                if len(path) > 500:
                    raise ValueError(f"the taxon {start.scientific_name} is its own ancestor")
            for node in reversed(path):
                parent = self.rows.get(node.parent_id) if node.parent_id is not None else None
                if parent is None:
                    ancestry[node.id], inherited = None, None
                else:
                    above = ancestry[parent.id]
                    ancestry[node.id] = f"{above}/{parent.id}" if above else str(parent.id)
                    inherited = iconic[parent.id]
                iconic[node.id] = node.id if node.scientific_name in _ICONIC and node.rank_level >= 50 else inherited
                if (node.ancestry, node.iconic_taxon_id) != (ancestry[node.id], iconic[node.id]):
                    node.ancestry, node.iconic_taxon_id = ancestry[node.id], iconic[node.id]
                    moved.add(node.id)
        return moved

    def write(self) -> None:
        """Insert the new taxa (parents first) and names, update what changed: in batches, through
        the driver's executemany (100,000 rows through SQLAlchemy's parameter processing cost
        seconds)."""
        sqlite = self.conn.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        now: Any = datetime.now(timezone.utc)
        if sqlite:  # as SQLAlchemy stores a DateTime in SQLite: UTC, without the offset
            now = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        fields = ("scientific_name", "rank", "rank_level", "parent_id", "ancestry", "gbif_key", "iconic_taxon_id",
                  "source", "source_id", "is_active")

        def values(r: _Row) -> tuple[Any, ...]:
            return (r.scientific_name, r.rank, r.rank_level, r.parent_id, r.ancestry, r.gbif_key, r.iconic_taxon_id,
                    r.source, r.source_id, r.is_active)

        fresh = sorted((r for r in self.rows.values() if r.new), key=lambda r: r.ancestry.count("/") + 1 if r.ancestry else 0)
        self._insert("taxa", ("id", *fields, "created_at", "updated_at"), [(r.id, *values(r), now, now) for r in fresh])
        assignments = ", ".join(f'"{c}" = {mark}' for c in (*fields, "updated_at"))
        self._many(f"UPDATE taxa SET {assignments} WHERE id = {mark}",
                   [(*values(r), now, r.id) for r in self.rows.values() if r.changed and not r.new])
        new_names, flags = [], []
        for taxon_id, names in self.names.items():
            for (lexicon, name), state in names.items():
                if state.id is None:
                    new_names.append((taxon_id, name, lexicon, search_key(name), state.preferred))
                elif state.preferred != state.stored_preferred:
                    flags.append((state.preferred, state.id))
        self._insert("taxon_names", ("taxon_id", "name", "lexicon", "search", "preferred"), new_names)
        self._many(f"UPDATE taxon_names SET preferred = {mark} WHERE id = {mark}", flags)

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows``: by COPY on PostgreSQL (its executemany is a round trip a row), by
        executemany on SQLite."""
        if not rows:
            return
        names = ", ".join(f'"{c}"' for c in columns)
        if self.conn.dialect.name == "postgresql":
            driver = self.conn.connection.dbapi_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        self._many(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['?'] * len(columns))})", rows)

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), _BATCH):
            self.conn.exec_driver_sql(sql, rows[start:start + _BATCH])


def load_entries(engine: Engine, entries: Iterable[Entry], source: str, *, dry_run: bool = False,
                 extra_names: Sequence[ExtraName] = (), skipped: Sequence[Skipped] = ()) -> Report:
    """Upsert ``entries`` of ``source`` in one transaction (rolled back for ``dry_run``) and say
    what changed. ``skipped``: what the reader already refused, carried into the report."""
    started = time.perf_counter()
    report = Report(source, dry_run, skipped=list(skipped))
    with engine.db.connect() as conn:
        with conn.begin() as transaction:
            if conn.dialect.name == "postgresql":  # one loader at a time; readers go on
                conn.exec_driver_sql("LOCK TABLE taxa IN SHARE ROW EXCLUSIVE MODE")
            loader = _Loader(conn, source, report)
            loader.load(list(entries), extra_names)
            loader.allocate_ids(dry_run)
            moved = loader.place()
            for row_id in moved:
                loader.rows[row_id].changed = True
            seen: set[int] = set()
            for row in loader.results:
                if row.id not in seen:
                    seen.add(row.id)
                    if row.new:
                        report.added += 1
                    elif row.changed or row.id in loader.names_changed:
                        report.updated += 1
                    else:
                        report.unchanged += 1
            report.descendants_moved = sum(1 for i in moved - seen if not loader.rows[i].new)
            if dry_run:
                transaction.rollback()
            else:
                loader.write()
    files = {s.file: i for i, s in reversed(list(enumerate(report.skipped)))}
    report.skipped.sort(key=lambda s: (files[s.file], s.line or 0))  # by file, then line
    report.seconds = time.perf_counter() - started
    return report


def load_records(engine: Engine, records: Iterable[TaxonRecord], source: str, *, dry_run: bool = False) -> Report:
    """Upsert plugins' ``TaxonRecord``s as taxa of ``source`` (idempotent): each one and the
    higher taxa its classification names, with parent, ancestry, rank level, iconic group and
    names (scientific, and common names preferred in their language). A record of a name and rank
    that a taxon already has (from any source, same kingdom) adds its names to that taxon."""
    return load_entries(engine, [entry_of(r) for r in records], source, dry_run=dry_run)
