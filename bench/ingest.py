"""Ingest throughput: ``core.lifecycle.submit`` against a plain SQLAlchemy insert of the same rows.

    python bench/ingest.py [--n 2000] [--database sqlite|postgresql|both] [--rounds 3] [--profile]

The pipeline is the real one: the engine's checks and the enabled plugins' validation, one
transaction that stores the observation and one pending enrichment row, then the enrichment
queued by the engine's CeleryDispatcher on the embedded file-system broker: handed to its send
buffer, which writes what arrives within ``dispatch_linger_ms`` as one Celery message (a worker
fans a batch out into one task per enrichment). The project enables one enriching plugin
(``bench/noop_plugin.py``), so every observation costs one enrichment row and one queued
enrichment, as it would with any enriching service; after each round the bench checks that every
enrichment is in the broker's messages exactly once, and prints how many messages carried them.

The baseline inserts the same observation rows into the same table with SQLAlchemy Core, one
transaction per row as ``submit`` does. A batched insert (every row in one transaction) is
printed for information only. Each figure is the median of ``--rounds`` rounds; the tables
are emptied before each round, after a warm-up.

When the ratio is under the target, or with ``--profile``, the pipeline is run again under
cProfile and the time per stage is printed, with the database work per observation.

The pipeline's clock stops only when every message is on the broker (``dispatcher.flush``).
``OBSERVATORY_DISPATCH_LINGER_MS=0`` measures the older path, one message sent per enrichment
in the submitting thread.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import pstats
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa

from core import lifecycle
from core.config import Settings
from core.db.models import Base, Enrichment, Observation
from core.engine import Engine
from core.worker import ENRICH_BATCH_TASK, CeleryDispatcher
from bench.common import DEFAULT_PG_URL, PROJECT, REGISTRY, TARGET, postgresql_database, sqlite_database



@dataclass
class Figures:
    database: str
    pipeline: float
    plain: float
    batched: float
    rounds: list[tuple[float, float, float]]

    @property
    def ratio(self) -> float:
        return self.pipeline / self.plain


# -- databases ---------------------------------------------------------------------------


def start_engine(folder: Path, database_url: str) -> Engine:
    registry = folder / "registry.yaml"
    registry.write_text(textwrap.dedent(REGISTRY))
    settings = Settings(
        environment="test",
        data_dir=folder / "data",
        database_url=database_url,
        broker_url="filesystem://",
        registry_path=registry,
        plugin_modules="noop=bench.noop_plugin",
    )
    return Engine.start(settings, dispatcher=CeleryDispatcher())


def empty(engine: Engine) -> None:
    """Empty every table and the broker's queue folder."""
    with engine.db.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    for message in queued(engine):
        message.unlink()


def queued(engine: Engine) -> list[Path]:
    return list((engine.settings.broker_folder / "in").glob("*.msg"))


def queued_enrichments(engine: Engine) -> list[int]:
    """The enrichment ids in the queued messages: one per enrich task, several per batch."""
    ids = []
    for message in queued(engine):
        data = json.loads(message.read_text())
        args = json.loads(base64.b64decode(data["body"]))[0]
        if data["headers"]["task"] == ENRICH_BATCH_TASK:
            ids += [enrichment_id for enrichment_id, _plugin in args[0]]
        else:
            ids.append(args[0])
    return ids


def count(engine: Engine, model: type) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


# -- the workload --------------------------------------------------------------------------


def make_drafts(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` distinct drafts, as an app would send them (with its own client_id)."""
    start = datetime(2026, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    return [
        {
            "client_id": f"{tag}-{i}",
            "observed_at": (start - timedelta(minutes=i)).isoformat(),
            "location": {"lat": 41.0 + (i % 1000) / 1000, "lon": 2.0 + (i % 997) / 1000, "accuracy_m": 8},
            "kind": "generic",
            "fields": {"note": f"a fox crossing the path, number {i}", "count": i % 7},
        }
        for i in range(n)
    ]


def rows_of(engine: Engine, drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The observation rows ``submit`` stores for ``drafts`` (computed before any timing)."""
    project = engine.registry.project(PROJECT)
    rows = []
    for data in drafts:
        parsed = lifecycle.parse_draft(data, project)
        rows.append(
            {
                "project": PROJECT,
                "client_id": parsed.client_id,
                "content_hash": lifecycle.content_hash(parsed, []),
                "contributor_id": None,
                "kind": parsed.kind or lifecycle.GENERIC_KIND,
                "observed_at": parsed.observed_at.astimezone(UTC),
                "lat": parsed.location.lat,
                "lon": parsed.location.lon,
                "accuracy_m": parsed.location.accuracy_m,
                "fields": parsed.fields,
                "status": "pending",
            }
        )
    return rows


def run_pipeline(engine: Engine, drafts: list[dict[str, Any]]) -> None:
    for data in drafts:
        lifecycle.submit(engine, PROJECT, data)
    # the clock stops only once every task message is on the broker
    if not engine.dispatcher.flush(60.0):
        raise SystemExit("the background sender did not queue every enrichment within 60 s")


def run_plain(engine: Engine, rows: list[dict[str, Any]]) -> None:
    insert = sa.insert(Observation.__table__)
    for row in rows:
        with engine.db.begin() as conn:  # one transaction per row, as submit does
            conn.execute(insert, row)


def run_batched(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.db.begin() as conn:
        conn.execute(sa.insert(Observation.__table__), rows)


def timed(n: int, work: Callable[[], None]) -> float:
    """Observations per second of ``work`` (which handles ``n`` observations)."""
    began = time.perf_counter()
    work()
    return n / (time.perf_counter() - began)


def check_pipeline(engine: Engine, n: int) -> int:
    """The pipeline really stored and queued: n observations, n enrichment rows, each queued once."""
    ids = queued_enrichments(engine)
    found = (count(engine, Observation), count(engine, Enrichment), len(set(ids)), len(ids))
    if found != (n, n, n, n):
        raise SystemExit(f"pipeline check failed: expected {n} observations, enrichments, enrichments queued and "
                         f"queued once, got {found}")
    return len(queued(engine))


def measure(engine: Engine, database: str, n: int, rounds: int) -> Figures:
    warm = max(50, min(300, n // 5))
    empty(engine)
    warm_drafts = make_drafts(warm, "warm")
    run_pipeline(engine, warm_drafts)
    check_pipeline(engine, warm)
    empty(engine)
    run_plain(engine, rows_of(engine, warm_drafts))
    empty(engine)
    run_batched(engine, rows_of(engine, warm_drafts))

    results = []
    for r in range(rounds):
        drafts = make_drafts(n, f"r{r}")
        rows = rows_of(engine, drafts)
        empty(engine)
        pipeline = timed(n, lambda drafts=drafts: run_pipeline(engine, drafts))
        messages = check_pipeline(engine, n)
        empty(engine)
        plain = timed(n, lambda rows=rows: run_plain(engine, rows))
        if count(engine, Observation) != n:
            raise SystemExit("plain insert check failed")
        empty(engine)
        batched = timed(n, lambda rows=rows: run_batched(engine, rows))
        results.append((pipeline, plain, batched))
        print(f"  {database} round {r + 1}: pipeline {pipeline:,.0f}/s ({messages} broker messages), "
              f"plain {plain:,.0f}/s, batched {batched:,.0f}/s", file=sys.stderr)
    empty(engine)
    return Figures(
        database,
        statistics.median(p for p, _, _ in results),
        statistics.median(p for _, p, _ in results),
        statistics.median(b for _, _, b in results),
        results,
    )


# -- profile -------------------------------------------------------------------------------

# (label, file suffix, function name): functions that each stage of one submit reaches only once,
# so that their cumulative time per call is that stage's cost.
STAGES = [
    ("submit, in all", "core/lifecycle.py", "submit"),
    ("validate (pydantic, JSON Schema, plugins' hooks)", "core/lifecycle.py", "validate"),
    ("content_hash", "core/lifecycle.py", "content_hash"),
    ("client_id look-up (a transaction of its own)", "core/lifecycle.py", "_lookup_retry"),
    ("store: the transaction (see below)", "", ""),
    ("queue: _after_commit (hand-over to the send buffer)", "core/lifecycle.py", "_after_commit"),
]


def _cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[int, float]:
    found = [(v[1], v[3]) for (path, _, fn), v in stats.stats.items() if fn == name and path.endswith(suffix)]  # type: ignore[attr-defined]
    return sum(c for c, _ in found), sum(t for _, t in found)


class RoundTrips:
    """Counts what one observation costs the database: pool check-outs, transactions, statements."""

    def __init__(self, engine: Engine):
        self.db = engine.db
        self.counts = {"checkout": 0, "begin": 0, "statement": 0, "commit": 0, "rollback": 0}
        self._listeners = [
            ("checkout", lambda *a: self._add("checkout")),
            ("begin", lambda *a: self._add("begin")),
            ("before_cursor_execute", lambda *a: self._add("statement")),
            ("commit", lambda *a: self._add("commit")),
            ("rollback", lambda *a: self._add("rollback")),
        ]

    def _add(self, key: str) -> None:
        self.counts[key] += 1

    def __enter__(self) -> Self:
        for name, fn in self._listeners:
            sa.event.listen(self.db if name != "checkout" else self.db.pool, name, fn)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self._listeners:
            sa.event.remove(self.db if name != "checkout" else self.db.pool, name, fn)

    def per(self, n: int) -> str:
        return ", ".join(f"{key} {value / n:g}" for key, value in self.counts.items())


def profile(engine: Engine, database: str, n: int, plain_rate: float, top: int) -> None:
    drafts = make_drafts(n, "profile")
    empty(engine)
    with RoundTrips(engine) as pipeline_trips:
        run_pipeline(engine, drafts[:100])
    empty(engine)
    with RoundTrips(engine) as plain_trips:
        run_plain(engine, rows_of(engine, drafts[:100]))
    empty(engine)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    run_pipeline(engine, drafts)
    profiler.disable()
    wall = time.perf_counter() - began
    empty(engine)
    stats = pstats.Stats(profiler)
    print(f"\nProfile of {n} submits on {database}: {wall / n * 1e6:,.0f} us each under cProfile "
          f"(a plain insert takes {1e6 / plain_rate:,.0f} us without it)")
    print(f"  database work per observation, pipeline: {pipeline_trips.per(100)}")
    print(f"  database work per observation, plain:    {plain_trips.per(100)}")
    _, total = _cumulative(stats, "core/lifecycle.py", "submit")
    accounted = 0.0
    rows = []
    for label, suffix, name in STAGES:
        if not name:
            rows.append((label, None))
            continue
        _, cumulative = _cumulative(stats, suffix, name)
        rows.append((label, cumulative))
        if label.startswith(("validate", "content_hash", "client_id", "queue: _after_commit")):
            accounted += cumulative
    print(f"  {'stage':<52} {'us/obs':>8} {'share':>6}")
    for label, cumulative in rows:
        value = total - accounted if cumulative is None else cumulative  # the store is what is left
        print(f"  {label:<52} {value / n * 1e6:>8,.0f} {value / total:>6.0%}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\nTop {top} functions by own time ({database}):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


# -- main ------------------------------------------------------------------------------------


def bench(database: str, args: argparse.Namespace) -> Figures:
    folder = Path(tempfile.mkdtemp(prefix=f"obs-bench-{database}-"))
    try:
        db = sqlite_database(folder) if database == "sqlite" else postgresql_database(args.pg_url)
        with db as url:
            engine = start_engine(folder, url)
            try:
                figures = measure(engine, database, args.n, args.rounds)
                if args.profile or figures.ratio < TARGET:
                    profile(engine, database, min(args.n, 1000), figures.plain, args.top)
            finally:
                engine.close()
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="observations per measurement (default 2000)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure; the median is printed")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server (default {DEFAULT_PG_URL})")
    parser.add_argument("--profile", action="store_true", help="profile the pipeline even when it meets the target")
    parser.add_argument("--top", type=int, default=25, help="functions to list in a profile")
    args = parser.parse_args(argv)

    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results = [bench(database, args) for database in databases]

    print(f"\nIngest, {args.n} observations, median of {args.rounds} rounds, one transaction per observation")
    print(f"{'database':<11} {'pipeline obs/s':>15} {'plain insert obs/s':>19} {'ratio':>6} {'target':>7}  "
          f"{'batched insert obs/s (info)':>28}")
    for f in results:
        verdict = "ok" if f.ratio >= TARGET else "BELOW"
        print(f"{f.database:<11} {f.pipeline:>15,.0f} {f.plain:>19,.0f} {f.ratio:>6.2f} {'>= ' + str(TARGET):>7}  "
              f"{f.batched:>28,.0f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
