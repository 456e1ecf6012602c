from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from plugins.odour.analyses import bbox_of_zones, daily_intensity, heatmap, hour_weekday_counts
from plugins.odour.reports import Report

MONDAY_8_UTC = datetime(2024, 3, 4, 8, 20, tzinfo=UTC)


def rep(i, when, category=5, intensity=3, hedonic=-2, lat=41.40, lon=2.20):
    return Report(i, f"c{i}", category, when, lat, lon, intensity, hedonic)


def test_counts_by_hour_and_weekday_per_category():
    reps = [rep(1, MONDAY_8_UTC), rep(2, MONDAY_8_UTC + timedelta(minutes=10)), rep(3, MONDAY_8_UTC, category=2)]
    rows = hour_weekday_counts(reps)["rows"]
    assert len(rows) == 2 * 7 * 24
    assert sum(r["count"] for r in rows) == 3
    hot = [r for r in rows if r["count"]]
    assert {(r["category"], r["day_of_week"], r["hour"], r["count"]) for r in hot} == {
        (5, "Monday", 8, 2),
        (2, "Monday", 8, 1),
    }
    local = [r for r in hour_weekday_counts(reps, timezone="Europe/Madrid")["rows"] if r["count"]]
    assert {r["hour"] for r in local} == {9}


def test_daily_mean_intensity():
    reps = [
        rep(1, MONDAY_8_UTC, intensity=2),
        rep(2, MONDAY_8_UTC, intensity=4, category=1),
        rep(3, MONDAY_8_UTC + timedelta(days=1), intensity=5),
        rep(4, datetime(2024, 3, 4, 23, 30, tzinfo=UTC), intensity=6),
    ]
    rows = daily_intensity(reps)["rows"]
    overall = {r["date"]: r for r in rows if r["category"] is None}
    assert overall["2024-03-04"]["mean_intensity"] == pytest.approx(4.0)
    assert overall["2024-03-04"]["n_reports"] == 3
    assert overall["2024-03-05"]["mean_intensity"] == 5.0
    per_cat = {(r["date"], r["category"]): r["mean_intensity"] for r in rows if r["category"] is not None}
    assert per_cat[("2024-03-04", 5)] == 4.0 and per_cat[("2024-03-04", 1)] == 4.0
    madrid = {
        r["date"]: r["n_reports"]
        for r in daily_intensity(reps, timezone="Europe/Madrid")["rows"]
        if r["category"] is None
    }
    assert madrid == {"2024-03-04": 2, "2024-03-05": 2}  # 23:30 UTC is past midnight in Madrid


def test_heat_map_counts_geojson_and_png():
    bbox = (2.0, 41.0, 2.1, 41.1)
    hot = [rep(i, MONDAY_8_UTC, lat=41.051, lon=2.051) for i in range(6)]
    cool = [rep(10, MONDAY_8_UTC, lat=41.01, lon=2.01)]
    away = [rep(11, MONDAY_8_UTC, lat=45.0, lon=9.0)]
    result = heatmap(hot + cool + away, bbox=bbox, cell_m=1000)
    assert result["outside"] == 1
    assert sum(r["count"] for r in result["rows"]) == 7
    assert result["max_count"] == 6
    n_rows, n_cols = result["shape"]
    assert n_rows == 12 and n_cols == 9  # 11.1 km x 8.4 km in 1 km cells
    features = result["geojson"]["features"]
    assert sorted(f["properties"]["count"] for f in features) == [1, 6]
    cell = next(f for f in features if f["properties"]["count"] == 6)
    ring = np.array(cell["geometry"]["coordinates"][0])
    assert ring[:, 0].min() <= 2.051 <= ring[:, 0].max() and ring[:, 1].min() <= 41.051 <= ring[:, 1].max()

    image = cv2.imdecode(np.frombuffer(result["png"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape[2] == 4 and max(image.shape[:2]) >= 256
    scale = image.shape[0] // n_rows
    hot_row = next(r for r in result["rows"] if r["count"] == 6)
    y = (n_rows - 1 - hot_row["row"]) * scale + scale // 2  # north up
    x = hot_row["col"] * scale + scale // 2
    assert image[y, x, 3] == 255, "a cell with reports is drawn"
    assert image[0, 0, 3] == 0, "an empty cell is transparent"


def test_heat_map_by_category_and_defaults():
    reps = [rep(1, MONDAY_8_UTC), rep(2, MONDAY_8_UTC, category=1, lat=41.5)]
    assert sum(r["count"] for r in heatmap(reps, category=1)["rows"]) == 1
    assert sum(r["count"] for r in heatmap(reps)["rows"]) == 2


def test_heat_map_refuses_a_grid_too_fine():
    with pytest.raises(ValueError, match="larger cells"):
        heatmap([], bbox=(0, 40, 10, 50), cell_m=100)


def test_bbox_of_zones():
    zones = [{"name": "a", "polygon": [[2.0, 41.0], [2.1, 41.0], [2.1, 41.2]]}]
    assert bbox_of_zones(zones) == (2.0, 41.0, 2.1, 41.2)
    assert bbox_of_zones([]) is None
