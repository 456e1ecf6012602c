"""Observation frames with planted contributor patterns and their known answers, for the
participation tests (and anyone else who needs a frame shaped like ``Observatory.observations``).

``planted()`` gives a small project (Europe/Madrid, the year 2024) where every contributor follows
one pattern (``PATTERNS``): a few hardworking (every day for a month, many observations a day),
spasmodic (short irregular bursts), persistent (weekly, all year), lasting (rarely, irregularly,
for most of the year), moderate (every two to four days for three months), people who came on
two to four days, and many who came once. ``Planted.expected`` holds each contributor's planted
figures, and the project's Gini, top-10% share and one-day share are computed here by other
formulas than the ones under test.

``big_frame(n_obs, n_contributors)`` is a large random frame (a few contributors give most
observations) for the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

TIMEZONE = "Europe/Madrid"
START = date(2024, 1, 1)
END = date(2024, 12, 31)
"""The last day with an observation (a one-day contributor comes then): every contributor's
relative duration is measured up to it."""


@dataclass(frozen=True)
class Pattern:
    """``count`` contributors who are active on the days ``first + offsets`` with ``per_day``
    observations each day; ``profile`` is the engagement profile they are planted as (None: too
    few active days to get one)."""

    name: str
    count: int
    first: date
    offsets: tuple[int, ...]
    per_day: int
    profile: str | None


def _days(gaps: list[int]) -> tuple[int, ...]:
    """Offsets from the first active day: 0 then the running sum of ``gaps``."""
    return (0, *accumulate(gaps))


PATTERNS: tuple[Pattern, ...] = (
    # every day for 30 days, 20 observations a day: ratio 1, no variation
    Pattern("hardworking", 4, date(2024, 1, 10), tuple(range(30)), 20, "hardworking"),
    # 6 days within 13, gaps 1,1,4,1,5: short, bursty
    Pattern("spasmodic", 6, date(2024, 3, 1), _days([1, 1, 4, 1, 5]), 2, "spasmodic"),
    # every 7 days from 1 January to 29 December: 52 days over 364, perfectly regular
    Pattern("persistent", 5, START, tuple(range(0, 364, 7)), 3, "persistent"),
    # 6 days over 296, gaps 10,90,5,150,40: long and irregular
    Pattern("lasting", 5, date(2024, 2, 1), _days([10, 90, 5, 150, 40]), 1, "lasting"),
    # every 2 or 4 days (alternating) for 91 days: 31 days
    Pattern("moderate", 6, date(2024, 6, 1), _days([2, 4] * 15), 4, "moderate"),
    # 3 days within a week: too few days for a profile
    Pattern("few_days", 10, date(2024, 4, 1), (0, 2, 6), 1, None),
    # one day, two observations
    Pattern("one_day", 64, date(2024, 5, 1), (0,), 2, None),
    # one day, the last of the year: fixes the end of the observed period
    Pattern("last_day", 1, END, (0,), 1, None),
)


@dataclass(frozen=True)
class Expected:
    """A planted contributor's figures."""

    pattern: str
    profile: str | None
    n_observations: int
    active_days: int
    first_day: date
    last_day: date
    duration_days: int
    activity_ratio: float
    periodicity_days: float | None
    periodicity_variation: float | None


@dataclass(frozen=True)
class Planted:
    """A planted frame and what the participation metrics must find in it."""

    frame: pd.DataFrame
    expected: dict[int, Expected]
    timezone: str = TIMEZONE
    project: str = "planted"
    counts: dict[int, int] = field(default_factory=dict)

    @property
    def gini(self) -> float:
        """Gini of observations per contributor, by the mean absolute difference of all pairs."""
        x = np.array(list(self.counts.values()), dtype=float)
        return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean()))

    @property
    def top10_share(self) -> float:
        """Share of observations given by the top 10% of contributors (rounded up to whole people)."""
        ordered = sorted(self.counts.values(), reverse=True)
        top = -(-len(ordered) // 10)
        return sum(ordered[:top]) / sum(ordered)

    @property
    def one_day_share(self) -> float:
        return sum(1 for e in self.expected.values() if e.active_days == 1) / len(self.expected)

    def ids(self, pattern: str) -> list[int]:
        """The contributor ids planted with ``pattern``."""
        return [cid for cid, e in self.expected.items() if e.pattern == pattern]


def _periodicity(days: list[date]) -> tuple[float | None, float | None]:
    """Median and standard deviation (n - 1) of the gaps between active days within a year,
    written out by hand; None below five active days (recorderMetrics' default limit)."""
    if len(days) < 5:
        return None, None
    gaps = [(b - a).days for a, b in zip(days, days[1:]) if a.year == b.year]
    ordered = sorted(gaps)
    n = len(ordered)
    median = (ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2)
    mean = sum(gaps) / n
    sd = (sum((g - mean) ** 2 for g in gaps) / (n - 1)) ** 0.5 if n > 1 else None
    return float(median), sd


def frame_of(rows: list[tuple[int, datetime]], project: str = "planted") -> pd.DataFrame:
    """An observations frame (the contract's dtypes) of (contributor_id, observed_at) rows."""
    observed = pd.to_datetime([t for _, t in rows], utc=True).as_unit("ns")
    n = len(rows)
    return pd.DataFrame({
        "id": pd.array(range(1, n + 1), dtype="Int64"),
        "project": pd.Categorical([project] * n),
        "kind": pd.Categorical(["photo"] * n),
        "status": pd.Categorical(["published"] * n),
        "contributor_id": pd.array([c for c, _ in rows], dtype="Int64"),
        "observed_at": observed,
        "created_at": observed + pd.Timedelta(minutes=5),
        "updated_at": observed + pd.Timedelta(minutes=5),
    })


def planted(project: str = "planted") -> Planted:
    """The planted project: ``PATTERNS``' contributors (ids from 1), observations at local times
    through the day (some just after midnight, some just before: a day is Madrid's day)."""
    zone = ZoneInfo(TIMEZONE)
    rows: list[tuple[int, datetime]] = []
    expected: dict[int, Expected] = {}
    counts: dict[int, int] = {}
    cid = 0
    for pattern in PATTERNS:
        for _ in range(pattern.count):
            cid += 1
            days = [pattern.first + timedelta(days=o) for o in pattern.offsets]
            for day in days:
                for i in range(pattern.per_day):
                    # 00:10, 23:50, then through the day: the first two fall on another UTC day
                    minute = (10, 23 * 60 + 50)[i] if i < 2 else 8 * 60 + 7 * i
                    local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minute)
                    rows.append((cid, local))
            n_obs = len(days) * pattern.per_day
            duration = (days[-1] - days[0]).days + 1
            median, sd = _periodicity(days)
            expected[cid] = Expected(pattern.name, pattern.profile, n_obs, len(days), days[0], days[-1], duration,
                                     len(days) / duration, median, sd)
            counts[cid] = n_obs
    rows.sort(key=lambda r: r[1])
    return Planted(frame_of(rows, project), expected, project=project, counts=counts)


def big_frame(n_obs: int, n_contributors: int, *, seed: int = 0, project: str = "big",
              days: int = 730) -> pd.DataFrame:
    """``n_obs`` random observations by ``n_contributors`` over ``days`` days from 2023-01-01 UTC:
    contributors drawn by a Zipf-like weight (a few give most), each contributor's observations
    gathered around a personal start day. Every contributor has at least one observation."""
    if n_contributors < 1 or n_obs < n_contributors:
        raise ValueError("need at least one observation per contributor")
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_contributors + 1) ** 1.1
    extra = rng.choice(n_contributors, size=n_obs - n_contributors, p=weights / weights.sum())
    who = np.concatenate([np.arange(n_contributors), extra])
    start = rng.integers(0, days, size=n_contributors)
    spread = rng.exponential(60, size=n_contributors)
    offset = np.clip(start[who] + rng.exponential(1, size=n_obs) * spread[who], 0, days - 1e-6)
    seconds = (offset * 86400).astype(np.int64)
    observed = pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    order = np.argsort(seconds, kind="stable")
    frame = pd.DataFrame({
        "id": pd.array(np.arange(1, n_obs + 1), dtype="Int64"),
        "project": pd.Categorical.from_codes(np.zeros(n_obs, dtype=np.int8), [project]),
        "status": pd.Categorical.from_codes(np.zeros(n_obs, dtype=np.int8), ["published"]),
        "contributor_id": pd.array(who[order] + 1, dtype="Int64"),
        "observed_at": pd.DatetimeIndex(observed[order]).as_unit("ns"),
    })
    frame["created_at"] = frame["observed_at"]
    return frame
