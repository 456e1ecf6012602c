"""The contributors frame: one row per pseudonymous contributor of an observations frame."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from plugins.analysis.frames.columns import STRING, UTC


def contributors_frame(observations: pd.DataFrame, names: Mapping[int, str] | None = None) -> pd.DataFrame:
    """contributor_id, n_observations, first_at, last_at, active_days (distinct UTC days observed);
    display_name only when ``names`` is given (staff reading locally). Observations without a
    visible contributor are left out."""
    seen = observations.dropna(subset=["contributor_id"])
    grouped = seen.groupby("contributor_id", observed=True)
    frame = pd.DataFrame({
        "n_observations": grouped.size().astype("Int64"),
        "first_at": grouped["observed_at"].min().astype(UTC),
        "last_at": grouped["observed_at"].max().astype(UTC),
        "active_days": grouped["observed_at"].agg(lambda t: t.dt.floor("D").nunique()).astype("Int64"),
    }).reset_index()
    frame["contributor_id"] = frame["contributor_id"].astype("Int64")
    if names is not None:
        frame["display_name"] = pd.Series([names.get(int(i)) for i in frame["contributor_id"]], dtype=STRING)
    return frame
