from datetime import UTC, datetime

import pytest

from core.types import Location, ObservationView
from plugins.odour.events import detect_events
from plugins.odour.reports import Report, epoch_seconds, to_report

WHEN = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


def observation(i, contributor, lat=41.4):
    return ObservationView(
        id=i,
        project="town",
        kind="odour",
        observed_at=WHEN,
        location=Location(lat=lat, lon=2.2),
        fields={"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3, "duration": 1},
        media=(),
        contributor_id=contributor,
        status="published",
        created_at=WHEN,
    )


def test_observations_become_reports():
    r = to_report(observation(7, 42))
    assert r == Report(7, 42, 5, WHEN, 41.4, 2.2, 4, -3, subtype=53, duration=1)
    result = detect_events([observation(1, 42), observation(2, 43, lat=41.401)])
    assert [e.report_ids for e in result.events] == [(1, 2)]


def test_flat_mappings_become_reports():
    r = to_report(
        {
            "id": 1,
            "contributor": "a",
            "category": 2,
            "observed_at": "2024-06-03T09:00:00+00:00",
            "lat": 41,
            "lon": 2,
            "intensity": 3,
            "hedonic_tone": -1,
        }
    )
    assert r.observed_at == WHEN and r.category == 2 and r.subtype is None


def test_missing_values_are_named():
    with pytest.raises(ValueError, match="intensity"):
        to_report({"id": 1, "category": 2, "observed_at": WHEN, "lat": 41, "lon": 2, "hedonic_tone": -1})


def test_naive_times_are_utc():
    assert epoch_seconds(datetime(1970, 1, 1, 0, 1)) == 60.0
