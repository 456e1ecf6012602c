from datetime import UTC, datetime

import pytest

from plugins.odour.enrichment import (
    bearing_deg,
    distance_to_zones_m,
    enrich_odour,
    haversine_m,
    local_time,
    point_in_polygon,
    points_of_interest,
    zone_of,
    zones_containing,
)

SQUARE = [[2.0, 41.0], [2.1, 41.0], [2.1, 41.1], [2.0, 41.1]]
ZONES = [
    {"name": "Square", "polygon": SQUARE},
    {"name": "Inner", "polygon": [[2.04, 41.04], [2.06, 41.04], [2.06, 41.06], [2.04, 41.06], [2.04, 41.04]]},
]


def test_haversine_known_distances():
    assert haversine_m(41.3874, 2.1686, 40.4168, -3.7038) == pytest.approx(505_000, rel=0.01)  # BCN-MAD
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(41.4, 2.2, 41.4, 2.2) == 0


@pytest.mark.parametrize("lat, lon, expected", [(42, 2, 0), (41, 3, 90), (40, 2, 180), (41, 1, 270)])
def test_bearing(lat, lon, expected):
    assert bearing_deg(41, 2, lat, lon) == pytest.approx(expected, abs=0.5)


def test_local_time_in_project_time_zone():
    info = local_time(datetime(2024, 7, 1, 22, 30, tzinfo=UTC), "Europe/Madrid")
    assert info["hour"] == 0  # CEST is UTC+2
    assert info["date"] == "2024-07-02"
    assert info["day_of_week"] == "Tuesday" and info["weekday"] == 1
    assert info["local_time"].endswith("+02:00")
    winter = local_time(datetime(2024, 1, 15, 12, 0), "Europe/Madrid")  # naive = UTC
    assert winter["hour"] == 13


def test_points_of_interest_nearest_first_with_bearings():
    pois = [{"name": "Far", "lat": 41.5, "lon": 2.2}, {"name": "Plant", "lat": 41.41, "lon": 2.2}]
    out = points_of_interest(41.40, 2.20, pois)
    assert [p["name"] for p in out] == ["Plant", "Far"]
    assert out[0]["distance_m"] == pytest.approx(1112, abs=2)
    assert out[0]["bearing_deg"] == pytest.approx(0, abs=0.1)
    assert out[0]["bearing_from_poi_deg"] == pytest.approx(180, abs=0.1)


def test_bad_point_of_interest_is_named():
    with pytest.raises(ValueError, match="'Plant'"):
        points_of_interest(41.4, 2.2, [{"name": "Plant", "lat": "north", "lon": 2}])


def test_point_in_polygon_and_zones():
    assert point_in_polygon(41.05, 2.05, SQUARE)
    assert not point_in_polygon(41.2, 2.05, SQUARE)
    with_hole = [SQUARE, [[2.04, 41.04], [2.06, 41.04], [2.06, 41.06], [2.04, 41.06]]]
    assert not point_in_polygon(41.05, 2.05, with_hole)
    assert point_in_polygon(41.02, 2.02, with_hole)
    assert zones_containing(41.05, 2.05, ZONES) == ["Square", "Inner"]
    assert zone_of(41.02, 2.02, ZONES) == "Square"
    assert zone_of(45, 2.05, ZONES) is None


def test_bad_zone_is_named():
    with pytest.raises(ValueError, match="'Tiny'"):
        zone_of(41, 2, [{"name": "Tiny", "polygon": [[2, 41], [2.1, 41]]}])


def test_distance_to_zones():
    east = 2.1 + 1000 / (111_195 * 0.7547)  # ~1 km east of the square at 41.05 N
    assert distance_to_zones_m(41.05, east, ZONES[:1]) == pytest.approx(1000, rel=0.01)
    assert distance_to_zones_m(41.05, 2.05, ZONES) == 0
    assert distance_to_zones_m(41.05, 2.05, []) is None


def test_enrich_odour():
    result = enrich_odour(
        datetime(2024, 3, 4, 8, 15, tzinfo=UTC),
        41.05,
        2.05,
        timezone="Europe/Madrid",
        pois=[{"name": "Plant", "lat": 41.06, "lon": 2.05}],
        zones=ZONES,
    )
    assert result["hour"] == 9 and result["day_of_week"] == "Monday"
    assert result["points_of_interest"][0]["name"] == "Plant"
    assert result["zone"] == "Square" and result["zones"] == ["Square", "Inner"]
    assert "zone" not in enrich_odour(datetime(2024, 3, 4), 41.05, 2.05)
