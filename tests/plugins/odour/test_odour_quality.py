import random
from datetime import UTC, datetime, timedelta

import numpy as np

from plugins.odour.quality import (
    burst_flag,
    burst_size,
    burst_sizes,
    combination_flags,
    quality_flags,
    zone_flag,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ZONES = [{"name": "Town", "polygon": [[2.0, 41.0], [2.1, 41.0], [2.1, 41.1], [2.0, 41.1]]}]
VALID = {"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3, "duration": 1}


def test_burst_flag_counts_reports_within_the_window():
    others = [T0 - timedelta(minutes=m) for m in (2, 4, 6, 8)]
    flag = burst_flag(T0, others)
    assert flag is not None
    assert flag.code == "odour.burst" and flag.value == 5 and flag.plugin == "odour"
    assert "5 reports" in flag.message
    assert burst_flag(T0, others[:3]) is None  # 4 reports
    spread = [T0 - timedelta(minutes=m) for m in (7, 14, 21, 28)]
    assert burst_flag(T0, spread) is None  # 5 reports over half an hour
    assert burst_flag(T0, spread, min_reports=2, minutes=7) is not None


def test_burst_window_may_lie_after_the_report():
    later = [T0 + timedelta(minutes=m) for m in (1, 3, 5, 7, 9)]
    assert burst_size(T0, later) == 6


def test_burst_sizes_for_a_whole_data_set_agree_with_one_by_one():
    rng = random.Random(3)
    contributors = [rng.randint(1, 5) for _ in range(300)]
    times = [T0 + timedelta(minutes=rng.uniform(0, 600)) for _ in range(300)]
    sizes = burst_sizes(contributors, times)
    for i in range(300):
        others = [times[j] for j in range(300) if j != i and contributors[j] == contributors[i]]
        assert sizes[i] == burst_size(times[i], others)
    assert isinstance(sizes, np.ndarray)


def test_outside_every_zone_is_flagged_with_distance():
    flag = zone_flag(41.05, 2.112, ZONES)
    assert flag is not None and flag.code == "odour.outside_zones"
    assert 900 < flag.value < 1100
    assert "Town" in flag.message
    assert zone_flag(41.05, 2.05, ZONES) is None
    assert zone_flag(45.0, 9.0, []) is None, "no zones, no flag"


def test_implausible_combinations():
    flags = combination_flags({"category": 7, "subtype": 81, "intensity": 3, "hedonic_tone": -2})
    assert [(f.code, f.value) for f in flags] == [("odour.nice_but_unpleasant", -2)]
    flags = combination_flags({"category": 9, "subtype": 88, "intensity": 0, "hedonic_tone": 0, "duration": 3})
    assert [(f.code, f.value) for f in flags] == [("odour.no_odour_but_continuous", 3)]
    flags = combination_flags({"category": 9, "subtype": 88, "intensity": 0, "hedonic_tone": -1})
    assert [(f.code, f.value) for f in flags] == [("odour.imperceptible_but_hedonic", -1)]
    assert combination_flags(VALID) == []
    assert combination_flags({"category": 7, "intensity": 3, "hedonic_tone": 2}) == []


def test_quality_flags_gathers_them():
    flags = quality_flags(
        {"category": 7, "subtype": 81, "intensity": 3, "hedonic_tone": -1},
        lat=45.0,
        lon=9.0,
        observed_at=T0,
        contributor_times=[T0 + timedelta(minutes=m) for m in range(1, 6)],
        zones=ZONES,
    )
    assert {f.code for f in flags} == {"odour.nice_but_unpleasant", "odour.burst", "odour.outside_zones"}
    assert all(f.severity == "warning" for f in flags)
    assert quality_flags(VALID, lat=41.05, lon=2.05, observed_at=T0, zones=ZONES) == []
