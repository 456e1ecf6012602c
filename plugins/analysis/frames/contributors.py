"""The contributors frame: one row per pseudonymous contributor of an observations frame."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from plugins.analysis.frames.columns import STRING, UTC


def contributors_frame(observations: pd.DataFrame, names: Mapping[int, str] | None = None,
                       timezone: str = "UTC") -> pd.DataFrame:
    """contributor_id, n_observations, first_at, last_at, active_days (distinct local days in
    ``timezone`` observed, as ``participation.active_days`` counts them); display_name only when
    ``names`` is given (staff reading locally). Observations without a visible contributor are left out."""
    from plugins.analysis.participation import active_days

    seen = observations.dropna(subset=["contributor_id"])
    grouped = seen.groupby("contributor_id", observed=True)
    frame = pd.DataFrame({
        "n_observations": grouped.size().astype("Int64"),
        "first_at": grouped["observed_at"].min().astype(UTC),
        "last_at": grouped["observed_at"].max().astype(UTC),
    }).reset_index()
    days = active_days(seen, timezone)
    ids, counts = np.unique(days.contributor, return_counts=True)
    per = pd.Series(counts, index=ids)
    frame["active_days"] = pd.array(per.reindex(frame["contributor_id"].to_numpy(dtype=np.int64), fill_value=0)
                                    .to_numpy(), dtype="Int64")
    frame["contributor_id"] = frame["contributor_id"].astype("Int64")
    if names is not None:
        frame["display_name"] = pd.Series([names.get(int(i)) for i in frame["contributor_id"]], dtype=STRING)
    return frame
