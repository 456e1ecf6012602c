"""Odour events: reports of one odour, close in time and space, from several people.

**Definition.** Two reports are *linked* when they have the same category, their times differ by
at most ``window`` (default 4 h) and their great-circle distance is at most ``distance_m``
(default 2 km). Linked reports are grouped transitively (single linkage: the connected
components of the link graph). A group with reports from at least ``min_contributors`` distinct
contributors (default 2) is an **event**; every other report is **possible** (a lone report,
or several from one person). Reports without a contributor count as one anonymous contributor.

**Annoyance score** of an event: the mean over its reports of
``intensity * max(0, -hedonic_tone)``, from 0 (neutral or pleasant, or not perceptible) to 24
(intensity 6, extremely strong, with hedonic tone -4, extremely unpleasant). Pleasant reports
add nothing and unpleasant ones weigh by how strong they are.

**Scaling.** :func:`detect_events` never compares all pairs: reports are put in cells of
(category, time / window, latitude / distance, longitude / distance-at-the-widest-latitude);
two linked reports always lie in the same or in neighbouring cells, so only the pairs of each
cell and of its 13 "forward" neighbours are checked exactly. Components are joined with a
vectorised union-find (hooking the larger root onto the smaller, then pointer jumping). The work
is proportional to the number of reports plus the number of candidate pairs, which stays close
to linear when, as with odour reports, the density per cell is bounded. :func:`naive_events`
is the plain pairwise comparison (O(n^2)), kept to check the fast one. Large inputs are put in time
order once, then clustered and summarised a block of time at a time (:data:`BLOCK` reports),
so that the arrays each step touches stay in the processor's caches, and the events' Python
objects are built with the cyclic garbage collector paused (its full passes grew with the
input): the time per report stays flat from 250k to 1M reports (``bench/odour.py``).
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np

from plugins.odour.enrichment import EARTH_RADIUS_M, haversine_m
from plugins.odour.reports import UTC, Report, as_utc, epoch_seconds, to_report

DEFAULT_WINDOW = timedelta(hours=4)
DEFAULT_DISTANCE_M = 2000.0
DEFAULT_MIN_CONTRIBUTORS = 2

_PAIR_CHUNK = 2_000_000
"""Candidate pairs checked at once (at least one pair of cells), to bound the memory used."""


def report_annoyance(intensity: float, hedonic_tone: float) -> float:
    """One report's share of the annoyance score: ``intensity * max(0, -hedonic_tone)``."""
    return float(intensity) * max(0.0, -float(hedonic_tone))


@dataclass(frozen=True)
class Event:
    """A detected odour event."""

    id: int
    category: int
    start: datetime
    end: datetime
    centroid_lat: float
    centroid_lon: float
    report_ids: tuple[Hashable, ...]
    n_reports: int
    n_contributors: int
    annoyance: float
    mean_intensity: float
    mean_hedonic_tone: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (times in ISO 8601, UTC)."""
        return {
            "id": self.id,
            "category": self.category,
            "start": as_utc(self.start).isoformat(),
            "end": as_utc(self.end).isoformat(),
            "centroid": {"lat": self.centroid_lat, "lon": self.centroid_lon},
            "report_ids": list(self.report_ids),
            "n_reports": self.n_reports,
            "n_contributors": self.n_contributors,
            "annoyance": self.annoyance,
            "mean_intensity": self.mean_intensity,
            "mean_hedonic_tone": self.mean_hedonic_tone,
        }


@dataclass(frozen=True)
class EventDetection:
    """The result: events (ordered by start, then category) and the ids of possible reports."""

    events: list[Event]
    possible: list[Hashable]

    def event_of(self) -> dict[Hashable, int]:
        """Report id -> event id, for the reports that belong to an event."""
        return {rid: e.id for e in self.events for rid in e.report_ids}

    def groups(self) -> set[frozenset[Hashable]]:
        """The events as sets of report ids (what two detections must agree on)."""
        return {frozenset(e.report_ids) for e in self.events}


@dataclass
class ReportArrays:
    """Reports as parallel numpy columns, for large inputs.

    ``t`` is seconds since the epoch (UTC); ``contributor`` is an integer code per contributor
    (equal codes = same person); ``ids`` may be any array (it is only carried through).
    ``observed_at`` optionally keeps the original datetimes so that events report them exactly.
    """

    ids: np.ndarray
    contributor: np.ndarray
    category: np.ndarray
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    intensity: np.ndarray
    hedonic_tone: np.ndarray
    observed_at: Sequence[datetime] | None = None

    def __post_init__(self) -> None:
        n = len(self.t)
        for name in ("ids", "contributor", "category", "lat", "lon", "intensity", "hedonic_tone"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, t has {n}")
        if n and (np.abs(self.lat) > 90).any():
            raise ValueError("latitudes must lie within -90..90")

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_reports(cls, reports: Iterable[Any]) -> ReportArrays:
        """Columns from Reports (or anything :func:`~plugins.odour.reports.to_report` accepts)."""
        reps = [to_report(r) for r in reports]
        codes: dict[Hashable, int] = {}
        contributor = [codes.setdefault(r.contributor, len(codes)) for r in reps]
        ids = np.empty(len(reps), dtype=object)
        ids[:] = [r.id for r in reps]
        return cls(
            ids=ids,
            contributor=np.asarray(contributor, dtype=np.int64),
            category=np.asarray([r.category for r in reps], dtype=np.int64),
            t=np.asarray([epoch_seconds(r.observed_at) for r in reps], dtype=np.float64),
            lat=np.asarray([r.lat for r in reps], dtype=np.float64),
            lon=np.asarray([r.lon for r in reps], dtype=np.float64),
            intensity=np.asarray([r.intensity for r in reps], dtype=np.float64),
            hedonic_tone=np.asarray([r.hedonic_tone for r in reps], dtype=np.float64),
            observed_at=[r.observed_at for r in reps],
        )


def _seconds(window: timedelta | float) -> float:
    seconds = window.total_seconds() if isinstance(window, timedelta) else float(window)
    if not seconds > 0:
        raise ValueError(f"window must be positive, got {window!r}")
    return seconds


def _check_distance(distance_m: float) -> float:
    distance = float(distance_m)
    if not distance > 0:
        raise ValueError(f"distance_m must be positive, got {distance_m!r}")
    return distance


# --------------------------------------------------------------------------- fast path


def _codes(values: Any) -> np.ndarray:
    """Small non-negative integer codes for ``values`` (equal values, equal codes).

    Non-negative integers below 2**31 are their own codes; anything else is numbered through
    one sort. (``np.unique`` is avoided: its hash path, and its ``return_inverse``, grow faster
    than linearly with the input on numpy 2.x, which made the detection superlinear.)"""
    array = np.asarray(values)
    if array.dtype.kind in "iu" and len(array) and array.min() >= 0 and array.max() < 2**31:
        return array.astype(np.int64, copy=False)
    if len(array) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(array, kind="stable")
    ordered = array[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    codes = np.empty(len(array), dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return codes


def _distinct_per_group(group: np.ndarray, code: np.ndarray, n_groups: int) -> np.ndarray:
    """How many distinct ``code`` values each group holds (one sort of a combined key)."""
    if len(group) == 0:
        return np.zeros(n_groups, dtype=np.int64)
    width = int(code.max()) + 1
    key = np.sort(group.astype(np.int64) * width + code)
    first = np.r_[True, key[1:] != key[:-1]]
    return np.bincount(key[first] // width, minlength=n_groups)


def _haversine_np(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres; arguments in radians."""
    h = np.sin((lat2 - lat1) * 0.5) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) * 0.5) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def _union(parent: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Join the components of the edges (u, v); ``parent`` must be fully compressed (roots)."""
    while len(u):
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            break
        u, v, pu, pv = u[differ], v[differ], pu[differ], pv[differ]
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))
        while True:  # pointer jumping: every node points at its root again
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def _pairs(starts_a: np.ndarray, counts_a: np.ndarray, starts_b: np.ndarray, counts_b: np.ndarray):
    """All (i, j) with i in block a and j in block b, for each block pair, in chunks."""
    sizes = counts_a * counts_b
    total_before = np.cumsum(sizes) - sizes
    bounds = [0]
    # split the block pairs so that each chunk holds about _PAIR_CHUNK pairs (at least one block)
    cum = np.cumsum(sizes)
    while bounds[-1] < len(sizes):
        base = cum[bounds[-1] - 1] if bounds[-1] else 0
        nxt = int(np.searchsorted(cum, base + _PAIR_CHUNK, side="right"))
        bounds.append(max(nxt, bounds[-1] + 1))
    for lo, hi in pairwise(bounds):
        sz = sizes[lo:hi]
        total = int(sz.sum())
        if total == 0:
            continue
        block = np.repeat(np.arange(lo, hi), sz)
        offset = np.arange(total, dtype=np.int64) - np.repeat(total_before[lo:hi] - total_before[lo], sz)
        cb = counts_b[block]
        yield starts_a[block] + offset // cb, starts_b[block] + offset % cb


BLOCK = 1 << 16
"""Reports clustered at once: larger inputs are cut in blocks of time (each with one window of
the next), so that the arrays of a block stay in the processor's caches. On whole arrays, every
step slowed down per report as they outgrew the caches (time x5.3 for 4x the reports)."""


def link_components(
    category: np.ndarray,
    t: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    window_s: float,
    distance_m: float,
) -> np.ndarray:
    """Component label of each report under the linkage rule (same category, |dt| <= window_s,
    distance <= distance_m): the smallest index (in the input order) of a report of the same
    component, so equal labels mean the same component and a lone report is its own label.

    Inputs larger than :data:`BLOCK` are cut along time: block k holds the reports at positions
    [k * BLOCK, (k + 1) * BLOCK) in time order and every later report within ``window_s`` of its
    last one, so that each link lies inside some block; the blocks' components are then joined.
    """
    n = len(t)
    window_s = _seconds(window_s)
    t = np.asarray(t, dtype=np.float64)
    if n <= 2 * BLOCK or not np.isfinite(t).all():
        return _link_block(category, t, lat, lon, window_s=window_s, distance_m=distance_m)
    category, lat, lon = np.asarray(category), np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    cat_s, lat_s, lon_s = category[order], lat[order], lon[order]
    heads, tails = [], []
    for start in range(0, n, BLOCK):
        end = min(start + BLOCK, n)
        reach = int(np.searchsorted(ts, ts[end - 1] + window_s, side="right"))
        local = _link_block(cat_s[start:reach], ts[start:reach], lat_s[start:reach], lon_s[start:reach],
                            window_s=window_s, distance_m=distance_m)
        joined = np.flatnonzero(local != np.arange(len(local)))
        heads.append(joined + start)
        tails.append(local[joined] + start)
    # join the blocks' components (edges: each report to its block's label), in time positions
    return _component_labels(n, order, np.concatenate(heads), np.concatenate(tails))


def _link_block(
    category: np.ndarray,
    t: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    window_s: float,
    distance_m: float,
) -> np.ndarray:
    """:func:`link_components` on arrays small enough to stay in the caches (or that must)."""
    n = len(t)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    window_s, distance_m = _seconds(window_s), _check_distance(distance_m)
    lat_r = np.radians(np.asarray(lat, dtype=np.float64))
    lon_r = np.radians(np.asarray(lon, dtype=np.float64))
    t = np.asarray(t, dtype=np.float64)
    for name, column in (("t", t), ("lat", lat_r), ("lon", lon_r)):
        if not np.isfinite(column).all():
            raise ValueError(f"column {name} holds {int((~np.isfinite(column)).sum())} missing or infinite values")
    cat = _codes(category).ravel()

    margin = 1 + 1e-9
    theta = distance_m / EARTH_RADIUS_M
    tc = np.floor((t - t.min()) / (window_s * margin)).astype(np.int64)
    lat_cell = theta * margin
    yc = np.floor((lat_r + math.pi / 2) / lat_cell).astype(np.int64)
    # longitude cells wide enough at the highest latitude present: for two linked reports,
    # hav(dlon) <= hav(theta) / cos^2(max |lat|); the ring of cells wraps at the antimeridian.
    cos_max = math.cos(float(np.abs(lat_r).max()))
    s = math.sin(theta / 2) / cos_max if cos_max > 0 else math.inf
    n_lon = 1 if s >= 1 else int(2 * math.pi / (2 * math.asin(s) * margin))
    if n_lon < 3:
        n_lon = 1
    xc = np.floor(np.mod(lon_r + math.pi, 2 * math.pi) / (2 * math.pi / n_lon)).astype(np.int64)
    np.clip(xc, 0, n_lon - 1, out=xc)

    n_t, n_y = int(tc.max()) + 3, int(yc.max()) + 3
    n_cat = int(cat.max()) + 1
    if float(n_cat) * n_t * n_y * n_lon >= 2**62:
        raise ValueError("too many cells for this window and distance over this data's extent")
    key = ((cat * n_t + (tc + 1)) * n_y + (yc + 1)) * n_lon + xc

    order = np.argsort(key)  # any order within a cell will do: the components do not depend on it
    skey = key[order]
    s_t, s_lat, s_lon = t[order], lat_r[order], lon_r[order]
    first = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
    cell_key = skey[first]
    cell_count = np.diff(np.r_[first, n])

    # decode the cells' coordinates once, to build neighbours' keys
    c_x = cell_key % n_lon
    rest = cell_key // n_lon
    c_y = rest % n_y
    rest //= n_y
    c_t = rest % n_t
    c_cat = rest // n_t

    offsets = [(dt, dy, dx) for dt in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    forward = [o for o in offsets if o > (0, 0, 0) and (n_lon > 1 or o[2] == 0)]

    links_i: list[np.ndarray] = []
    links_j: list[np.ndarray] = []

    def check(i: np.ndarray, j: np.ndarray) -> None:
        ok = np.abs(s_t[i] - s_t[j]) <= window_s
        i, j = i[ok], j[ok]
        ok = _haversine_np(s_lat[i], s_lon[i], s_lat[j], s_lon[j]) <= distance_m
        if ok.any():
            links_i.append(i[ok])
            links_j.append(j[ok])

    # pairs inside one cell
    multi = cell_count > 1
    for i, j in _pairs(first[multi], cell_count[multi], first[multi], cell_count[multi]):
        keep = i < j
        check(i[keep], j[keep])
    # pairs between a cell and each forward neighbour
    for dt, dy, dx in forward:
        nkey = ((c_cat * n_t + c_t + dt) * n_y + c_y + dy) * n_lon + (c_x + dx) % n_lon
        pos = np.searchsorted(cell_key, nkey)
        pos_c = np.minimum(pos, len(cell_key) - 1)
        found = cell_key[pos_c] == nkey
        if not found.any():
            continue
        a, b = np.flatnonzero(found), pos_c[found]
        for i, j in _pairs(first[a], cell_count[a], first[b], cell_count[b]):
            check(i, j)

    # one union of every link at the end (a union per neighbour direction made as many passes
    # of pointer jumping over all n reports), and only over the reports that have a link, in
    # 32-bit numbers: the random reads of pointer jumping slow down per report as the arrays
    # outgrow the caches, so they are kept as small as they can be
    none = np.empty(0, dtype=np.int64)
    u, v = (np.concatenate(links_i), np.concatenate(links_j)) if links_i else (none, none)
    return _component_labels(n, order, u, v)


def _component_labels(n: int, order: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each report's component (the smallest original index in it), from links ``u[k]``–``v[k]``
    between positions in time order (``order`` maps a position to its original index)."""
    parent = np.arange(n, dtype=np.int64)
    if len(u):
        linked = np.zeros(n, dtype=bool)
        linked[u] = True
        linked[v] = True
        nodes = np.flatnonzero(linked)
        compact = np.zeros(n, dtype=np.int32)
        compact[nodes] = np.arange(len(nodes), dtype=np.int32)
        roots = _union(np.arange(len(nodes), dtype=np.int32), compact[u], compact[v])
        parent[nodes] = nodes[roots]
    labels = np.empty(n, dtype=np.int64)
    labels[order] = order[parent]
    # make the label the smallest original index of the component
    root_min = np.full(n, n, dtype=np.int64)
    np.minimum.at(root_min, labels, np.arange(n, dtype=np.int64))
    return root_min[labels]


def cluster_labels(
    arrays: ReportArrays,
    *,
    window: timedelta | float = DEFAULT_WINDOW,
    distance_m: float = DEFAULT_DISTANCE_M,
    min_contributors: int = DEFAULT_MIN_CONTRIBUTORS,
) -> tuple[np.ndarray, np.ndarray]:
    """``(component, is_event)`` per report: the linkage component label, and whether that
    component has at least ``min_contributors`` distinct contributors."""
    comp, is_event, _ = _cluster(arrays, window, distance_m, min_contributors)
    return comp, is_event


def _cluster(
    arrays: ReportArrays, window: timedelta | float, distance_m: float, min_contributors: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    comp = link_components(
        arrays.category, arrays.t, arrays.lat, arrays.lon, window_s=_seconds(window), distance_m=distance_m
    )
    n = len(comp)
    if n == 0:
        return comp, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    contrib = _codes(arrays.contributor).ravel()
    distinct = _distinct_per_group(comp, contrib, n)
    return comp, distinct[comp] >= int(min_contributors), contrib


def _utc_datetimes(seconds: np.ndarray) -> list[datetime]:
    """Aware UTC datetimes of epoch seconds, to the microsecond, converted in one numpy call."""
    micro = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64).astype("datetime64[us]")
    return [moment.replace(tzinfo=UTC) for moment in micro.tolist()]


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while many acyclic objects are made (events, their
    tuples and datetimes): its full passes, triggered by the number of new objects and walking
    every object of the process, made building a million reports' events superlinear (0.5 s of
    2.1 s at 1M, 0.03 s of 0.4 s at 250k). Nothing made here holds a cycle, so nothing is lost;
    the collector runs again at the end, as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def detect_events_arrays(
    arrays: ReportArrays,
    *,
    window: timedelta | float = DEFAULT_WINDOW,
    distance_m: float = DEFAULT_DISTANCE_M,
    min_contributors: int = DEFAULT_MIN_CONTRIBUTORS,
) -> EventDetection:
    """Events from column data (the fast path used by :func:`detect_events`).

    Every column is put in time order once; from there on, components are summarised a block
    of time at a time (:data:`BLOCK` reports, each component in the block of its first report,
    with the later reports it reaches), so that every array a step touches stays in the
    caches: on whole arrays of a million reports the gathers and sorts of the summary slowed
    down per report (log-log slope 1.2 between 250k and 1M)."""
    n = len(arrays)
    if n == 0:
        return EventDetection([], [])
    window_s = _seconds(window)
    t = np.asarray(arrays.t, dtype=np.float64)
    ids = np.asarray(arrays.ids)
    by_time = np.argsort(t, kind="stable")  # the one global reordering; ties keep the input order
    ts = t[by_time]
    category = np.asarray(arrays.category)[by_time]
    lat, lon = np.asarray(arrays.lat, dtype=np.float64)[by_time], np.asarray(arrays.lon, dtype=np.float64)[by_time]
    # labels: the first position (in time order) of each component
    comp = link_components(category, ts, lat, lon, window_s=window_s, distance_m=distance_m)
    contrib = _codes(arrays.contributor).ravel()[by_time]
    intensity = np.asarray(arrays.intensity, dtype=np.float64)[by_time]
    hedonic = np.asarray(arrays.hedonic_tone, dtype=np.float64)[by_time]
    lat_r, lon_r = np.radians(lat), np.radians(lon)
    values = np.stack([intensity * np.maximum(0.0, -hedonic), intensity, hedonic, np.cos(lat_r) * np.cos(lon_r),
                       np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)])
    # the last position of each component, for the reach of each block
    last = np.arange(n, dtype=np.int64)
    np.maximum.at(last, comp, np.arange(n, dtype=np.int64))
    is_event = np.zeros(n, dtype=bool)
    parts: list[tuple[np.ndarray, ...]] = []
    for b0 in range(0, n, BLOCK):
        b1 = min(b0 + BLOCK, n)
        reach = int(last[b0:b1].max()) + 1
        window_labels = comp[b0:reach]
        mine = np.flatnonzero((window_labels >= b0) & (window_labels < b1)) + b0  # in time order
        labels = comp[mine]
        # group by component, each group in time order (positions are time order): one local sort
        order = mine[np.argsort((labels - b0) * (reach - b0) + (mine - b0))]  # unique keys
        gcomp = comp[order]
        starts = np.flatnonzero(np.r_[True, gcomp[1:] != gcomp[:-1]])
        ends = np.r_[starts[1:], len(order)]
        group_of = np.repeat(np.arange(len(starts)), ends - starts)
        n_contrib = _distinct_per_group(group_of, contrib[order], len(starts))
        event_group = n_contrib >= int(min_contributors)
        is_event[order[event_group[group_of]]] = True
        if not event_group.any():
            continue
        keep = event_group[group_of]
        order, group_of = order[keep], group_of[keep]
        remap = np.cumsum(event_group) - 1
        group_of = remap[group_of]
        g_starts, g_ends = starts[event_group], ends[event_group]
        g_starts = np.r_[0, np.cumsum(g_ends - g_starts)[:-1]]
        g_ends = np.r_[g_starts[1:], len(order)]
        n_groups = len(g_starts)
        sums = [np.bincount(group_of, weights=v[order], minlength=n_groups) for v in values]
        parts.append((order, g_starts, g_ends, n_contrib[event_group], *sums))
    possible_mask = np.ones(n, dtype=bool)
    possible_mask[by_time[is_event]] = False
    with _no_cyclic_gc():
        return _events_of(arrays, parts, by_time, ts, category, ids[possible_mask].tolist())


def _events_of(arrays: ReportArrays, parts: list[tuple[np.ndarray, ...]], by_time: np.ndarray, ts: np.ndarray,
               category: np.ndarray, possible: list[Any]) -> EventDetection:
    """The Event objects of the blocks' parts (members in time positions, group bounds, sums)."""
    ids = np.asarray(arrays.ids)
    if not parts:
        return EventDetection([], possible)

    # the parts joined: positions (time order) of the members, group bounds, sums
    offsets = np.cumsum([0] + [len(part[0]) for part in parts])
    order = np.concatenate([part[0] for part in parts])
    starts = np.concatenate([part[1] + off for part, off in zip(parts, offsets, strict=False)])
    ends = np.concatenate([part[2] + off for part, off in zip(parts, offsets, strict=False)])
    n_contrib = np.concatenate([part[3] for part in parts])
    annoy_s, int_s, hed_s, cx, cy, cz = (np.concatenate([part[4 + k] for part in parts]) for k in range(6))
    count = (ends - starts).astype(np.float64)
    annoy, mean_i, mean_h = annoy_s / count, int_s / count, hed_s / count
    c_lat = np.degrees(np.arctan2(cz, np.hypot(cx, cy)))
    c_lon = np.degrees(np.arctan2(cy, cx))

    first_pos, last_pos = order[starts], order[ends - 1]
    first_idx = by_time[first_pos]  # input index of each event's first report
    ranking = np.lexsort((first_idx, category[first_pos], ts[first_pos]))
    observed = arrays.observed_at
    if observed is not None:
        starts_at = [observed[i] for i in first_idx.tolist()]
        ends_at = [observed[i] for i in by_time[last_pos].tolist()]
    else:
        starts_at, ends_at = _utc_datetimes(ts[first_pos]), _utc_datetimes(ts[last_pos])

    # plain lists: indexing numpy arrays one element at a time costs more than the rest
    ids_sorted = ids[by_time[order]].tolist()
    starts_l, ends_l = starts.tolist(), ends.tolist()
    cat_l = category[first_pos].tolist()
    c_lat_l, c_lon_l, annoy_l = c_lat.tolist(), c_lon.tolist(), annoy.tolist()
    mean_i_l, mean_h_l, n_contrib_l = mean_i.tolist(), mean_h.tolist(), n_contrib.tolist()
    events = []
    for rank, g in enumerate(ranking.tolist(), start=1):
        lo, hi = starts_l[g], ends_l[g]
        events.append(
            Event(
                id=rank,
                category=int(cat_l[g]),
                start=starts_at[g],
                end=ends_at[g],
                centroid_lat=c_lat_l[g],
                centroid_lon=c_lon_l[g],
                report_ids=tuple(ids_sorted[lo:hi]),
                n_reports=hi - lo,
                n_contributors=n_contrib_l[g],
                annoyance=annoy_l[g],
                mean_intensity=mean_i_l[g],
                mean_hedonic_tone=mean_h_l[g],
            )
        )
    return EventDetection(events, possible)


def detect_events(
    reports: Iterable[Any],
    *,
    window: timedelta | float = DEFAULT_WINDOW,
    distance_m: float = DEFAULT_DISTANCE_M,
    min_contributors: int = DEFAULT_MIN_CONTRIBUTORS,
) -> EventDetection:
    """Detect odour events in ``reports`` (Reports, or anything ``to_report`` accepts).

    ``window`` is a timedelta or seconds. See the module docstring for the rule and the score.
    """
    return detect_events_arrays(
        ReportArrays.from_reports(reports),
        window=window,
        distance_m=distance_m,
        min_contributors=min_contributors,
    )


# --------------------------------------------------------------------------- plain reference


def _summarise(group: list[Report], event_id: int) -> Event:
    group = sorted(group, key=lambda r: epoch_seconds(r.observed_at))
    n = len(group)
    x = y = z = 0.0
    for r in group:
        la, lo = math.radians(r.lat), math.radians(r.lon)
        x += math.cos(la) * math.cos(lo)
        y += math.cos(la) * math.sin(lo)
        z += math.sin(la)
    return Event(
        id=event_id,
        category=group[0].category,
        start=group[0].observed_at,
        end=group[-1].observed_at,
        centroid_lat=math.degrees(math.atan2(z, math.hypot(x, y))),
        centroid_lon=math.degrees(math.atan2(y, x)),
        report_ids=tuple(r.id for r in group),
        n_reports=n,
        n_contributors=len({r.contributor for r in group}),
        annoyance=sum(report_annoyance(r.intensity, r.hedonic_tone) for r in group) / n,
        mean_intensity=sum(r.intensity for r in group) / n,
        mean_hedonic_tone=sum(r.hedonic_tone for r in group) / n,
    )


def naive_events(
    reports: Iterable[Any],
    *,
    window: timedelta | float = DEFAULT_WINDOW,
    distance_m: float = DEFAULT_DISTANCE_M,
    min_contributors: int = DEFAULT_MIN_CONTRIBUTORS,
) -> EventDetection:
    """The same grouping by comparing every pair of reports: O(n^2), for checks and baselines."""
    window_s, distance_m = _seconds(window), _check_distance(distance_m)
    reps = [to_report(r) for r in reports]
    times = [epoch_seconds(r.observed_at) for r in reps]
    parent = list(range(len(reps)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(reps):
        for j in range(i + 1, len(reps)):
            b = reps[j]
            if (
                a.category == b.category
                and abs(times[i] - times[j]) <= window_s
                and haversine_m(a.lat, a.lon, b.lat, b.lon) <= distance_m
            ):
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)

    groups: dict[int, list[int]] = {}
    for i in range(len(reps)):
        groups.setdefault(find(i), []).append(i)
    event_groups, in_event = [], set()
    for members in groups.values():
        if len({reps[i].contributor for i in members}) >= min_contributors:
            event_groups.append([reps[i] for i in members])
            in_event.update(members)
    event_groups.sort(key=lambda g: (min(epoch_seconds(r.observed_at) for r in g), g[0].category))
    events = [_summarise(g, k) for k, g in enumerate(event_groups, start=1)]
    possible = [r.id for i, r in enumerate(reps) if i not in in_event]
    return EventDetection(events, possible)
