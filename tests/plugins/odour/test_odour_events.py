import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from plugins.odour.events import ReportArrays, detect_events, detect_events_arrays, naive_events
from plugins.odour.reports import Report

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
LAT, LON = 41.40, 2.20


def north(metres):
    return LAT + metres / 111_195


def report(i, who, minutes=0, lat=LAT, lon=LON, category=5, intensity=4, hedonic=-3):
    return Report(
        id=i,
        contributor=who,
        category=category,
        observed_at=T0 + timedelta(minutes=minutes),
        lat=lat,
        lon=lon,
        intensity=intensity,
        hedonic_tone=hedonic,
    )


def test_two_neighbours_smelling_the_same_make_an_event():
    reps = [report(1, "ana", 0, intensity=4, hedonic=-3), report(2, "ben", 60, lat=north(500), intensity=2, hedonic=1)]
    result = detect_events(reps)
    assert len(result.events) == 1 and result.possible == []
    event = result.events[0]
    assert event.report_ids == (1, 2)
    assert event.n_contributors == 2 and event.n_reports == 2
    assert event.start == T0 and event.end == T0 + timedelta(minutes=60)
    assert event.centroid_lat == pytest.approx(north(250), abs=1e-6)
    assert event.annoyance == pytest.approx((4 * 3 + 2 * 0) / 2)  # mean of intensity * max(0, -tone)
    json.dumps(event.to_dict())


def test_one_person_reporting_twice_stays_possible():
    result = detect_events([report(1, "ana", 0), report(2, "ana", 30)])
    assert result.events == [] and result.possible == [1, 2]


@pytest.mark.parametrize(
    "second",
    [
        report(2, "ben", 0, category=1),  # another odour
        report(2, "ben", 4 * 60 + 1),  # later than the window
        report(2, "ben", 0, lat=north(2100)),  # farther than the distance
    ],
)
def test_reports_apart_do_not_link(second):
    result = detect_events([report(1, "ana"), second])
    assert result.events == [] and sorted(result.possible) == [1, 2]


def test_window_distance_and_contributors_are_configurable():
    reps = [report(1, "ana", 0), report(2, "ben", 90, lat=north(1500))]
    assert len(detect_events(reps).events) == 1
    assert detect_events(reps, window=timedelta(hours=1)).events == []
    assert detect_events(reps, window=3600.0).events == []
    assert detect_events(reps, distance_m=1000).events == []
    assert detect_events(reps, min_contributors=3).events == []
    with pytest.raises(ValueError, match="window"):
        detect_events(reps, window=0)


def test_linkage_is_transitive():
    reps = [report(1, "ana", 0), report(2, "ben", 60, lat=north(1500)), report(3, "cai", 120, lat=north(3000))]
    result = detect_events(reps)
    assert [e.report_ids for e in result.events] == [(1, 2, 3)]


def test_empty_input():
    result = detect_events([])
    assert result.events == [] and result.possible == []


def _random_reports(rng, n, lat0, lon0):
    out = []
    for i in range(n):
        out.append(
            Report(
                id=i,
                contributor=rng.randint(0, 15) if rng.random() > 0.1 else None,
                category=rng.randint(1, 3),
                observed_at=T0 + timedelta(seconds=rng.uniform(0, 2 * 86400)),
                lat=max(-90.0, min(90.0, lat0 + rng.uniform(-0.08, 0.08))),
                lon=(lon0 + rng.uniform(-0.12, 0.12) + 180) % 360 - 180,
                intensity=rng.randint(0, 6),
                hedonic_tone=rng.randint(-4, 4),
            )
        )
    return out


@pytest.mark.parametrize(
    "seed, lat0, lon0",
    [(1, 41.4, 2.2), (2, 41.4, 2.2), (3, 0.0, 179.99), (4, 78.0, -179.95), (5, -89.99, 10.0), (6, 60.0, 25.0)],
)
def test_fast_detection_agrees_with_the_pairwise_comparison(seed, lat0, lon0):
    rng = random.Random(seed)
    reps = _random_reports(rng, rng.randint(150, 250), lat0, lon0)
    fast, slow = detect_events(reps), naive_events(reps)
    assert fast.groups() == slow.groups()
    assert sorted(fast.possible) == sorted(slow.possible)
    assert fast.events, "the random data should hold some events"
    by_ids = {frozenset(e.report_ids): e for e in slow.events}
    for event in fast.events:
        other = by_ids[frozenset(event.report_ids)]
        assert event.n_contributors == other.n_contributors
        assert event.annoyance == pytest.approx(other.annoyance)
        assert event.start == other.start and event.end == other.end
        assert math.isclose(event.centroid_lat, other.centroid_lat, abs_tol=1e-9)
        assert math.isclose(event.centroid_lon, other.centroid_lon, abs_tol=1e-9)


@pytest.mark.parametrize("block", [7, 25, 64])
def test_detection_in_blocks_of_time_agrees_with_the_pairwise_comparison(monkeypatch, block):
    # large inputs are clustered in blocks of time (each with one window of the next) that
    # stay in the caches; small blocks here make every block boundary count
    from plugins.odour import events

    rng = random.Random(block)
    reps = _random_reports(rng, 400, 41.4, 2.2)
    whole = detect_events(reps)  # one block
    monkeypatch.setattr(events, "BLOCK", block)
    fast, slow = detect_events(reps), naive_events(reps)
    assert fast.groups() == slow.groups() and fast.events
    assert sorted(fast.possible) == sorted(slow.possible)
    # the events are summarised block by block too: the same events, in the same order, with
    # the same figures, as from one block
    assert fast.events == whole.events and fast.possible == whole.possible


def test_arrays_interface_reports_times_without_datetimes():
    arrays = ReportArrays.from_reports([report(1, "ana", 0), report(2, "ben", 30)])
    arrays.observed_at = None
    event = detect_events_arrays(arrays).events[0]
    assert event.start == T0 and event.end == T0 + timedelta(minutes=30)


def test_northern_reports_link_when_the_data_also_spans_the_south():
    """Longitude cells must be wide enough at the highest latitude present."""
    step = 1900 / (111_195 * math.cos(math.radians(70)))  # 1.9 km east at 70 N
    reps = [
        report(1, "ana", 0, lat=70.0, lon=20.0),
        report(2, "ben", 10, lat=70.0, lon=20.0 + step),
        report(3, "cai", 0, lat=36.0, lon=-5.0),
    ]
    result = detect_events(reps)
    assert [e.report_ids for e in result.events] == [(1, 2)]
    assert result.possible == [3]


def test_missing_coordinates_are_refused():
    arrays = ReportArrays.from_reports([report(1, "ana"), report(2, "ben", lat=float("nan"))])
    with pytest.raises(ValueError, match="lat"):
        detect_events_arrays(arrays)
