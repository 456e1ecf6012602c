"""Odour events kept in memory, per process, per project and scope, and brought up to date
with what changed instead of being detected again on every request.

**Where it lives.** Each process (API worker, CLI) keeps one :class:`EventIndex` per
(engine, project, scope, rule): the reports the scope may see (``public``: published and not
private, each place as its location privacy shows it to the public, ``core.privacy``: open on the
project's grid, obscured on the obscured cell; ``all``: every report but the trash, exact places),
the linkage components among them, the events (components with enough people) in
start order, and the *possible* reports in time order.

**How it stays right across processes.** Before answering, :meth:`EventIndex.refresh` asks the
database for the ends of two primary keys, the largest observation id and the largest audit
entry id (every edit and moderation writes one in its own transaction): no scan. When both are
as last seen, nothing was added, edited or moderated anywhere and the answer comes from memory.
Otherwise it reads, by primary key ranges from ``ID_OVERLAP`` ids back (ids are taken in one
order and committed in another), the project's rows not seen yet and those named by audit
entries not seen yet, and applies each: a report the scope may see is added (or replaced, when
edited), one it may no longer see (unpublished, trashed, no longer a whole report) is removed.
At most every ``COUNT_EVERY_S`` it also counts the project's rows: a row deleted, or committed
later than ``ID_OVERLAP`` ids, makes the count differ, and the project is read again whole; it
is also read whole every ``FULL_RELOAD_S``. (``updated_at`` is not used: no index covers it,
and scanning for it cost 300 ms at 100,000 reports on SQLite.)

**Incremental.** Events are the connected components of the link graph (same category, at
most ``window_h`` apart in time and ``distance_m`` apart in space). A new report can only link
to reports of its category within ``window_h`` of its time: those are found by bisection in a
per-category time line, the components it links are merged, and only the merged component is
summarised again. A removed report can only split its own component: that component alone is
clustered again (:func:`plugins.odour.events.link_components`). The result is the same as a
detection over all the reports (``tests/plugins/odour/test_odour_event_store.py`` checks it
against :func:`~plugins.odour.events.detect_events` after random arrivals, edits and removals).

**Bounds.** Memory: about 0.5 KiB per report kept (measured by ``bench/odour.py``), and at most
``MAX_REPORTS`` reports per index (more answers 503 ``too_many_reports``). Time of a request
once warm: the version query, the changes since the last request, and a page of at most
``PAGE_MAX`` events with at most ``POSSIBLE_MAX`` possible ids. The first request of a process
for a project reads and clusters the whole project (about 1 s per 100,000 reports).
"""

from __future__ import annotations

import base64
import bisect
import heapq
import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select

from core.db.models import AuditEntry, Observation
from core.db.session import transaction
from core.errors import EngineError
from core.privacy import snap
from plugins.odour.catalogue import CATEGORIES
from plugins.odour.enrichment import EARTH_RADIUS_M
from plugins.odour.events import link_components, report_annoyance

COUNT_EVERY_S = 5.0
"""The project's rows are counted at most this often (a count scans an index of the project):
a deleted row, or one committed more than ID_OVERLAP ids late, is seen within this time."""
ID_OVERLAP = 1000
"""New rows and audit entries are read from this many ids before the largest seen: ids are
taken in one order and committed in another."""
FULL_RELOAD_S = 30 * 60.0
PAGE_DEFAULT = 100
PAGE_MAX = 1000
POSSIBLE_MAX = 5000
MAX_REPORTS = 1_000_000


class TooManyReports(EngineError):
    code = "too_many_reports"
    http_status = 503


class InvalidCursor(EngineError):
    code = "invalid_cursor"
    http_status = 422


@dataclass(frozen=True)
class Rule:
    """The linkage rule and what the scope sees."""

    window_s: float
    distance_m: float
    min_contributors: int
    statuses: tuple[str, ...]
    digits: int | None  # open places snapped to this many decimals (None: exact)
    obscured_digits: int | None = None  # obscured places snapped to this many decimals (None: exact)
    keep_private: bool = True  # False for the public: a private report has no public place

    def place_digits(self, privacy: str | None) -> int | None | bool:
        """Decimals a report of this location privacy is kept to (None: exact), or False when
        the scope does not see it (a private one, for the public; an unknown privacy fails closed)."""
        if privacy == "open":
            return self.digits
        if privacy == "obscured":
            return self.obscured_digits
        return None if self.keep_private else False


@dataclass(frozen=True, slots=True)
class Row:
    """One report as the index keeps it."""

    id: int
    category: int
    t: float
    lat: float
    lon: float
    contributor: int | None
    intensity: int
    hedonic: int
    observed_at: datetime
    subtype: int | None = None
    duration: int | None = None


def _small_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def row_of(obs_id: int, contributor: int | None, observed_at: datetime, lat: float, lon: float, fields: Any,
           digits: int | None | bool) -> Row | None:
    """A Row from stored columns, None when they do not hold a whole odour report or ``digits`` is
    False (:meth:`Rule.place_digits`: the scope does not see the report's place)."""
    if digits is False:
        return None
    if isinstance(fields, str):
        try:
            fields = json.loads(fields)
        except ValueError:
            return None
    if not isinstance(fields, dict) or lat is None or lon is None or observed_at is None:
        return None
    try:
        category, intensity, hedonic = int(fields["category"]), int(fields["intensity"]), int(fields["hedonic_tone"])
    except (KeyError, TypeError, ValueError):
        return None
    moment = _as_utc(observed_at)
    return Row(obs_id, category, moment.timestamp(), snap(float(lat), digits), snap(float(lon), digits),
               contributor, intensity, hedonic, moment, _small_int(fields.get("subtype")),
               _small_int(fields.get("duration")))


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(h, 1.0)))


def encode_cursor(key: tuple[float, int, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, int, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        start, category, first = raw
        key = (float(start), int(category), int(first))
        if not math.isfinite(key[0]) or isinstance(start, bool):
            raise ValueError
        return key
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor(f"cursor {text[:80]!r} is not one this list gave (use next_cursor as it came)") from None


def _backwards(line: list[tuple[float, int]], start: int, stop: int) -> Iterable[tuple[float, int]]:
    for k in range(stop - 1, start - 1, -1):
        yield line[k]


class EventIndex:
    """The events of one project for one scope, kept up to date (see the module docstring)."""

    def __init__(self, rule: Rule, kind: str = "odour"):
        self.rule, self.kind = rule, kind
        self.lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.reports: dict[int, Row] = {}
        self.timeline: dict[int, list[tuple[float, int]]] = {}  # category -> sorted (t, id)
        self.comp_of: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}
        self.events: dict[int, dict[str, Any]] = {}  # component -> summary
        self.order: list[tuple[float, int, int]] = []  # events' keys: (start t, category, first report id)
        self.key_comp: dict[tuple[float, int, int], int] = {}
        self.possible: dict[int, list[tuple[float, int]]] = {}  # category -> sorted (t, id) outside events
        self.max_span = 0.0
        self.next_comp = 0
        self.known: set[int] = set()  # ids of the project's rows, any kind and status
        self.audits: set[int] = set()  # the project's audit entries applied, of the last ID_OVERLAP ids
        self.version: tuple[int, int] | None = None  # (largest observation id, largest audit entry id)
        self.loaded_at = self.counted_at = 0.0

    # ----------------------------------------------------------------- components

    def _summary(self, ids: list[int]) -> dict[str, Any]:
        rows = sorted((self.reports[i] for i in ids), key=lambda r: (r.t, r.id))
        n = len(rows)
        x = y = z = 0.0
        for r in rows:
            la, lo = math.radians(r.lat), math.radians(r.lon)
            x += math.cos(la) * math.cos(lo)
            y += math.cos(la) * math.sin(lo)
            z += math.sin(la)
        people = {r.contributor for r in rows}
        first, last = rows[0], rows[-1]
        category = CATEGORIES.get(first.category)
        c_lat, c_lon = math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))
        return {
            "key": (first.t, first.category, first.id),
            "end_t": last.t,
            "people": people,
            "row": {
                "id": 0,
                "category": first.category,
                "start": first.observed_at.isoformat(),
                "end": last.observed_at.isoformat(),
                # on the public grid too: the mean of public places, shown as places are
                "centroid": {"lat": snap(c_lat, self.rule.digits), "lon": snap(c_lon, self.rule.digits)},
                "report_ids": [r.id for r in rows],
                "n_reports": n,
                "n_contributors": len(people),
                "annoyance": sum(report_annoyance(r.intensity, r.hedonic) for r in rows) / n,
                "mean_intensity": sum(r.intensity for r in rows) / n,
                "mean_hedonic_tone": sum(r.hedonic for r in rows) / n,
                "category_name": category.name if category else str(first.category),
                "colour": category.colour if category else None,
                "duration_min": round((last.t - first.t) / 60, 1),
                "max_intensity": max(r.intensity for r in rows),
            },
        }

    def _drop_component(self, comp: int) -> list[int]:
        ids = self.members.pop(comp)
        summary = self.events.pop(comp, None)
        if summary is not None:
            key = summary["key"]
            del self.order[bisect.bisect_left(self.order, key)]
            del self.key_comp[key]
        else:
            for i in ids:
                row = self.reports.get(i)
                if row is not None:
                    line = self.possible[row.category]
                    del line[bisect.bisect_left(line, (row.t, i))]
        return ids

    def _add_component(self, ids: list[int], *, bulk: bool = False) -> None:
        comp = self.next_comp
        self.next_comp += 1
        self.members[comp] = ids
        for i in ids:
            self.comp_of[i] = comp
        if len({self.reports[i].contributor for i in ids}) >= self.rule.min_contributors:
            summary = self._summary(ids)
            self.events[comp] = summary
            self.key_comp[summary["key"]] = comp
            if bulk:
                self.order.append(summary["key"])
            else:
                bisect.insort(self.order, summary["key"])
            self.max_span = max(self.max_span, summary["end_t"] - summary["key"][0])
        else:
            for i in ids:
                row = self.reports[i]
                line = self.possible.setdefault(row.category, [])
                if bulk:
                    line.append((row.t, i))
                else:
                    bisect.insort(line, (row.t, i))

    def add(self, row: Row) -> None:
        """Add a report, or replace it when it changed (an edit)."""
        old = self.reports.get(row.id)
        if old is not None:
            if old == row:
                return
            self.remove(row.id)
        self.reports[row.id] = row
        line = self.timeline.setdefault(row.category, [])
        bisect.insort(line, (row.t, row.id))
        lo = bisect.bisect_left(line, (row.t - self.rule.window_s, -math.inf))
        hi = bisect.bisect_right(line, (row.t + self.rule.window_s, math.inf))
        linked = {self.comp_of[j] for _, j in line[lo:hi] if j != row.id and j in self.comp_of
                  and _haversine(row.lat, row.lon, self.reports[j].lat, self.reports[j].lon) <= self.rule.distance_m}
        ids = [row.id]
        for comp in linked:
            ids.extend(self._drop_component(comp))
        self._add_component(ids)

    def remove(self, report_id: int) -> None:
        """Take a report out (unpublished, trashed, deleted, or before an edit)."""
        if report_id not in self.reports:
            return
        comp = self.comp_of.pop(report_id)
        rest = [i for i in self._drop_component(comp) if i != report_id]
        row = self.reports.pop(report_id)
        line = self.timeline[row.category]
        del line[bisect.bisect_left(line, (row.t, report_id))]
        for group in self._split(rest):
            self._add_component(group)

    def _split(self, ids: list[int]) -> list[list[int]]:
        """The components of ``ids`` (reports of one former component)."""
        if len(ids) <= 1:
            return [ids] if ids else []
        rows = [self.reports[i] for i in ids]
        labels = link_components(
            np.asarray([r.category for r in rows]), np.asarray([r.t for r in rows]),
            np.asarray([r.lat for r in rows]), np.asarray([r.lon for r in rows]),
            window_s=self.rule.window_s, distance_m=self.rule.distance_m,
        ).tolist()
        groups: dict[int, list[int]] = {}
        for i, label in zip(ids, labels, strict=True):
            groups.setdefault(label, []).append(i)
        return list(groups.values())

    def build(self, rows: Iterable[Row]) -> None:
        """Start again from these reports (one vectorised clustering, not one add each)."""
        known, version, audits = self.known, self.version, self.audits
        self._clear()
        self.known, self.version, self.audits = known, version, audits
        for row in rows:
            self.reports[row.id] = row
        ids = list(self.reports)
        for group in self._split(ids) if len(ids) > 1 else [[i] for i in ids]:
            self._add_component(group, bulk=True)
        for row in self.reports.values():
            self.timeline.setdefault(row.category, []).append((row.t, row.id))
        for lines in (self.timeline, self.possible):
            for line in lines.values():
                line.sort()
        self.order.sort()
        self.loaded_at = time.monotonic()

    # ----------------------------------------------------------------- reading

    def page(self, *, since: float | None, until: float | None, category: int | None,
             cursor: tuple[float, int, int] | None, limit: int | None, possible_max: int | None) -> dict[str, Any]:
        """Events overlapping [since, until) of ``category``, in start order, after ``cursor``.

        ``possible`` holds the possible reports of the time this page covers: from ``since``
        (or the previous page's last event's start, exclusive) up to this page's last event's
        start (or ``until`` on the last page), so that paging through lists each one once."""
        if cursor is not None:
            position = bisect.bisect_right(self.order, cursor)
        elif since is not None:
            position = bisect.bisect_left(self.order, (since - self.max_span, -math.inf, -math.inf))
        else:
            position = 0
        out: list[dict[str, Any]] = []
        next_key = None
        for index in range(position, len(self.order)):
            key = self.order[index]
            if until is not None and key[0] >= until:
                break
            if category is not None and key[1] != category:
                continue
            summary = self.events[self.key_comp[key]]
            if since is not None and summary["end_t"] < since:
                continue
            if limit is not None and len(out) == limit:
                next_key = out[-1]["_key"]
                break
            out.append({**summary["row"], "id": index + 1, "_key": key, "_people": summary["people"]})
        low = cursor[0] if cursor is not None else since
        high = next_key[0] if next_key is not None else until
        possible, truncated = self._possible(low, high, cursor is not None, next_key is not None, category,
                                             possible_max)
        return {"events": out, "next": next_key, "possible": possible, "possible_truncated": truncated,
                "n_reports": self.count(since, until, category)}

    def _possible(self, low: float | None, high: float | None, low_open: bool, high_closed: bool,
                  category: int | None, cap: int | None) -> tuple[list[int], bool]:
        lines = [self.possible.get(category, [])] if category is not None else list(self.possible.values())
        chunks = []
        for line in lines:
            start = 0 if low is None else (bisect.bisect_right(line, (low, math.inf)) if low_open
                                           else bisect.bisect_left(line, (low, -math.inf)))
            stop = len(line) if high is None else (bisect.bisect_right(line, (high, math.inf)) if high_closed
                                                   else bisect.bisect_left(line, (high, -math.inf)))
            chunks.append(line[start:stop] if cap is None else line[start:min(stop, start + cap + 1)])
        merged = [i for _, i in heapq.merge(*chunks)]
        if cap is not None and len(merged) > cap:
            return merged[:cap], True
        return merged, False

    def count(self, since: float | None, until: float | None, category: int | None) -> int:
        lines = [self.timeline.get(category, [])] if category is not None else list(self.timeline.values())
        total = 0
        for line in lines:
            start = 0 if since is None else bisect.bisect_left(line, (since, -math.inf))
            stop = len(line) if until is None else bisect.bisect_left(line, (until, -math.inf))
            total += max(0, stop - start)
        return total

    def _ranges(self, since: float | None, until: float | None,
                category: int | None) -> list[tuple[list[tuple[float, int]], int, int]]:
        lines = [self.timeline.get(category, [])] if category is not None else list(self.timeline.values())
        out = []
        for line in lines:
            start = 0 if since is None else bisect.bisect_left(line, (since, -math.inf))
            stop = len(line) if until is None else bisect.bisect_left(line, (until, -math.inf))
            if stop > start:
                out.append((line, start, stop))
        return out

    def newest(self, *, since: float | None, until: float | None, category: int | None,
               cap: int) -> tuple[list[Row], int]:
        """The reports in [since, until) of ``category``: at most the newest ``cap`` of them, in
        time order, and how many there are in all. Work: O(cap) plus a bisection per category."""
        ranges = self._ranges(since, until, category)
        total = sum(stop - start for _, start, stop in ranges)
        chunks = [line[max(start, stop - cap):stop] for line, start, stop in ranges]
        merged = list(heapq.merge(*chunks))[-cap:] if cap > 0 else []
        return [self.reports[i] for _, i in merged], total

    def newest_matching(self, *, since: float | None, until: float | None, category: int | None,
                        keep: Any, cap: int) -> tuple[list[Row], bool]:
        """The newest ``cap`` reports in [since, until) of ``category`` for which ``keep(row)``
        holds, in time order, and whether there were more. Walks back from the newest: at most
        the reports of the range are looked at (never more than the index holds)."""
        walks = [_backwards(line, start, stop) for line, start, stop in self._ranges(since, until, category)]
        found: list[Row] = []
        for _, i in heapq.merge(*walks, reverse=True):
            row = self.reports[i]
            if keep(row):
                if len(found) == cap:
                    found.reverse()
                    return found, True
                found.append(row)
        found.reverse()
        return found, False

    # ----------------------------------------------------------------- the database

    def refresh(self, engine: Any, project: str, kind: str) -> None:
        """Bring the index up to date with the database (see the module docstring)."""
        where = Observation.project == project
        columns = (Observation.id, Observation.kind, Observation.status, Observation.contributor_id,
                   Observation.observed_at, Observation.lat, Observation.lon, Observation.fields,
                   Observation.location_privacy)
        with transaction(engine.readers) as session:
            top, audited = session.execute(select(  # the primary keys' ends: no scan
                select(func.max(Observation.id)).scalar_subquery(),
                select(func.max(AuditEntry.id)).scalar_subquery())).one()
            now = time.monotonic()
            count = None
            if self.version is None or now - self.counted_at > COUNT_EVERY_S:
                count = int(session.scalar(select(func.count(Observation.id)).where(where)) or 0)
                self.counted_at = now
            version = (int(top or 0), int(audited or 0))
            stale = now - self.loaded_at > FULL_RELOAD_S
            if version == self.version and not stale and (count is None or count == len(self.known)):
                return
            if self.version is None or stale or (count is not None and version == self.version):
                # first read, or the periodic one, or rows deleted / committed too late to be seen
                self.audits = set(session.scalars(select(AuditEntry.id).where(
                    AuditEntry.project == project, AuditEntry.id > version[1] - ID_OVERLAP)))
                self._load(session.execute(select(*columns).where(where)).all(), version)
                return
            # new rows, and rows edited or moderated since (each writes an audit entry in its
            # transaction), by ranges of primary keys (any project's, then this one's kept), from
            # ID_OVERLAP back, as ids are taken in one order and committed in another; only what
            # was not seen yet is read whole
            recent = session.execute(select(Observation.id, Observation.project).where(
                Observation.id > self.version[0] - ID_OVERLAP)).all()
            wanted = {i for i, p in recent if p == project and i not in self.known}
            entries = session.execute(select(AuditEntry.id, AuditEntry.project, AuditEntry.observation_id).where(
                AuditEntry.id > self.version[1] - ID_OVERLAP)).all()
            mine = [(entry, obs) for entry, p, obs in entries if p == project]
            wanted |= {obs for entry, obs in mine if entry not in self.audits and obs is not None}
            self.audits = {entry for entry, _ in mine}
            wanted_ids = sorted(wanted)
            changed = []
            for start in range(0, len(wanted_ids), 500):
                changed += session.execute(select(*columns).where(
                    where, Observation.id.in_(wanted_ids[start:start + 500]))).all()
        for obs_id, row_kind, status, contributor, observed_at, lat, lon, fields, privacy in changed:
            self.known.add(obs_id)
            row = row_of(obs_id, contributor, observed_at, lat, lon, fields, self.rule.place_digits(privacy)) \
                if row_kind == kind and status in self.rule.statuses else None
            if row is None:
                self.remove(obs_id)
            else:
                self._check_size(len(self.reports) + 1)
                self.add(row)
        self.version = version
        if count is not None and count != len(self.known):  # deleted, or committed later than ID_OVERLAP
            self.version = None
            self.refresh(engine, project, kind)

    def _load(self, rows: list[Any], version: tuple[int, int]) -> None:
        self.known = {r[0] for r in rows}
        kept = [row_of(obs_id, contributor, observed_at, lat, lon, fields, self.rule.place_digits(privacy))
                for obs_id, row_kind, status, contributor, observed_at, lat, lon, fields, privacy in rows
                if row_kind == self.kind and status in self.rule.statuses]
        kept = [r for r in kept if r is not None]
        self._check_size(len(kept))
        self.version = version
        self.build(kept)

    def _check_size(self, n: int) -> None:
        if n > MAX_REPORTS:
            self.version = None
            raise TooManyReports(f"the project has more than {MAX_REPORTS:,} odour reports to keep in memory for "
                                 "its events; raise plugins.odour.event_store.MAX_REPORTS or narrow the project")


_INDEXES_LOCK = threading.Lock()


def index_for(engine: Any, project: str, rule: Rule) -> EventIndex:
    """This process's index of ``project`` under ``rule`` for ``engine`` (made empty the first
    time; kept with the engine: ``Engine.state``)."""
    indexes: dict[tuple[Any, ...], EventIndex] = engine.state("odour.event_indexes", dict)
    with _INDEXES_LOCK:
        index = indexes.get((project, rule))
        if index is None:
            index = indexes[(project, rule)] = EventIndex(rule)
        return index
