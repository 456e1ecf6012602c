"""Benchmark: odour event detection on up to 1,000,000 synthetic reports.

Prints, for 250k, 500k and 1M reports at the same density (reports per day and per km^2, so
that a linear algorithm spends the same time per report at every size):

* the time of :func:`plugins.odour.events.detect_events_arrays` (best of ``--repeat`` runs),
  the time per report, and the peak memory the detection allocated (tracemalloc, numpy arrays
  included) in a separate, traced run;
* the scaling: time(n) / time(250k) against n / 250k, and the log-log slope (1.0 = linear);
* the share of planted episodes found whole (all their reports in one event);
* the baseline: the plain pairwise comparison (:func:`naive_events`, pure Python) against the
  fast path on a ``--sample`` of reports at the same density, measured in the same run, whether
  the two group the reports identically, and the pairwise time extrapolated to 1M (n^2).

Run from the repository root: ``python bench/odour.py`` (about half a minute on 2 cores);
``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC

from plugins.odour.events import (
    ReportArrays,
    cluster_labels,
    detect_events,
    detect_events_arrays,
    naive_events,
)
from plugins.odour.reports import Report
from plugins.odour.simulate import simulate_arrays

UTC_EPOCH = np.datetime64("1970-01-01T00:00:00", "us")


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _recovered(arrays: ReportArrays, truth: np.ndarray) -> float:
    """Share of planted episodes whose reports all fall in one and the same event."""
    comp, is_event = cluster_labels(arrays)
    planted = truth >= 0
    ep, cp, ev = truth[planted], comp[planted], is_event[planted]
    pairs = np.unique(ep * (int(cp.max()) + 1) + cp)
    comps_per_episode = np.bincount(pairs // (int(cp.max()) + 1))
    all_in_event = np.bincount(ep, weights=~ev) == 0
    present = np.bincount(ep) > 0
    whole = (comps_per_episode == 1) & all_in_event & present
    return float(whole.sum() / present.sum())


def _as_reports(arrays: ReportArrays) -> list[Report]:
    from datetime import datetime

    return [
        Report(
            id=int(arrays.ids[i]),
            contributor=int(arrays.contributor[i]),
            category=int(arrays.category[i]),
            observed_at=datetime.fromtimestamp(float(arrays.t[i]), UTC),
            lat=float(arrays.lat[i]),
            lon=float(arrays.lon[i]),
            intensity=int(arrays.intensity[i]),
            hedonic_tone=int(arrays.hedonic_tone[i]),
        )
        for i in range(len(arrays))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--sample", type=int, default=2_000, help="reports for the pairwise baseline")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    print(
        f"odour event detection benchmark | python {platform.python_version()} | numpy {np.__version__} "
        f"| {os.cpu_count()} cpu | {platform.machine()}"
    )
    print("rule: same category, |dt| <= 4 h, distance <= 2 km, >= 2 distinct contributors\n")
    figures: dict = {"sizes": [], "baseline": {}}

    print(
        f"{'reports':>10} {'simulate s':>10} {'detect s':>9} {'us/report':>9} {'peak MiB':>9} "
        f"{'events':>8} {'possible':>9} {'episodes whole':>15}"
    )
    base_time = base_n = None
    for n in args.sizes:
        t_sim, (arrays, truth) = _best(partial(simulate_arrays, n, seed=args.seed), 1)
        t_det, detection = _best(partial(detect_events_arrays, arrays), args.repeat)
        tracemalloc.start()
        detect_events_arrays(arrays)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        found = _recovered(arrays, truth)
        row = {
            "n": n,
            "simulate_s": t_sim,
            "detect_s": t_det,
            "us_per_report": t_det / n * 1e6,
            "peak_mib": peak / 2**20,
            "events": len(detection.events),
            "possible": len(detection.possible),
            "episodes_found": found,
        }
        figures["sizes"].append(row)
        print(
            f"{n:>10,} {t_sim:>10.2f} {t_det:>9.2f} {row['us_per_report']:>9.2f} {row['peak_mib']:>9.0f} "
            f"{row['events']:>8,} {row['possible']:>9,} {found:>14.1%}"
        )
        if base_time is None:
            base_time, base_n = t_det, n

    print("\nscaling (linear = time ratio equal to size ratio, slope 1.0):")
    for row in figures["sizes"]:
        size_ratio = row["n"] / base_n
        time_ratio = row["detect_s"] / base_time
        slope = math.log(time_ratio) / math.log(size_ratio) if size_ratio > 1 else float("nan")
        row["time_ratio"], row["size_ratio"], row["slope"] = time_ratio, size_ratio, slope
        print(
            f"  {row['n']:>10,}: size x{size_ratio:.1f}, time x{time_ratio:.2f}"
            + ("" if size_ratio == 1 else f", log-log slope {slope:.2f}")
        )

    # the pairwise baseline on a sample at the same density
    sample, _ = simulate_arrays(args.sample, seed=args.seed)
    reports = _as_reports(sample)
    t_naive, slow = _best(partial(naive_events, reports), 1)
    t_fast_obj, fast_obj = _best(partial(detect_events, reports), args.repeat)
    t_fast_arr, fast_arr = _best(partial(detect_events_arrays, sample), args.repeat)
    agree = slow.groups() == fast_obj.groups() == fast_arr.groups() and set(slow.possible) == set(fast_arr.possible)
    big = max(figures["sizes"], key=lambda r: r["n"]) if figures["sizes"] else None
    figures["baseline"] = {
        "n": args.sample,
        "pairwise_s": t_naive,
        "fast_reports_s": t_fast_obj,
        "fast_arrays_s": t_fast_arr,
        "same_grouping": agree,
        "events": len(slow.events),
    }
    print(f"\nbaseline on {args.sample:,} reports (same density), measured in this run:")
    print(
        f"  plain pairwise comparison (pure Python, n(n-1)/2 = {args.sample * (args.sample - 1) // 2:,} pairs): "
        f"{t_naive:.3f} s"
    )
    print(f"  grid + union-find, from Report objects: {t_fast_obj:.4f} s  ({t_naive / t_fast_obj:,.0f}x faster)")
    print(f"  grid + union-find, from numpy columns:  {t_fast_arr:.4f} s  ({t_naive / t_fast_arr:,.0f}x faster)")
    print(f"  same grouping: {'yes' if agree else 'NO'} ({len(slow.events)} events)")
    if big:
        extrapolated = t_naive * (big["n"] / args.sample) ** 2
        figures["baseline"]["pairwise_extrapolated_s"] = extrapolated
        figures["baseline"]["speedup_at_max"] = extrapolated / big["detect_s"]
        print(
            f"  pairwise extrapolated to {big['n']:,} reports (x n^2): {extrapolated:,.0f} s "
            f"(~{extrapolated / 3600:,.0f} h) vs {big['detect_s']:.2f} s measured: "
            f"{extrapolated / big['detect_s']:,.0f}x"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["max_rss_mib"] = rss
    print(f"\nprocess peak RSS: {rss:.0f} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
