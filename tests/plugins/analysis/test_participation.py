"""Participation metrics on frames with planted contributor patterns: every figure comes out as
planted (per contributor, per project, per month, per cohort), days are the project's local days,
and a frame without contributor ids gives nothing rather than a wrong figure."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from plugins.analysis.participation import (compare, contributor_metrics, gini, monthly_contributors,
                                            participating, project_metrics, retention, summary, top_share)
from tests.plugins.analysis.planted import Planted, frame_of, planted


@pytest.fixture(scope="module")
def plant() -> Planted:
    return planted()


def test_every_contributor_metric_comes_out_as_planted(plant: Planted):
    metrics = contributor_metrics(plant.frame, plant.timezone)
    assert sorted(metrics.index) == sorted(plant.expected)
    for cid, e in plant.expected.items():
        row = metrics.loc[cid]
        assert (row.n_observations, row.active_days, row.duration_days) == (e.n_observations, e.active_days,
                                                                              e.duration_days), e.pattern
        assert (row.first_day.date(), row.last_day.date()) == (e.first_day, e.last_day)
        assert row.activity_ratio == pytest.approx(e.activity_ratio)
        assert row.obs_per_active_day == pytest.approx(e.n_observations / e.active_days)
        if e.periodicity_days is None:  # below recorderMetrics' five active days
            assert pd.isna(row.periodicity_days) and pd.isna(row.periodicity_variation), e.pattern
        else:
            assert row.periodicity_days == pytest.approx(e.periodicity_days), e.pattern
            assert row.periodicity_variation == pytest.approx(e.periodicity_variation), e.pattern
    persistent = metrics.loc[plant.ids("persistent")]
    assert (persistent.periodicity_days == 7).all() and (persistent.periodicity_variation == 0).all()
    # relative duration: a persistent contributor stayed from the first day to nearly the end
    assert (persistent.relative_duration == 358 / 366).all()  # 1 Jan to 23 Dec, of 1 Jan to 31 Dec
    assert metrics.loc[plant.ids("hardworking"), "relative_duration"].max() < 0.1


def test_project_figures_match_those_computed_another_way(plant: Planted):
    figures = project_metrics(plant.frame, plant.timezone)
    assert figures["n_contributors"] == len(plant.expected)
    assert figures["n_observations"] == len(plant.frame)
    assert figures["gini"] == pytest.approx(plant.gini)
    assert figures["top10_share"] == pytest.approx(plant.top10_share)
    assert figures["one_day_share"] == pytest.approx(65 / 101)  # 64 one-day and the last day's one
    assert figures["top10_share"] > 0.79  # planted like Sauermann & Franzoni's projects: the top 10% give most


def test_days_are_the_projects_local_days():
    # 00:10 and 23:50 in Madrid on 1 March: one day there, two in UTC (29 Feb 23:10 and 1 Mar 22:50)
    rows = [(7, datetime(2024, 2, 29, 23, 10, tzinfo=timezone.utc)),
            (7, datetime(2024, 3, 1, 22, 50, tzinfo=timezone.utc))]
    frame = frame_of(rows)
    assert contributor_metrics(frame, "Europe/Madrid").loc[7, "active_days"] == 1
    utc = contributor_metrics(frame, "UTC").loc[7]
    assert (utc.active_days, utc.duration_days, utc.activity_ratio) == (2, 2, 1.0)
    # months too: the first observation is in February in UTC, in March in Madrid
    assert list(monthly_contributors(frame, "Europe/Madrid")["month"]) == ["2024-03"]
    assert list(monthly_contributors(frame, "UTC")["month"]) == ["2024-02", "2024-03"]


def test_periodicity_counts_gaps_within_a_year_as_recorder_metrics_does():
    days = ["2023-12-20", "2023-12-25", "2023-12-30", "2024-01-10", "2024-01-12", "2024-01-14"]
    frame = frame_of([(1, datetime.fromisoformat(d + "T12:00:00+00:00")) for d in days])
    row = contributor_metrics(frame).loc[1]
    # gaps 5, 5 | 2, 2 (the 11 days over New Year are not a gap within a year)
    assert (row.periodicity_days, row.periodicity_variation) == (3.5, pytest.approx(np.std([5, 5, 2, 2], ddof=1)))
    across = contributor_metrics(frame, within_years=False).loc[1]
    assert across.periodicity_days == 5 and across.periodicity_variation == pytest.approx(np.std([5, 5, 11, 2, 2],
                                                                                               ddof=1))
    assert pd.isna(contributor_metrics(frame, periodicity_min_days=7).loc[1, "periodicity_days"])


def test_new_and_returning_per_month_and_retention_by_cohort():
    def at(day: str) -> datetime:
        return datetime.fromisoformat(day + "T10:00:00+00:00")

    # a: Jan, Feb, Apr; b: Jan only; c: Feb, Mar; nobody in May... d: Jun
    rows = [(1, at("2024-01-05")), (1, at("2024-02-05")), (1, at("2024-04-05")), (2, at("2024-01-20")),
            (3, at("2024-02-01")), (3, at("2024-03-01")), (4, at("2024-06-30"))]
    monthly = monthly_contributors(frame_of(rows))
    assert monthly.to_dict("list") == {"month": ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"],
                                       "active": [2, 2, 1, 1, 0, 1], "new": [2, 1, 0, 0, 0, 1],
                                       "returning": [0, 1, 1, 1, 0, 0]}
    table = retention(frame_of(rows))
    assert list(table.index) == ["2024-01", "2024-02", "2024-06"]
    assert list(table["size"]) == [2, 1, 1]
    january = table.loc["2024-01"].drop("size")
    assert list(january) == [1.0, 0.5, 0.0, 0.5, 0.0, 0.0]
    february = table.loc["2024-02"].drop("size")
    assert list(february[:5]) == [1.0, 1.0, 0.0, 0.0, 0.0] and pd.isna(february[5])  # past the data: unknown
    assert table.loc["2024-06", 0] == 1.0 and table.loc["2024-06", [1, 2]].isna().all()


def test_inequality_figures_on_known_vectors():
    assert gini([5, 5, 5, 5]) == 0
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n - 1) / n when one gives all
    assert top_share(list(range(1, 21)), 0.1) == pytest.approx((20 + 19) / 210)
    assert top_share([3], 0.1) == 1.0  # one person is the top 10% of one
    assert np.isnan(gini([])) and np.isnan(top_share([]))
    with pytest.raises(ValueError):
        top_share([1, 2], 0)


def test_rows_without_a_contributor_are_left_out_not_guessed(plant: Planted):
    public = plant.frame.assign(contributor_id=pd.array([pd.NA] * len(plant.frame), dtype="Int64"))
    figures = project_metrics(public, plant.timezone)
    assert figures["n_contributors"] == 0 and figures["n_observations"] == 0
    assert np.isnan(figures["gini"]) and figures["monthly"].empty and figures["retention"].empty
    assert summary(public, plant.timezone)["profiles"]["n_profiled"] == 0


def test_the_trash_does_not_count():
    frame = frame_of([(1, datetime(2024, 1, 1, tzinfo=timezone.utc)), (2, datetime(2024, 1, 2, tzinfo=timezone.utc))])
    frame["status"] = pd.Categorical(["published", "trashed"])
    assert list(contributor_metrics(participating(frame)).index) == [1]


def test_times_without_a_zone_are_refused():
    frame = frame_of([(1, datetime(2024, 1, 1, tzinfo=timezone.utc))])
    frame["observed_at"] = frame["observed_at"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="zone-aware"):
        contributor_metrics(frame)


def test_compare_puts_projects_side_by_side(plant: Planted):
    other = frame_of([(1, datetime(2024, 1, 1, 9, tzinfo=timezone.utc)), (2, datetime(2024, 1, 1, 9, tzinfo=timezone.utc))],
                     project="even")
    table = compare({"planted": plant.frame, "even": other}, {"planted": plant.timezone, "even": "UTC"})
    assert list(table.columns) == ["planted", "even"]
    assert table.loc["gini", "planted"] == pytest.approx(plant.gini)
    assert table.loc["gini", "even"] == 0 and table.loc["one_day_share", "even"] == 1
    assert table.loc["n_contributors"].tolist() == [101, 2]


def test_summary_is_plain_json_without_ids(plant: Planted):
    import json

    answer = summary(plant.frame, plant.timezone)
    text = json.dumps(answer, allow_nan=False)  # no NaN: JSON clients can read it
    assert answer["n_contributors"] == 101
    assert answer["retention"][0] == {"cohort": "2024-01", "size": 9,
                                      "shares": pytest.approx([1, 1] + [5 / 9] * 10)}
    assert answer["profiles"]["counts"] == {"hardworking": 4, "spasmodic": 6, "persistent": 5, "lasting": 5,
                                            "moderate": 6}
    assert "contributor_id" not in text
