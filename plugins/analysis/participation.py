"""Participation analytics, as CS Track studies them: per contributor (active days, duration,
activity ratio, periodicity as recorderMetrics computes it, observations per active day) and per
project (new and returning contributors per month, retention by cohort of first month,
contribution inequality, the share who never came back), across projects side by side.

Every function takes an observations frame (``Observatory.observations``; only the columns
``contributor_id`` and ``observed_at``, falling back to ``created_at``, are used) and works on
pseudonymous contributor ids only. Rows without a contributor id (what a public caller gets) are
left out. Days are the project's local days (``timezone``). See docs/analysis.md, "Participation".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

DAY_BITS = 20
DAY_OFFSET = 1 << (DAY_BITS - 1)
"""A (contributor, day) pair is packed in one int64: days since 1970 fit within +-2**19."""

PERIODICITY_MIN_DAYS = 5
"""recorderMetrics' ``day_limit``: periodicity is not estimated below this many active days."""


@dataclass(frozen=True)
class ActiveDays:
    """Each contributor's distinct active days: ``contributor`` and ``day`` (local days since
    1970-01-01) sorted by contributor then day, and the observations per contributor."""

    contributor: np.ndarray
    day: np.ndarray
    n_observations: pd.Series

    @property
    def starts(self) -> np.ndarray:
        """Index of each contributor's first active day in ``day``."""
        if not len(self.contributor):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.r_[True, self.contributor[1:] != self.contributor[:-1]])

    @property
    def ids(self) -> np.ndarray:
        return self.contributor[self.starts]


def local_days(frame: pd.DataFrame, timezone: str = "UTC", time_column: str = "observed_at") -> np.ndarray:
    """The local day (days since 1970-01-01 in ``timezone``) of each row's ``time_column``,
    ``created_at`` where it is missing; -1 << 40 where neither is known."""
    times = frame[time_column]
    if "created_at" in frame and time_column != "created_at" and times.isna().any():
        times = times.fillna(frame["created_at"])
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"column {time_column!r} must hold zone-aware datetimes (datetime64[ns, UTC])")
    naive = times.dt.tz_convert(timezone).dt.tz_localize(None)
    days = naive.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(naive.isna().to_numpy(), -(1 << 40), days)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by hashing first (faster when many values repeat)."""
    return np.sort(pd.unique(values))


def active_days(frame: pd.DataFrame, timezone: str = "UTC", time_column: str = "observed_at") -> ActiveDays:
    """The distinct (contributor, local day) pairs of ``frame`` (rows without a contributor id or
    a time left out)."""
    if "contributor_id" not in frame:
        raise ValueError("the frame has no contributor_id column")
    days = local_days(frame, timezone, time_column)
    known = frame["contributor_id"].notna().to_numpy() & (days > -(1 << 40))
    contributor = frame["contributor_id"].to_numpy(dtype=np.int64, na_value=0)[known]
    day = days[known]
    if len(day) and (day.min() < -DAY_OFFSET or day.max() >= DAY_OFFSET):
        raise ValueError("observation dates out of range (years 535 to 3405)")
    pairs = _sorted_unique((contributor << DAY_BITS) | (day + DAY_OFFSET))
    ids, n = np.unique(contributor, return_counts=True)
    counts = pd.Series(n, index=pd.Index(ids, name="contributor_id"))
    return ActiveDays(pairs >> DAY_BITS, (pairs & ((1 << DAY_BITS) - 1)) - DAY_OFFSET, counts)


def _gaps(days: ActiveDays, within_years: bool) -> pd.DataFrame:
    """Days elapsed between each pair of a contributor's sequential active days (within a
    calendar year when ``within_years``, as recorderMetrics does)."""
    same = days.contributor[1:] == days.contributor[:-1]
    if within_years:
        year = days.day.astype("datetime64[D]").astype("datetime64[Y]")
        same &= year[1:] == year[:-1]
    return pd.DataFrame({"contributor_id": days.contributor[1:][same], "gap": np.diff(days.day)[same]})


def contributor_metrics(frame: pd.DataFrame, timezone: str = "UTC", *, time_column: str = "observed_at",
                        periodicity_min_days: int = PERIODICITY_MIN_DAYS, within_years: bool = True,
                        end: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """One row per contributor (index ``contributor_id``), days being local days in ``timezone``:

    - ``n_observations``; ``active_days``: distinct days with an observation;
    - ``first_day``, ``last_day`` (dates) and ``duration_days``: first to last, inclusive;
    - ``activity_ratio``: active_days / duration_days (recorderMetrics ``activityRatio``);
    - ``periodicity_days``, ``periodicity_variation``: median and standard deviation (n - 1) of
      the days between sequential active days, within a calendar year (recorderMetrics
      ``periodicity``; NA below ``periodicity_min_days`` active days, its ``day_limit``);
    - ``obs_per_active_day``: n_observations / active_days;
    - ``relative_duration``: duration_days / days from first_day to ``end`` inclusive (Ponciano &
      Brasileiro's relative activity duration; ``end`` defaults to the frame's last day).
    """
    return metrics_of(active_days(frame, timezone, time_column), periodicity_min_days=periodicity_min_days,
                      within_years=within_years, end=end)


def metrics_of(days: ActiveDays, *, periodicity_min_days: int = PERIODICITY_MIN_DAYS, within_years: bool = True,
               end: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """:func:`contributor_metrics` of distinct active days already found (:func:`active_days`)."""
    starts = days.starts
    ends = np.r_[starts[1:], len(days.day)].astype(np.int64) - 1 if len(starts) else starts
    ids = days.ids
    first, last = days.day[starts], days.day[ends]
    n_days = ends - starts + 1
    duration = last - first + 1
    end_day = int(days.day.max()) if end is None and len(days.day) else (
        int(pd.Timestamp(end).to_datetime64().astype("datetime64[D]").astype(np.int64)) if end is not None else 0)
    gaps = _gaps(days, within_years).groupby("contributor_id")["gap"].agg(["median", "std"])
    index = pd.Index(pd.array(ids, dtype="Int64"), name="contributor_id")
    out = pd.DataFrame({
        "n_observations": pd.array(days.n_observations.reindex(ids).to_numpy(), dtype="Int64"),
        "active_days": pd.array(n_days, dtype="Int64"),
        "first_day": first.astype("datetime64[D]").astype("datetime64[s]"),
        "last_day": last.astype("datetime64[D]").astype("datetime64[s]"),
        "duration_days": pd.array(duration, dtype="Int64"),
        "activity_ratio": n_days / duration,
    }, index=index)
    eligible = pd.Series(n_days >= periodicity_min_days, index=index)
    out["periodicity_days"] = pd.array(gaps["median"].reindex(ids).to_numpy(), dtype="Float64")
    out["periodicity_variation"] = pd.array(gaps["std"].reindex(ids).to_numpy(), dtype="Float64")
    out.loc[~eligible, ["periodicity_days", "periodicity_variation"]] = pd.NA
    out["obs_per_active_day"] = out["n_observations"].to_numpy(dtype=float) / n_days
    out["relative_duration"] = duration / np.maximum(end_day - first + 1, duration)
    return out


def gini(values: Any) -> float:
    """Gini coefficient of non-negative ``values`` (0: all equal; near 1: one gives all);
    NaN when there are none or they sum to 0."""
    x = np.sort(np.asarray(values, dtype=float))
    n, total = len(x), x.sum() if len(x) else 0.0
    if n == 0 or total <= 0:
        return float("nan")
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def top_share(values: Any, fraction: float = 0.1) -> float:
    """Share of the total given by the top ``fraction`` of contributors (rounded up to whole
    people: one of 1 to 10 contributors is the top 10%)."""
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    x = np.sort(np.asarray(values, dtype=float))[::-1]
    if not len(x) or x.sum() <= 0:
        return float("nan")
    top = int(np.ceil(fraction * len(x) - 1e-9))
    return float(x[:top].sum() / x.sum())


def _months(day: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of local days."""
    return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _contributor_months(days: ActiveDays) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (contributor, month) pairs, sorted."""
    offset = 1 << 23
    pairs = _sorted_unique((days.contributor << 24) | (_months(days.day) + offset))
    return pairs >> 24, (pairs & ((1 << 24) - 1)) - offset


def _month_label(month: Any) -> Any:
    return pd.PeriodIndex(np.asarray(month, dtype=np.int64).astype("datetime64[M]"), freq="M").astype(str)


def monthly_contributors(frame: pd.DataFrame, timezone: str = "UTC", *, time_column: str = "observed_at") -> pd.DataFrame:
    """Per month (``YYYY-MM``, every month from the first to the last): ``active`` contributors,
    ``new`` (their first month) and ``returning`` (active, first seen in an earlier month)."""
    return monthly_of(active_days(frame, timezone, time_column))


def monthly_of(days: ActiveDays) -> pd.DataFrame:
    """:func:`monthly_contributors` of distinct active days already found."""
    if not len(days.day):
        return pd.DataFrame({"month": pd.Series(dtype=str), "active": pd.Series(dtype="Int64"),
                             "new": pd.Series(dtype="Int64"), "returning": pd.Series(dtype="Int64")})
    month = _months(days.day)
    per_month = pd.Series(_contributor_months(days)[1]).value_counts()
    first_month = pd.Series(month[days.starts]).value_counts()
    span = np.arange(month.min(), month.max() + 1)
    active = per_month.reindex(span, fill_value=0).to_numpy()
    new = first_month.reindex(span, fill_value=0).to_numpy()
    return pd.DataFrame({"month": _month_label(span), "active": pd.array(active, dtype="Int64"),
                         "new": pd.array(new, dtype="Int64"), "returning": pd.array(active - new, dtype="Int64")})


def retention(frame: pd.DataFrame, timezone: str = "UTC", *, time_column: str = "observed_at") -> pd.DataFrame:
    """Retention curves by cohort of first month: one row per cohort (index ``cohort``,
    ``YYYY-MM``), ``size`` (contributors whose first month it is) and columns ``0, 1, ...``: the
    share of the cohort active in month k after its first (0 is always 1; NA past the data)."""
    return retention_of(active_days(frame, timezone, time_column))


def retention_of(days: ActiveDays) -> pd.DataFrame:
    """:func:`retention` of distinct active days already found."""
    if not len(days.day):
        return pd.DataFrame({"size": pd.Series(dtype="Int64")}, index=pd.Index([], name="cohort", dtype=str))
    month = _months(days.day)
    contributor, active_month = _contributor_months(days)
    first = pd.Series(month[days.starts], index=days.ids)
    cohort = first.reindex(contributor).to_numpy()
    size = first.value_counts().sort_index()
    last = int(month.max())
    table = pd.crosstab(cohort, active_month - cohort).reindex(columns=range(last - int(month.min()) + 1),
                                                                fill_value=0)
    shares = table.to_numpy(dtype=float) / size.reindex(table.index).to_numpy()[:, None]
    # months after the data ends are unknown, not zero
    shares[table.index.to_numpy()[:, None] + table.columns.to_numpy()[None, :] > last] = np.nan
    table = pd.DataFrame(shares, index=table.index, columns=[int(k) for k in table.columns]).astype("Float64")
    table.insert(0, "size", pd.array(size.reindex(table.index).to_numpy(), dtype="Int64"))
    table.index = pd.Index(_month_label(table.index), name="cohort")
    return table


def project_metrics(frame: pd.DataFrame, timezone: str = "UTC", *, time_column: str = "observed_at",
                    metrics: pd.DataFrame | None = None) -> dict[str, Any]:
    """A project's participation in figures: ``n_observations`` and ``n_contributors`` (with a
    contributor id), ``gini`` of observations per contributor, ``top10_share`` (share of
    observations by the top 10% of contributors; Sauermann & Franzoni found 79%),
    ``one_day_share`` (contributors who never came back after their first day), medians of
    active days, duration, activity ratio and observations per active day, and the tables
    ``monthly`` (:func:`monthly_contributors`) and ``retention`` (:func:`retention`)."""
    days = active_days(frame, timezone, time_column)
    per = metrics if metrics is not None else metrics_of(days)
    counts = per["n_observations"].to_numpy(dtype=float)
    n = len(per)

    def median(column: str) -> float:
        return float(per[column].astype(float).median()) if n else float("nan")

    return {
        "n_observations": int(counts.sum()),
        "n_contributors": n,
        "gini": gini(counts),
        "top10_share": top_share(counts, 0.1),
        "one_day_share": float((per["active_days"] == 1).mean()) if n else float("nan"),
        "median_active_days": median("active_days"),
        "median_duration_days": median("duration_days"),
        "median_activity_ratio": median("activity_ratio"),
        "median_obs_per_active_day": median("obs_per_active_day"),
        "monthly": monthly_of(days),
        "retention": retention_of(days),
    }


SCALARS = ("n_observations", "n_contributors", "gini", "top10_share", "one_day_share", "median_active_days",
           "median_duration_days", "median_activity_ratio", "median_obs_per_active_day")


def compare(frames_by_project: Mapping[str, pd.DataFrame], timezone: str | Mapping[str, str] = "UTC", *,
            time_column: str = "observed_at") -> pd.DataFrame:
    """The projects' figures side by side: one column per project, one row per figure of
    :func:`project_metrics` (the tables left out). ``timezone`` is one zone or one per project."""
    columns = {}
    for slug, frame in frames_by_project.items():
        zone = timezone if isinstance(timezone, str) else timezone.get(slug, "UTC")
        figures = project_metrics(frame, zone, time_column=time_column)
        columns[slug] = pd.Series({k: figures[k] for k in SCALARS}, dtype=float)
    return pd.DataFrame(columns, index=pd.Index(SCALARS, name="metric"))


def _number(value: Any) -> float | int | None:
    """A JSON number (None for NaN or NA)."""
    if value is None or pd.isna(value):
        return None
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def summary(frame: pd.DataFrame, timezone: str = "UTC", min_active_days: int = 5, *,
            time_column: str = "observed_at") -> dict[str, Any]:
    """A project's participation as JSON-ready data: the figures of :func:`project_metrics`, its
    ``monthly`` and ``retention`` tables as lists, and engagement ``profiles`` (counts and
    centroids only). Holds no contributor id: nothing in it names or points at a person."""
    from plugins.analysis.profiles import engagement_profiles

    days = active_days(frame, timezone, time_column)
    figures = project_metrics(frame, timezone, time_column=time_column, metrics=metrics_of(days))
    profiled = engagement_profiles(metrics_of(days, periodicity_min_days=min_active_days), min_active_days)
    monthly = figures["monthly"]
    table = figures["retention"]
    shares = table.drop(columns="size")
    return {
        "timezone": timezone,
        **{name: _number(figures[name]) for name in SCALARS},
        "monthly": [{"month": str(r.month), "active": int(r.active), "new": int(r.new), "returning": int(r.returning)}
                    for r in monthly.itertuples(index=False)],
        "retention": [{"cohort": str(cohort), "size": int(table.at[cohort, "size"]),
                       "shares": [_number(v) for v in shares.loc[cohort].dropna().tolist()]} for cohort in table.index],
        "profiles": profiled.summary(),
    }


def participating(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that count as participation: every observation but those in the trash."""
    if "status" not in frame:
        return frame
    return frame[frame["status"].astype("string").fillna("") != "trashed"]


# --------------------------------------------------------------------------- this engine's projects

MAX_PROJECTS = 20
"""Projects one comparison takes at most."""


def analysis_project(engine: Any, slug: str) -> Any:
    """The project ``slug`` (a ``ProjectContext``); NotFound when it does not exist or does not
    enable the analysis service."""
    from core.errors import NotFound
    from core.lifecycle import get_project

    project = get_project(engine, slug)
    if not project.enables("analysis"):
        enabling = ", ".join(engine.registry.projects_enabling("analysis")) or "none"
        raise NotFound(f"project {slug!r} does not enable the analysis service (projects that do: {enabling})",
                       code="analysis_not_enabled")
    return project


def participation_of(engine: Any, slugs: list[str], min_active_days: int | None = None) -> list[dict[str, Any]]:
    """:func:`summary` of each project (``project`` added), read from this engine's database as
    staff see it (``Observatory.local``), the trash left out; each project's time zone and
    ``analysis.profile_min_active_days`` unless ``min_active_days`` is given."""
    from plugins.analysis.frames import Observatory
    from plugins.analysis.profiles import min_active_days_of

    local = Observatory.local(engine=engine, cache=False)
    answers = []
    for slug in slugs:
        project = analysis_project(engine, slug)
        frame = participating(local.observations(slug))
        days = min_active_days if min_active_days is not None else min_active_days_of(project)
        answers.append({"project": slug, **summary(frame, project.timezone, days)})
    return answers
