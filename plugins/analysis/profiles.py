"""Engagement profiles (Ponciano & Brasileiro 2014): contributors with enough active days are
clustered by four engagement metrics, and each cluster is named after the profile its centroid
describes: hardworking, spasmodic, persistent, lasting or moderate.

The four metrics (columns of ``participation.contributor_metrics``):

- ``activity_ratio`` (a): active days / days from first to last;
- ``obs_per_active_day`` (d): stands in for the paper's daily devoted time (hours a day), which
  field observations do not record; clustered as log(1 + d);
- ``relative_duration`` (r): days from first to last / days from the first to the end of the data;
- ``periodicity_variation`` (v): standard deviation of the days between active days; clustered as
  log(1 + v), 0 where one gap gives no deviation.

They are standardised (z-scores over the profiled contributors) and clustered by k-means (numpy,
k-means++ starts, a fixed seed, the best of ``n_init`` runs). A centroid's z-scores decide its
name (``SCORES``): the assignment of names to clusters that scores highest in total wins, each
name used once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from typing import Any, Callable

import numpy as np
import pandas as pd

from core.types import ProjectContext

PROFILES = ("hardworking", "spasmodic", "persistent", "lasting", "moderate")
FEATURES = ("activity_ratio", "obs_per_active_day", "relative_duration", "periodicity_variation")
DEFAULT_MIN_ACTIVE_DAYS = 5
"""The registry's ``analysis.profile_min_active_days`` default."""

Centroid = dict[str, float]

SCORES: dict[str, Callable[[Centroid], float]] = {
    # active on most days of their stay, many observations a day, at a steady rhythm
    "hardworking": lambda z: z["a"] + z["d"] - z["v"],
    # a short stay with bursts: short relative duration, irregular, few observations a day
    "spasmodic": lambda z: -z["r"] + z["v"] - z["d"],
    # a long stay at a steady rhythm
    "persistent": lambda z: z["r"] - z["v"],
    # a long stay but rarely and irregularly active
    "lasting": lambda z: z["r"] + z["v"] - z["a"],
    # nothing stands out: the centroid nearest the middle
    "moderate": lambda z: -(abs(z["a"]) + abs(z["d"]) + abs(z["r"]) + abs(z["v"])),
}
"""How a centroid (z-scores a, d, r, v) fits each profile, as we read the paper's descriptions."""


def min_active_days_of(project: ProjectContext) -> int:
    """The project's ``analysis.profile_min_active_days`` setting (default 5)."""
    return int(project.settings("analysis").get("profile_min_active_days", DEFAULT_MIN_ACTIVE_DAYS))


@dataclass(frozen=True)
class EngagementProfiles:
    """Profiles found: ``profile`` per profiled contributor (index contributor_id), the clusters'
    ``centroids`` (one row per profile: size and the members' mean metrics in their own units),
    and who was left out (``n_below``: fewer than ``min_active_days`` active days)."""

    profile: pd.Series
    centroids: pd.DataFrame
    min_active_days: int
    n_below: int

    @property
    def counts(self) -> dict[str, int]:
        """Contributors per profile (every profile named, 0 when none)."""
        found = self.profile.value_counts()
        return {name: int(found.get(name, 0)) for name in PROFILES}

    def summary(self) -> dict[str, Any]:
        """What an API answer or a report shows: no contributor ids, only counts and centroids."""
        return {
            "min_active_days": self.min_active_days,
            "n_profiled": int(len(self.profile)),
            "n_below_min_active_days": self.n_below,
            "counts": self.counts,
            "centroids": [{"profile": name, **{k: (None if pd.isna(v) else float(v)) for k, v in row.items()}}
                          for name, row in self.centroids.iterrows()],
        }


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """k-means of the rows of ``x`` (Lloyd's algorithm from k-means++ starts, the lowest inertia
    of ``n_init`` runs): (labels, centroids)."""
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n})")
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(n_init):
        centres = _plusplus(x, k, rng)
        labels = np.full(n, -1)
        for _ in range(max_iter):
            moved_labels = _squared_distances(x, centres).argmin(axis=0)
            if np.array_equal(moved_labels, labels):
                break
            labels = moved_labels
            sums = np.stack([np.bincount(labels, weights=x[:, j], minlength=k) for j in range(x.shape[1])], axis=1)
            sizes = np.bincount(labels, minlength=k)
            centres = np.where(sizes[:, None] > 0, sums / np.maximum(sizes, 1)[:, None], centres)
        distance = _squared_distances(x, centres)
        labels = distance.argmin(axis=0)
        inertia = float(distance.min(axis=0).sum())
        if best is None or inertia < best[0] - 1e-9 * max(1.0, best[0]):
            best = (inertia, labels, centres)
    assert best is not None
    return best[1], best[2]


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distance of each row of ``x`` to each centre: shape (centres, rows)."""
    distance = np.zeros((len(centres), len(x)))
    for j in range(x.shape[1]):
        distance += (x[:, j][None, :] - centres[:, j][:, None]) ** 2
    return distance


def _plusplus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ starting centres: each next one drawn with probability by squared distance."""
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        distance = _squared_distances(x, np.array(centres)).min(axis=0)
        total = distance.sum()
        pick = rng.choice(len(x), p=distance / total) if total > 0 else rng.integers(len(x))
        centres.append(x[pick])
    return np.array(centres, dtype=float)


def features(metrics: pd.DataFrame) -> pd.DataFrame:
    """The four clustered metrics, transformed (log of the counts, 0 for an undefined variation)."""
    return pd.DataFrame({
        "a": metrics["activity_ratio"].astype(float),
        "d": np.log1p(metrics["obs_per_active_day"].astype(float)),
        "r": metrics["relative_duration"].astype(float),
        "v": np.log1p(metrics["periodicity_variation"].astype(float).fillna(0.0)),
    }, index=metrics.index)


def name_clusters(centroids_z: pd.DataFrame) -> list[str]:
    """A profile name for each centroid (rows with columns a, d, r, v as z-scores): the
    assignment with the highest total score (``SCORES``), each name used at most once."""
    rows = [row.to_dict() for _, row in centroids_z.iterrows()]
    score = {(i, name): SCORES[name](row) for i, row in enumerate(rows) for name in PROFILES}
    best = max(permutations(PROFILES, len(rows)), key=lambda names: sum(score[i, n] for i, n in enumerate(names)))
    return list(best)


def engagement_profiles(metrics: pd.DataFrame, min_active_days: int = DEFAULT_MIN_ACTIVE_DAYS, *, k: int = 5,
                        seed: int = 0) -> EngagementProfiles:
    """Profiles of the contributors in ``metrics`` (``participation.contributor_metrics``) with at
    least ``min_active_days`` active days; fewer clusters than ``k`` when fewer distinct
    contributors qualify."""
    if min_active_days < 2:
        raise ValueError("min_active_days must be at least 2 (a profile needs gaps between active days)")
    if not 1 <= k <= len(PROFILES):
        raise ValueError(f"k must be between 1 and {len(PROFILES)}")
    eligible = metrics[metrics["active_days"].astype(int) >= min_active_days]
    n_below = int(len(metrics) - len(eligible))
    columns = ["size", *FEATURES]
    if eligible.empty:
        empty = pd.Series(pd.Categorical([], categories=PROFILES), index=eligible.index, name="profile")
        return EngagementProfiles(empty, pd.DataFrame(columns=columns, index=pd.Index([], name="profile")),
                                  min_active_days, n_below)
    x = features(eligible)
    spread = x.std(ddof=0).replace(0, 1.0)
    z = (x - x.mean()) / spread
    k = min(k, len(z.drop_duplicates()))
    labels, centres = kmeans(z.to_numpy(), k, seed=seed)
    names = name_clusters(pd.DataFrame(centres, columns=list(z.columns)))
    profile = pd.Series(pd.Categorical(np.array(names)[labels], categories=PROFILES), index=eligible.index,
                        name="profile")
    means = eligible[list(FEATURES)].astype(float).groupby(profile.to_numpy(), observed=True).mean()
    means.insert(0, "size", profile.value_counts().reindex(means.index))
    means = means.reindex([p for p in PROFILES if p in means.index])
    means.index.name = "profile"
    return EngagementProfiles(profile, means, min_active_days, n_below)


def profiles_of(frame: pd.DataFrame, timezone: str = "UTC", min_active_days: int = DEFAULT_MIN_ACTIVE_DAYS, *,
                time_column: str = "observed_at", k: int = 5, seed: int = 0) -> EngagementProfiles:
    """Profiles straight from an observations frame (periodicity estimated from
    ``min_active_days`` active days on, so that every profiled contributor has it)."""
    from plugins.analysis.participation import contributor_metrics

    metrics = contributor_metrics(frame, timezone, time_column=time_column, periodicity_min_days=min_active_days)
    return engagement_profiles(metrics, min_active_days, k=k, seed=seed)
