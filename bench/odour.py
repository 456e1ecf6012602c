"""Benchmark: odour event detection on up to 1,000,000 synthetic reports.

Prints, for 250k, 500k and 1M reports at the same density (reports per day and per km^2, so
that a linear algorithm spends the same time per report at every size):

* the time of :func:`plugins.odour.events.detect_events_arrays` (best of ``--repeat`` rounds, each
  round timing every size in turn),
  the time per report, and the peak memory the detection allocated (tracemalloc, numpy arrays
  included) in a separate, traced run;
* the scaling: time(n) / time(250k) against n / 250k, and the log-log slope (1.0 = linear);
* the share of planted episodes found whole (all their reports in one event);
* the baseline: the plain pairwise comparison (:func:`naive_events`, pure Python) against the
  fast path on a ``--sample`` of reports at the same density, measured in the same run, whether
  the two group the reports identically, and the pairwise time extrapolated to 1M (n^2).

And the events list as the API serves it (``--list-reports``, default 100,000 published
reports in one project, SQLite in a temporary folder, ``--pg-url`` for PostgreSQL too):
``GET /api/v1/projects/smells/odour/events`` (a page of 100) through the app in process, first
(the process reads and clusters the project once), then warm, then right after each of
``--arrivals`` new reports (each inserted as another process would, then read incrementally),
against the plain baseline measured in the same run: one ``SELECT`` of the project's reports
(the least a request that detects events again must do). It checks that the incremental events
equal a detection over every report, and prints the memory the in-memory events take.
Then the analyses (categories, hour_weekday, heatmap.png) and ``GET /api/odor/list`` on the
same reports: median time of warm requests and the peak memory of one (tracemalloc).

Run from the repository root: ``python bench/odour.py`` (about a minute on 2 cores);
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

from datetime import UTC, datetime

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


LIST_REGISTRY = """
services:
  odour:
    summary: odour reports (benchmark)
    config: {pseudonym_key: bench}
    settings: {type: object}
projects:
  - slug: smells
    name: Smells
    timezone: Europe/Madrid
    auto_publish: true
    location_precision: 3
    services: {odour: {}}
"""


def _insert_reports(db, arrays: ReportArrays, first: int, count: int, stamp, people: dict[int, int]) -> None:
    import sqlalchemy as sa

    from core.db.models import Observation

    cats, who = arrays.category.tolist(), arrays.contributor.tolist()
    rows = []
    for k in range(first, first + count):
        category = int(cats[k])
        rows.append({
            "id": k + 1, "project": "smells", "content_hash": f"b{k}", "kind": "odour", "status": "published",
            "observed_at": datetime.fromtimestamp(float(arrays.t[k]), UTC),
            "lat": float(arrays.lat[k]), "lon": float(arrays.lon[k]), "contributor_id": people[who[k]],
            "fields": {"category": category, "subtype": 53, "intensity": int(arrays.intensity[k]),
                       "hedonic_tone": int(arrays.hedonic_tone[k])},
            "created_at": stamp, "updated_at": stamp})
    for start in range(0, len(rows), 10_000):
        with db.begin() as conn:
            conn.execute(sa.insert(Observation.__table__), rows[start:start + 10_000])


def _people(db, arrays: ReportArrays) -> dict[int, int]:
    """A contributor row per simulated person; simulated person -> contributor id."""
    import sqlalchemy as sa

    from core.db.models import Contributor

    people = sorted(set(arrays.contributor.tolist()))
    with db.begin() as conn:
        for start in range(0, len(people), 10_000):
            conn.execute(sa.insert(Contributor.__table__), [
                {"id": k + 1, "name": f"p{p}"} for k, p in enumerate(people[start:start + 10_000], start=start)])
    return {p: k + 1 for k, p in enumerate(people)}


ROUTES = (
    ("analyses/categories", "/api/v1/projects/smells/odour/analyses/categories"),
    ("analyses/hour_weekday", "/api/v1/projects/smells/odour/analyses/hour_weekday"),
    ("analyses/heatmap.png", "/api/v1/projects/smells/odour/analyses/heatmap.png"),
    ("odor/list", "/api/odor/list"),
)


def _route_costs(client, requests: int) -> dict:
    """Time (median of ``requests``, warm) and peak memory (one traced request, tracemalloc) of
    the analyses and the OdourCollect list, each on every report of the project."""
    import statistics

    out = {}
    for name, path in ROUTES:
        times, size = [], 0
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text[:300]
            size = len(response.content)
        tracemalloc.start()
        client.get(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        body = response.json() if "json" in response.headers["content-type"] else {}
        out[name] = {"p50_ms": statistics.median(times) * 1000, "peak_mib": peak / 2**20, "bytes": size,
                     "rows": body.get("n_reports", len(body.get("content", [])) if body else None),
                     "truncated": body.get("truncated")}
    return out


def list_latency(url: str, n: int, arrivals: int, requests: int) -> dict:
    """The events list at ``n`` reports: first, warm, and after each new report, against a plain SELECT."""
    import statistics
    import tempfile

    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from core.config import Settings
    from core.db.models import Observation, utcnow
    from core.engine import Engine
    from core.worker import InlineDispatcher
    from plugins.odour import event_store, service

    arrays, _ = simulate_arrays(n + arrivals, seed=7)
    folder = Path(tempfile.mkdtemp(prefix="odour-list-"))
    (folder / "registry.yaml").write_text(LIST_REGISTRY)
    settings = Settings(environment="test", data_dir=folder / "data", database_url=url,
                        registry_path=folder / "registry.yaml", rate_limit_per_minute=0)
    engine = Engine.start(settings, dispatcher=InlineDispatcher())
    db = engine.db
    people = _people(db, arrays)
    _insert_reports(db, arrays, 0, n, utcnow(), people)
    path = "/api/v1/projects/smells/odour/events"
    figures: dict = {"n": n, "database": url.split(":")[0]}
    with TestClient(create_app(engine)) as client:
        began = time.perf_counter()
        first = client.get(path)
        figures["first_ms"] = (time.perf_counter() - began) * 1000
        assert first.status_code == 200, first.text
        warm = []
        for _ in range(requests):
            began = time.perf_counter()
            assert client.get(path).status_code == 200
            warm.append(time.perf_counter() - began)
        after_arrival = []
        for k in range(arrivals):
            _insert_reports(db, arrays, n + k, 1, utcnow(), people)
            began = time.perf_counter()
            page = client.get(path, params={"since": datetime.fromtimestamp(float(arrays.t[n + k]) - 86400,
                                                                            UTC).isoformat()})
            after_arrival.append(time.perf_counter() - began)
            assert page.status_code == 200
        figures["routes"] = _route_costs(client, max(3, requests // 10))
        plain = []
        query = sa.select(Observation.id, Observation.observed_at, Observation.lat, Observation.lon,
                          Observation.fields).where(Observation.project == "smells", Observation.kind == "odour")
        for _ in range(max(3, requests // 10)):
            began = time.perf_counter()
            with db.connect() as conn:
                rows = conn.execute(query).all()
            plain.append(time.perf_counter() - began)
        # the incremental events equal a detection over every report
        project = engine.registry.project("smells")
        kept = service.events(engine, project, public=True)
        index = event_store.index_for(engine, "smells", service.event_rule(project, True))
        reports = [Report(r.id, r.contributor, r.category, r.observed_at, r.lat, r.lon, r.intensity, r.hedonic)
                   for r in sorted(index.reports.values(), key=lambda r: (r.t, r.id))]
        full = detect_events(reports, window=index.rule.window_s, distance_m=index.rule.distance_m)
        figures["same_as_full_detection"] = {frozenset(e["report_ids"]) for e in kept["events"]} == full.groups()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        probe = event_store.EventIndex(index.rule)
        probe.build(list(index.reports.values()))
        figures["index_mib"] = (tracemalloc.get_traced_memory()[0] - before) / 2**20
        tracemalloc.stop()
        del probe
    engine.close()
    figures.update(
        rows=len(rows), warm_p50_ms=statistics.median(warm) * 1000,
        warm_p95_ms=sorted(warm)[int(0.95 * (len(warm) - 1))] * 1000,
        arrival_p50_ms=statistics.median(after_arrival) * 1000 if after_arrival else None,
        arrival_max_ms=max(after_arrival) * 1000 if after_arrival else None,
        plain_select_ms=statistics.median(plain) * 1000)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--sample", type=int, default=2_000, help="reports for the pairwise baseline")
    parser.add_argument("--repeat", type=int, default=5, help="rounds over every size (best of them)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--list-reports", type=int, default=100_000, help="reports for the events list (0: skip)")
    parser.add_argument("--arrivals", type=int, default=30, help="new reports, each followed by a list request")
    parser.add_argument("--requests", type=int, default=50, help="warm list requests")
    parser.add_argument("--pg-url", default=None, help="also measure the list on PostgreSQL (a temporary database)")
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
    simulated = {n: _best(partial(simulate_arrays, n, seed=args.seed), 1) for n in args.sizes}
    # rounds over every size in turn, best of the rounds per size: a busy spell of the machine
    # then slows one round of every size rather than every round of one size (which bent the slope)
    timings: dict[int, list[float]] = {n: [] for n in args.sizes}
    detections = {}
    for _ in range(args.repeat):
        for n in args.sizes:
            began = time.perf_counter()
            detections[n] = detect_events_arrays(simulated[n][1][0])
            timings[n].append(time.perf_counter() - began)
    for n in args.sizes:
        t_sim, (arrays, truth) = simulated[n]
        t_det, detection = min(timings[n]), detections[n]
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
    if args.list_reports:
        import tempfile

        from bench.common import postgresql_database, sqlite_database

        figures["list"] = []
        print(f"\nevents list at {args.list_reports:,} published reports "
              "(GET .../odour/events, a page of 100, through the app in process):")
        with tempfile.TemporaryDirectory() as folder:
            databases = [sqlite_database(Path(folder))]
            if args.pg_url:
                databases.append(postgresql_database(args.pg_url))
            for database in databases:
                with database as url:
                    row = list_latency(url, args.list_reports, args.arrivals, args.requests)
                figures["list"].append(row)
                agree = agree and row["same_as_full_detection"]
                print(
                    f"  {row['database']}: first request {row['first_ms']:,.0f} ms (reads and clusters the project), "
                    f"warm p50 {row['warm_p50_ms']:.1f} ms "
                    f"p95 {row['warm_p95_ms']:.1f} ms, right after a new report p50 {row['arrival_p50_ms']:.1f} ms "
                    f"max {row['arrival_max_ms']:.1f} ms (target < 50 ms)\n"
                    f"    plain baseline, one SELECT of the {row['rows']:,} reports: {row['plain_select_ms']:.1f} ms; "
                    f"events kept in memory: {row['index_mib']:.0f} MiB "
                    f"({row['index_mib'] * 2**20 / row['n']:.0f} bytes a report); "
                    f"same events as a full detection: {'yes' if row['same_as_full_detection'] else 'NO'}"
                )
                for name, cost in row["routes"].items():
                    print(f"    GET {name}: p50 {cost['p50_ms']:,.0f} ms, peak {cost['peak_mib']:,.0f} MiB traced, "
                          f"{cost['bytes'] / 2**20:.1f} MiB answer, {cost['rows']} reports"
                          + (" (truncated)" if cost["truncated"] else ""))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["max_rss_mib"] = rss
    print(f"\nprocess peak RSS: {rss:.0f} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
