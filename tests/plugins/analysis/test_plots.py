"""Charts of an observations frame, on frames built here with known answers: counts by hour and
weekday in the project's time zone, periods over time with their zeros, the top taxa, and the
contributions table and Lorenz curve of a planted distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plugins.analysis import plots
from plugins.analysis.plots import PlotError


def frame_of(times: list[str], *, contributors: list[int | None] | None = None,
             taxa: list[str | None] | None = None, categories: list[str | None] | None = None) -> pd.DataFrame:
    """A frame with the contract's columns the charts use."""
    n = len(times)
    return pd.DataFrame({
        "id": pd.array(range(1, n + 1), dtype="Int64"),
        "observed_at": pd.to_datetime(times, utc=True),
        "contributor_id": pd.array(contributors if contributors is not None else [1] * n, dtype="Int64"),
        "taxon_name": pd.array(taxa if taxa is not None else [None] * n, dtype="string"),
        "category": pd.array(categories if categories is not None else [None] * n, dtype="string"),
    })


# Monday 15 January 2024 22:30 UTC is 23:30 in Madrid (UTC+1); Monday 15 July 2024 22:30 UTC is
# Tuesday 00:30 in Madrid (UTC+2, summer time)
WINTER = ["2024-01-15T22:30:00Z"] * 3
SUMMER = ["2024-07-15T22:30:00Z"] * 2


def test_counts_by_hour_and_weekday_are_in_the_projects_time_zone() -> None:
    frame = frame_of(WINTER + SUMMER)
    madrid = plots.counts_by_hour(frame, timezone="Europe/Madrid")
    assert list(madrid.index) == list(range(24))
    assert madrid[23] == 3 and madrid[0] == 2 and madrid.sum() == 5
    utc = plots.counts_by_hour(frame, timezone="UTC")
    assert utc[22] == 5 and utc[23] == 0
    days = plots.counts_by_weekday(frame, timezone="Europe/Madrid")
    assert list(days.index) == list(plots.WEEKDAYS)
    assert days["Monday"] == 3 and days["Tuesday"] == 2 and days.sum() == 5
    assert plots.counts_by_weekday(frame, timezone="UTC")["Monday"] == 5


def test_the_hour_chart_draws_the_local_counts() -> None:
    figure = plots.plot_by_hour(frame_of(WINTER + SUMMER), timezone="Europe/Madrid")
    heights = [p.get_height() for p in figure.axes[0].patches]
    assert len(heights) == 24 and heights[23] == 3 and heights[0] == 2
    assert "Europe/Madrid" in figure.axes[0].get_title()
    png = plots.png_bytes(figure)
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    weekday = plots.plot_by_weekday(frame_of(WINTER + SUMMER), timezone="Europe/Madrid")
    assert [p.get_height() for p in weekday.axes[0].patches][:2] == [3, 2]


def test_counts_over_time_picks_the_period_and_keeps_empty_ones() -> None:
    days = plots.counts_over_time(frame_of(["2024-03-01T10:00Z", "2024-03-01T11:00Z", "2024-03-04T09:00Z"]))
    assert days.index.name == "day"
    assert list(days) == [2, 0, 0, 1]
    assert days.index[0] == pd.Timestamp("2024-03-01")
    weeks = plots.counts_over_time(frame_of(["2024-01-03T10:00Z", "2024-05-01T10:00Z"]))
    assert weeks.index.name == "week" and weeks.sum() == 2 and weeks.iloc[0] == 1 and (weeks.iloc[1:-1] == 0).all()
    months = plots.counts_over_time(frame_of(["2021-01-10T10:00Z", "2023-12-10T10:00Z", "2023-12-11T10:00Z"]))
    assert months.index.name == "month" and len(months) == 36 and list(months.iloc[[0, -1]]) == [1, 2]


def test_counts_over_time_uses_the_local_day() -> None:
    # 23:30 UTC on 31 March is 1 April in Madrid
    frame = frame_of(["2024-03-31T23:30:00Z", "2024-04-01T08:00:00Z"])
    local = plots.counts_over_time(frame, freq="day", timezone="Europe/Madrid")
    assert list(local.items()) == [(pd.Timestamp("2024-04-01"), 2)]
    assert len(plots.counts_over_time(frame, freq="day", timezone="UTC")) == 2


def test_contributors_over_time_counts_each_person_once_per_period() -> None:
    frame = frame_of(["2024-03-01T10:00Z"] * 3 + ["2024-03-02T10:00Z"], contributors=[7, 7, 8, 7])
    series = plots.counts_over_time(frame, what="contributors", freq="day")
    assert list(series) == [2, 1]
    figure = plots.plot_over_time(frame, what="contributors", freq="day")
    assert [p.get_height() for p in figure.axes[0].patches] == [2, 1]


def test_top_taxa_then_categories() -> None:
    taxa = ["Parus major"] * 4 + ["Erithacus rubecula"] * 2 + ["Apis mellifera"] * 2 + [None] * 3
    frame = frame_of(["2024-01-01T00:00Z"] * 11, taxa=taxa)
    top = plots.top_labels(frame, n=2)
    assert top.index.name == "taxon_name"
    assert list(top.items()) == [("Parus major", 4), ("Apis mellifera", 2)]  # ties by name
    figure = plots.plot_top_labels(frame, n=3)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()][-1] == "Parus major"  # commonest on top
    smells = frame_of(["2024-01-01T00:00Z"] * 3, categories=["waste", "waste", "traffic"])
    assert list(plots.top_labels(smells).items()) == [("waste", 2), ("traffic", 1)]
    with pytest.raises(PlotError, match="no column 'family'"):
        plots.top_labels(smells, by="family")


def planted(heavy: int = 10, heavy_count: int = 91, light: int = 90) -> pd.DataFrame:
    """``heavy`` contributors with ``heavy_count`` observations each and ``light`` with one."""
    ids = [i for i in range(1, heavy + 1) for _ in range(heavy_count)] + list(range(1000, 1000 + light))
    return frame_of(["2024-01-01T00:00Z"] * len(ids), contributors=ids)


def test_contributions_table_is_sorted_and_pseudonymous() -> None:
    frame = planted()
    frame["display_name"] = "Someone Private"
    table = plots.contributions(frame)
    assert list(table.columns) == ["rank", "contributor_id", "n_observations", "share", "cumulative_share"]
    assert len(table) == 100 and table["n_observations"].is_monotonic_decreasing
    assert list(table["contributor_id"][:3]) == [1, 2, 3] and table["n_observations"].iloc[0] == 91
    assert table["cumulative_share"].iloc[9] == pytest.approx(0.91)
    assert table["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert "Someone Private" not in table.to_csv()


def test_lorenz_curve_of_a_planted_distribution() -> None:
    curve = plots.lorenz_curve(planted())
    assert tuple(curve.iloc[0]) == (0.0, 0.0) and tuple(curve.iloc[-1]) == pytest.approx((1.0, 1.0))
    assert len(curve) == 101
    # 90% of the people gave 9% of the 1,000 observations: area 0.9*0.045 + 0.1*(0.09+1)/2 = 0.095
    point = curve.loc[np.isclose(curve["contributors"], 0.9)].iloc[0]
    assert point["observations"] == pytest.approx(0.09)
    assert plots.lorenz_area(curve) == pytest.approx(0.095)
    assert 1 - 2 * plots.lorenz_area(curve) == pytest.approx(0.81)
    equal = plots.lorenz_curve(frame_of(["2024-01-01T00:00Z"] * 50, contributors=list(range(50))))
    assert plots.lorenz_area(equal) == pytest.approx(0.5)
    figure = plots.plot_lorenz(planted())
    assert "Gini 0.81" in figure.axes[0].get_legend().get_texts()[1].get_text()


def test_public_frames_have_no_contributors_to_chart() -> None:
    frame = frame_of(["2024-01-01T00:00Z"] * 3, contributors=[None] * 3)
    for function in (plots.contributions, plots.lorenz_curve, plots.plot_lorenz):
        with pytest.raises(PlotError, match="no contributor ids"):
            function(frame)


def test_empty_or_incomplete_frames_say_why() -> None:
    empty = frame_of([])
    with pytest.raises(PlotError, match="no observations"):
        plots.plot_by_hour(empty)
    with pytest.raises(PlotError, match="no column 'observed_at'"):
        plots.counts_by_hour(pd.DataFrame({"id": [1]}))
    with pytest.raises(PlotError, match="no observation has a taxon or a category"):
        plots.top_labels(frame_of(["2024-01-01T00:00Z"]))
