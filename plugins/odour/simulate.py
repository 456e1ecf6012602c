"""Synthetic odour reports with a known truth, for tests, demos and benchmarks.

:func:`simulate_factory` plays out one factory and its neighbours. On some days the factory
emits (a *planted episode*): the wind, drawn around a prevailing direction, carries the plume
downwind, and residents whose homes lie in the plume (a narrow sector downwind, between 15% and
90% of the linkage distance from the stack) report it within a few hours, with intensity
falling with distance and an unpleasant hedonic tone. Some report twice. Besides, a few *false
reports* are scattered over the period and the surrounding area, in any category; each is kept
apart (1.5 times the linkage window or distance, or another category) from every other report,
so that it stays a lone report.

The geometry guarantees that all reports of an episode are within the linkage distance of one
another (the farthest two are about 0.77 times it apart) and within one linkage window
(episodes last at most 3 h), and episodes start on different days between 06:00 and 18:00, far
enough apart in time not to merge. So an event detector that follows the rule of
:mod:`plugins.odour.events` must find each episode as exactly one event.

:func:`simulate_arrays` makes large data sets (a million reports in about a second) as numpy
columns, at a constant density per day, for the benchmark.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from plugins.odour.catalogue import (
    CATEGORIES,
    DURATION_LAST_HOUR,
    DURATION_PUNCTUAL,
    INDUSTRIAL,
    NICE,
    NO_ODOUR,
    NO_ODOUR_SUBTYPE,
    subtypes_of,
)
from plugins.odour.enrichment import EARTH_RADIUS_M, haversine_m
from plugins.odour.events import DEFAULT_DISTANCE_M, DEFAULT_WINDOW, ReportArrays
from plugins.odour.reports import UTC, Report

EPISODE_MAX_HOURS = 3.0
"""An episode's reports all fall within this many hours of its start."""


@dataclass(frozen=True)
class PlantedEpisode:
    """An emission the simulation planted, and the reports it caused."""

    id: int
    category: int
    start: datetime
    end: datetime
    wind_from_deg: float
    """Meteorological convention: the direction the wind blows from (the plume goes opposite)."""
    report_ids: tuple[int, ...]
    contributors: tuple[str, ...]


@dataclass(frozen=True)
class Simulation:
    reports: list[Report]
    episodes: list[PlantedEpisode]
    noise_ids: list[int]
    factory_lat: float
    factory_lon: float


def _destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` from (lat, lon) along ``bearing`` (degrees), on the sphere."""
    d = distance_m / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def simulate_factory(
    *,
    seed: int = 0,
    start: datetime = datetime(2024, 3, 1, tzinfo=UTC),
    days: int = 60,
    factory_lat: float = 41.40,
    factory_lon: float = 2.20,
    episodes: int = 8,
    residents: int = 400,
    reporters_per_episode: tuple[int, int] = (3, 8),
    noise_reports: int = 25,
    category: int = INDUSTRIAL,
    prevailing_wind_from: float = 225.0,
    link_window: timedelta = DEFAULT_WINDOW,
    link_distance_m: float = DEFAULT_DISTANCE_M,
) -> Simulation:
    """A factory, its residents, ``episodes`` emission days and ``noise_reports`` false reports.

    Report ids are 1..n in time order; contributors are strings (``resident-17``,
    ``passer-by-3``). ``link_window`` / ``link_distance_m`` are the event detector's settings
    the data is laid out for (see the module docstring).
    """
    if category in (NICE, NO_ODOUR) or category not in CATEGORIES:
        raise ValueError(f"a factory emits an unpleasant odour: category {category} will not do")
    low, high = reporters_per_episode
    if not 2 <= low <= high:
        raise ValueError("reporters_per_episode must be (low, high) with 2 <= low <= high")
    window_h = link_window.total_seconds() / 3600.0
    if window_h < EPISODE_MAX_HOURS:
        raise ValueError(f"link_window must be at least {EPISODE_MAX_HOURS:g} h, the length of an episode")
    rng = random.Random(seed)
    d = float(link_distance_m)
    r_min, r_max, half_angle = 0.15 * d, 0.90 * d, 12.0
    jitter = 0.01 * d

    # homes uniformly in a disc that covers the plume's reach
    homes = []
    for _ in range(residents):
        r = r_max * 1.4 * math.sqrt(rng.random())
        homes.append((_destination(factory_lat, factory_lon, rng.uniform(0, 360), r), r))

    # emission days: far enough apart that episodes never link with each other
    span_h = 24.0 - 18.0 + 6.0 - EPISODE_MAX_HOURS  # gap between episodes on consecutive days
    min_gap = 1 if window_h < span_h else int((window_h - span_h) // 24) + 2
    if episodes * min_gap > days:
        raise ValueError(f"{episodes} episodes need at least {episodes * min_gap} days")
    chosen: list[int] = []
    while len(chosen) < episodes:
        day = rng.randrange(days)
        if all(abs(day - other) >= min_gap for other in chosen):
            chosen.append(day)
    chosen.sort()

    subtypes = [s.id for s in subtypes_of(category)]
    main_subtype = rng.choice(subtypes)
    drafts: list[dict] = []  # reports before ids are given
    planted: list[dict] = []
    for day in chosen:
        for _ in range(1000):
            wind_from = rng.gauss(prevailing_wind_from, 40.0) % 360.0
            downwind = (wind_from + 180.0) % 360.0
            in_plume = []
            for k, ((hlat, hlon), r) in enumerate(homes):
                bearing = (
                    math.degrees(
                        math.atan2(
                            math.radians(hlon - factory_lon) * math.cos(math.radians(factory_lat)),
                            math.radians(hlat - factory_lat),
                        )
                    )
                    % 360.0
                )
                if r_min <= r <= r_max and _angle_diff(bearing, downwind) <= half_angle:
                    in_plume.append((k, r))
            if len(in_plume) >= low:
                break
        else:
            raise ValueError("too few residents live downwind: raise `residents`")
        begin = start + timedelta(days=day, hours=rng.uniform(6.0, 18.0))
        reporters = rng.sample(in_plume, min(len(in_plume), rng.randint(low, high)))
        members = []
        for k, r in reporters:
            times = [rng.uniform(0.0, EPISODE_MAX_HOURS - 0.6)]
            if rng.random() < 0.2:
                times.append(times[0] + rng.uniform(0.2, 0.6))
            for offset_h in times:
                (hlat, hlon), _ = homes[k]
                lat, lon = _destination(hlat, hlon, rng.uniform(0, 360), rng.uniform(0, jitter))
                closeness = 1.0 - (r - r_min) / (r_max - r_min)
                intensity = max(1, min(6, round(2 + 3 * closeness + rng.gauss(0, 0.7))))
                members.append(len(drafts))
                drafts.append(
                    {
                        "contributor": f"resident-{k}",
                        "category": category,
                        "subtype": main_subtype if rng.random() < 0.8 else rng.choice(subtypes),
                        "observed_at": begin + timedelta(hours=offset_h),
                        "lat": lat,
                        "lon": lon,
                        "intensity": intensity,
                        "hedonic_tone": -min(4, max(1, round(1 + intensity * 0.5 + rng.gauss(0, 0.7)))),
                        "duration": rng.choice([DURATION_PUNCTUAL, DURATION_LAST_HOUR]),
                    }
                )
        planted.append({"members": members, "wind_from": wind_from})

    # false reports, each isolated from every other report
    far_t = 1.5 * link_window.total_seconds()
    noise_index = []
    categories = sorted(CATEGORIES)
    for j in range(noise_reports):
        for _ in range(10_000):
            cat = rng.choice(categories)
            when = start + timedelta(seconds=rng.uniform(0, days * 86400.0))
            lat, lon = _destination(factory_lat, factory_lon, rng.uniform(0, 360), 12 * d * math.sqrt(rng.random()))
            if all(
                other["category"] != cat
                or abs((other["observed_at"] - when).total_seconds()) > far_t
                or haversine_m(lat, lon, other["lat"], other["lon"]) > 1.5 * d
                for other in drafts
            ):
                break
        else:
            raise ValueError("cannot place the false reports apart: lower `noise_reports`")
        if cat == NO_ODOUR:
            intensity, hedonic, subtype, duration = 0, 0, NO_ODOUR_SUBTYPE, None
        else:
            intensity = rng.randint(1, 6)
            hedonic = rng.randint(0, 4) if cat == NICE else rng.randint(-4, 0)
            subtype = rng.choice([s.id for s in subtypes_of(cat)])
            duration = rng.choice([DURATION_PUNCTUAL, DURATION_LAST_HOUR])
        noise_index.append(len(drafts))
        drafts.append(
            {
                "contributor": f"passer-by-{j}",
                "category": cat,
                "subtype": subtype,
                "observed_at": when,
                "lat": lat,
                "lon": lon,
                "intensity": intensity,
                "hedonic_tone": hedonic,
                "duration": duration,
            }
        )

    order = sorted(range(len(drafts)), key=lambda i: drafts[i]["observed_at"])
    new_id = {old: k + 1 for k, old in enumerate(order)}
    reports = [Report(id=new_id[i], **drafts[i]) for i in order]
    out_episodes = []
    for n, ep in enumerate(planted, start=1):
        ids = tuple(sorted(new_id[i] for i in ep["members"]))
        times = [drafts[i]["observed_at"] for i in ep["members"]]
        out_episodes.append(
            PlantedEpisode(
                id=n,
                category=category,
                start=min(times),
                end=max(times),
                wind_from_deg=round(ep["wind_from"], 1),
                report_ids=ids,
                contributors=tuple(sorted({drafts[i]["contributor"] for i in ep["members"]})),
            )
        )
    return Simulation(
        reports=reports,
        episodes=out_episodes,
        noise_ids=sorted(new_id[i] for i in noise_index),
        factory_lat=factory_lat,
        factory_lon=factory_lon,
    )


def simulate_arrays(
    n_reports: int,
    *,
    seed: int = 0,
    reports_per_day: float = 2740.0,
    centre: tuple[float, float] = (41.40, 2.20),
    half_size_km: float = 50.0,
    episode_share: float = 0.6,
    link_distance_m: float = DEFAULT_DISTANCE_M,
) -> tuple[ReportArrays, np.ndarray]:
    """About ``n_reports`` reports as columns, and the planted episode of each (-1 for noise).

    Episodes (3..13 reports, a plume sector as in :func:`simulate_factory`, any unpleasant
    category, sources uniform over a square of ``2 * half_size_km``) make ``episode_share`` of
    the reports; the rest is noise uniform in time, space and category. The period is
    ``n_reports / reports_per_day`` days, so the density, and the work per report, do not
    depend on ``n_reports``. Planted episodes here are not kept apart: two may overlap.
    """
    rng = np.random.default_rng(seed)
    days = n_reports / reports_per_day
    t0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    lat0, lon0 = centre
    k_lat = half_size_km * 1000.0 / EARTH_RADIUS_M
    k_lon = k_lat / math.cos(math.radians(lat0))

    sizes = rng.integers(3, 14, size=max(1, int(n_reports * episode_share / 8)))
    sizes = sizes[np.cumsum(sizes) <= n_reports * episode_share]
    n_ep, n_in = len(sizes), int(sizes.sum())
    ep = np.repeat(np.arange(n_ep), sizes)
    ep_lat = lat0 + np.degrees(k_lat) * rng.uniform(-1, 1, n_ep)
    ep_lon = lon0 + np.degrees(k_lon) * rng.uniform(-1, 1, n_ep)
    ep_t = t0 + rng.uniform(0, days * 86400.0, n_ep)
    ep_down = rng.uniform(0, 2 * math.pi, n_ep)
    ep_cat = rng.integers(1, 7, n_ep)  # waste .. urban: the unpleasant categories
    r = rng.uniform(0.15, 0.90, n_in) * link_distance_m
    b = ep_down[ep] + np.radians(rng.uniform(-12, 12, n_in))
    lat_in = ep_lat[ep] + np.degrees(r * np.cos(b) / EARTH_RADIUS_M)
    lon_in = ep_lon[ep] + np.degrees(r * np.sin(b) / EARTH_RADIUS_M / np.cos(np.radians(ep_lat[ep])))
    t_in = ep_t[ep] + rng.uniform(0, EPISODE_MAX_HOURS * 3600.0, n_in)
    first_of_ep = np.r_[0, np.cumsum(sizes)[:-1]]
    position = np.arange(n_in) - np.repeat(first_of_ep, sizes)
    contrib_in = ep * 16 + position
    again = (position > 0) & (rng.random(n_in) < 0.2)  # someone reporting twice
    contrib_in[again] -= 1
    closeness = 1 - (r / link_distance_m - 0.15) / 0.75
    int_in = np.clip(np.rint(2 + 3 * closeness + rng.normal(0, 0.7, n_in)), 1, 6)
    hed_in = -np.clip(np.rint(1 + int_in * 0.5 + rng.normal(0, 0.7, n_in)), 1, 4)

    n_noise = n_reports - n_in
    lat_nz = lat0 + np.degrees(k_lat) * rng.uniform(-1.1, 1.1, n_noise)
    lon_nz = lon0 + np.degrees(k_lon) * rng.uniform(-1.1, 1.1, n_noise)
    t_nz = t0 + rng.uniform(0, days * 86400.0, n_noise)
    cat_nz = rng.integers(1, 10, n_noise)
    int_nz = rng.integers(1, 7, n_noise).astype(np.float64)
    int_nz[cat_nz == NO_ODOUR] = 0
    hed_nz = rng.integers(-4, 1, n_noise).astype(np.float64)
    hed_nz[cat_nz == NICE] *= -1
    hed_nz[cat_nz == NO_ODOUR] = 0
    contrib_nz = n_ep * 16 + rng.integers(0, max(1, n_noise // 3), n_noise)

    shuffle = rng.permutation(n_reports)
    arrays = ReportArrays(
        ids=np.arange(1, n_reports + 1, dtype=np.int64),
        contributor=np.r_[contrib_in, contrib_nz][shuffle],
        category=np.r_[ep_cat[ep], cat_nz][shuffle],
        t=np.r_[t_in, t_nz][shuffle],
        lat=np.r_[lat_in, lat_nz][shuffle],
        lon=np.r_[lon_in, lon_nz][shuffle],
        intensity=np.r_[int_in, int_nz][shuffle],
        hedonic_tone=np.r_[hed_in, hed_nz][shuffle],
    )
    truth = np.r_[ep, np.full(n_noise, -1)][shuffle]
    return arrays, truth
