"""Quality flags on odour reports: bursts, reports outside the project's zones, implausible
combinations. Each flag is a ``core.types.Flag`` (severity ``warning``, plugin ``odour``) whose
``value`` is what was measured: the number of reports in the burst, the distance to the nearest
zone in metres, the offending field value.

Flag codes: ``odour.burst``, ``odour.outside_zones``, ``odour.nice_but_unpleasant``,
``odour.no_odour_but_continuous``, ``odour.imperceptible_but_hedonic``.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from core.types import Flag
from plugins.odour.catalogue import (
    CATEGORIES,
    DURATION_ALL_DAY,
    DURATION_LAST_HOUR,
    DURATIONS,
    HEDONIC_TONE_LABELS,
    NICE,
    NO_ODOUR,
)
from plugins.odour.enrichment import distance_to_zones_m
from plugins.odour.reports import epoch_seconds

DEFAULT_BURST_REPORTS = 5
DEFAULT_BURST_MINUTES = 10.0
PLUGIN = "odour"


def _flag(code: str, message: str, value: Any) -> Flag:
    return Flag(code=f"odour.{code}", message=message, severity="warning", value=value, plugin=PLUGIN)


def burst_size(observed_at: datetime, others: Iterable[datetime], *, minutes: float = DEFAULT_BURST_MINUTES) -> int:
    """The most reports (this one included) one contributor made within any span of
    ``minutes`` that contains this report. ``others``: the times of that contributor's other
    reports (any order; reports far away in time are simply ignored)."""
    span = minutes * 60.0
    t = epoch_seconds(observed_at)
    times = sorted([t] + [x for x in (epoch_seconds(o) for o in others) if abs(x - t) <= span])
    best = 0
    for i, begin in enumerate(times):
        if begin > t:
            break
        if begin + span < t:
            continue
        best = max(best, bisect.bisect_right(times, begin + span) - i)
    return best


def burst_flag(
    observed_at: datetime,
    others: Iterable[datetime],
    *,
    min_reports: int = DEFAULT_BURST_REPORTS,
    minutes: float = DEFAULT_BURST_MINUTES,
) -> Flag | None:
    """``odour.burst`` when the contributor made at least ``min_reports`` reports within
    ``minutes`` (this one among them), else None. ``value`` is the number of reports."""
    size = burst_size(observed_at, others, minutes=minutes)
    if size < min_reports:
        return None
    return _flag(
        "burst",
        f"{size} reports from one contributor within {minutes:g} minutes (a burst is {min_reports} or more)",
        size,
    )


def burst_sizes(
    contributors: Sequence[Hashable], times: Sequence[datetime] | np.ndarray, *, minutes: float = DEFAULT_BURST_MINUTES
) -> np.ndarray:
    """:func:`burst_size` for every report of a data set at once (``times`` as datetimes or
    epoch seconds). Sorting per contributor, then two pointers: O(n log n)."""
    n = len(contributors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    t = np.asarray([epoch_seconds(x) for x in times] if not isinstance(times, np.ndarray) else times, dtype=np.float64)
    codes: dict[Hashable, int] = {}
    c = np.asarray([codes.setdefault(x, len(codes)) for x in contributors], dtype=np.int64)
    order = np.lexsort((t, c))
    sc, st = c[order], t[order]
    span = minutes * 60.0
    # windows [st[i], st[i] + span] within one contributor: end index (exclusive) of each
    key = sc.astype(np.float64) * (st.max() - st.min() + 2 * span + 1) + (st - st.min())
    end = np.searchsorted(key, key + span, side="right")
    count = end - np.arange(n)
    # a report's burst = the largest window starting at or before it that still reaches it
    start = np.searchsorted(key, key - span, side="left")
    # every window starting in [start[i], i] (same contributor, within `span` before) reaches i
    best = np.fromiter((count[start[i] : i + 1].max() for i in range(n)), dtype=np.int64, count=n)
    out = np.empty(n, dtype=np.int64)
    out[order] = best
    return out


def zone_flag(lat: float, lon: float, zones: Sequence[Mapping[str, Any]] | None) -> Flag | None:
    """``odour.outside_zones`` when the project defines zones and the report lies in none.
    ``value`` is the distance in metres to the nearest zone (rounded)."""
    if not zones:
        return None
    distance = distance_to_zones_m(lat, lon, zones)
    if not distance:
        return None
    names = ", ".join(str(z.get("name")) for z in zones)
    return _flag(
        "outside_zones",
        f"the report lies outside every zone of the project ({names}), {distance:,.0f} m from the nearest",
        round(distance),
    )


def combination_flags(fields: Mapping[str, Any]) -> list[Flag]:
    """Flags for combinations of valid values that are unlikely to be meant:

    * a *nice* odour with a negative hedonic tone (``value``: the hedonic tone);
    * *no odour* with a continuous duration (``value``: the duration id);
    * intensity 0 (not perceptible) with a non-zero hedonic tone (``value``: the hedonic tone).
    Fields that are missing or of the wrong type are skipped (validation reports those).
    """
    category = fields.get("category")
    intensity = fields.get("intensity")
    hedonic = fields.get("hedonic_tone")
    duration = fields.get("duration")
    flags = []
    if category == NICE and isinstance(hedonic, int) and hedonic < 0:
        flags.append(
            _flag(
                "nice_but_unpleasant",
                f"category {NICE} ({CATEGORIES[NICE].name.lower()}) with hedonic tone {hedonic} "
                f"({HEDONIC_TONE_LABELS.get(hedonic, '?').lower()})",
                hedonic,
            )
        )
    if category == NO_ODOUR and duration in (DURATION_LAST_HOUR, DURATION_ALL_DAY):
        flags.append(
            _flag(
                "no_odour_but_continuous",
                f"category {NO_ODOUR} (no odour) with duration {duration} ({DURATIONS[duration].lower()})",
                duration,
            )
        )
    if intensity == 0 and isinstance(hedonic, int) and hedonic != 0:
        flags.append(
            _flag(
                "imperceptible_but_hedonic",
                f"intensity 0 (not perceptible) with hedonic tone {hedonic} "
                f"({HEDONIC_TONE_LABELS.get(hedonic, '?').lower()}); an odour not perceived is neutral",
                hedonic,
            )
        )
    return flags


def quality_flags(
    fields: Mapping[str, Any],
    *,
    lat: float | None,
    lon: float | None,
    observed_at: datetime,
    contributor_times: Iterable[datetime] = (),
    zones: Sequence[Mapping[str, Any]] | None = None,
    burst_reports: int = DEFAULT_BURST_REPORTS,
    burst_minutes: float = DEFAULT_BURST_MINUTES,
) -> list[Flag]:
    """All odour flags for one report. ``contributor_times``: times of the same contributor's
    other reports (at least those within ``burst_minutes``); ``zones`` from the settings. Without
    a place (``lat``/``lon`` None: a private report's flags are public) no flag about the place."""
    flags = combination_flags(fields)
    burst = burst_flag(observed_at, contributor_times, min_reports=burst_reports, minutes=burst_minutes)
    if burst:
        flags.append(burst)
    outside = zone_flag(lat, lon, zones) if lat is not None and lon is not None else None
    if outside:
        flags.append(outside)
    return flags


def burst_window(observed_at: datetime, minutes: float = DEFAULT_BURST_MINUTES) -> tuple[datetime, datetime]:
    """The span of the contributor's reports that :func:`burst_flag` needs to see."""
    span = timedelta(minutes=minutes)
    return observed_at - span, observed_at + span
