"""Engagement profiles: the planted hardworking, spasmodic, persistent, lasting and moderate
contributors get their profile, only contributors with enough active days are profiled (and the
answer says how many were not), and the naming of clusters follows their centroids."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from plugins.analysis.participation import contributor_metrics
from plugins.analysis.profiles import PROFILES, engagement_profiles, kmeans, min_active_days_of, name_clusters, profiles_of
from tests.plugins.analysis.planted import Planted, big_frame, planted


@pytest.fixture(scope="module")
def plant() -> Planted:
    return planted()


def test_the_planted_profiles_come_out_as_planted(plant: Planted):
    found = profiles_of(plant.frame, plant.timezone, 5)
    wrong = {cid: (e.profile, found.profile.get(cid)) for cid, e in plant.expected.items()
             if e.profile is not None and found.profile.get(cid) != e.profile}
    assert not wrong
    assert found.counts == {"hardworking": 4, "spasmodic": 6, "persistent": 5, "lasting": 5, "moderate": 6}
    # the 75 with one to three active days are not profiled, and the answer says so
    assert set(found.profile.index) == {cid for cid, e in plant.expected.items() if e.profile}
    assert (found.min_active_days, found.n_below) == (5, 75)
    centroids = found.centroids
    assert centroids.loc["hardworking", "activity_ratio"] == 1 and centroids.loc["hardworking", "obs_per_active_day"] == 20
    assert centroids.loc["lasting", "periodicity_variation"] == centroids["periodicity_variation"].max()
    assert centroids.loc["persistent", "relative_duration"] == centroids["relative_duration"].max()


def test_the_threshold_is_configurable(plant: Planted):
    # from 3 active days on, the ten three-day contributors are profiled too
    found = profiles_of(plant.frame, plant.timezone, 3)
    assert len(found.profile) == 26 + 10 and found.n_below == 65
    # a threshold above everyone's active days profiles nobody, and says so
    none = profiles_of(plant.frame, plant.timezone, 400)
    assert none.profile.empty and none.n_below == 101 and none.counts == dict.fromkeys(PROFILES, 0)
    with pytest.raises(ValueError, match="at least 2"):
        profiles_of(plant.frame, plant.timezone, 1)


def test_the_registry_setting_is_read():
    from core.types import ProjectContext

    def project(settings: dict) -> ProjectContext:
        return ProjectContext("p", "P", "", "CC0-1.0", True, True, "UTC", None, {"analysis": settings})

    assert min_active_days_of(project({})) == 5
    assert min_active_days_of(project({"profile_min_active_days": 9})) == 9


def test_fewer_contributors_than_profiles_get_fewer_clusters(plant: Planted):
    metrics = contributor_metrics(plant.frame, plant.timezone)
    two = metrics.loc[plant.ids("hardworking")[:1] + plant.ids("lasting")[:1]]
    found = engagement_profiles(two, 5)
    assert found.profile.to_dict() == {plant.ids("hardworking")[0]: "hardworking", plant.ids("lasting")[0]: "lasting"}


def test_the_same_data_gives_the_same_profiles(plant: Planted):
    first = profiles_of(plant.frame, plant.timezone).profile
    assert profiles_of(plant.frame.sample(frac=1, random_state=3), plant.timezone).profile.sort_index().equals(
        first.sort_index())


def test_clusters_are_named_by_their_centroids():
    centroids = pd.DataFrame([  # z-scores: a, d, r, v
        {"a": 0.0, "d": 0.1, "r": 0.0, "v": -0.1},    # nothing stands out
        {"a": -1.0, "d": -0.5, "r": 1.5, "v": 2.0},   # long, rare, irregular
        {"a": 2.0, "d": 2.0, "r": -1.0, "v": -1.0},   # every day, many a day
        {"a": -0.5, "d": -0.2, "r": 1.5, "v": -1.0},  # long and regular
        {"a": 0.5, "d": -1.0, "r": -1.5, "v": 1.0},   # short bursts
    ])
    assert name_clusters(centroids) == ["moderate", "lasting", "hardworking", "persistent", "spasmodic"]


def test_kmeans_separates_obvious_groups():
    import numpy as np

    x = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1], [0, 10]], dtype=float)
    labels, centres = kmeans(x, 3, seed=1)
    assert labels[0] == labels[1] and labels[2] == labels[3] and len({labels[0], labels[2], labels[4]}) == 3
    with pytest.raises(ValueError):
        kmeans(x, 6)


def test_a_million_observations_by_fifty_thousand_contributors_take_seconds():
    frame = big_frame(1_000_000, 50_000)
    started = time.perf_counter()
    metrics = contributor_metrics(frame, "Europe/Madrid")
    found = engagement_profiles(metrics)
    took = time.perf_counter() - started
    assert len(metrics) == 50_000 and metrics["n_observations"].sum() == 1_000_000
    assert sum(found.counts.values()) + found.n_below == 50_000
    assert took < 30, f"{took:.1f} s"
