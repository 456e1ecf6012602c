"""Import throughput: rows per second through ``observatory import`` against a plain bulk insert.

    python bench/import.py [--rows 100000] [--batch 2000] [--database sqlite|postgresql|both]
                           [--database-url postgresql://postgres@127.0.0.1:5432/test] [--profile]

The bench writes a CSV of ``--rows`` old observations (a source id, an ISO time, a place, an
accuracy, a species, a count and an observer who did not consent) and its column mapping, then,
in the same run and on the same database:

- *import*: ``core.importing.import_file``, the machinery of ``observatory import`` called
  in-process with the progress bar off: the CSV read through the mapping, each row checked as a
  submitted observation is (pydantic, the kind's JSON Schema, the plugins' validation), the
  observer's pseudonym computed, then ``core.lifecycle.submit_many`` per ``--batch`` rows (the
  client ids looked up, then one transaction: observations and one pending enrichment each, by
  executemany on SQLite and COPY on PostgreSQL), and the enrichments queued by the engine's
  CeleryDispatcher on the embedded file-system broker. The project enables one enriching plugin
  (``bench/noop_plugin.py``), as in ``bench/ingest.py``. The clock stops once every task message
  is on the broker.
- *plain*: the same observation rows (computed before the clock starts) inserted with SQLAlchemy
  Core ``executemany`` into the ``observations`` table, ``--batch`` rows per transaction.

After the import the bench checks that every row was stored, with one enrichment each, and that a
second run stores nothing (the second run's rate is printed for information). It prints rows per
second of both paths and their ratio (target >= 0.5). With ``--profile`` the import runs again
under cProfile and the top functions are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import csv
import io
import pstats
import shutil
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa

from bench.common import DEFAULT_PG_URL, PROJECT, REGISTRY, TARGET, postgresql_database, sqlite_database
from core.config import Settings
from core.db.models import Base, Enrichment, Observation
from core.engine import Engine
from core.importing import import_file
from core.worker import CeleryDispatcher

MAPPING = """\
source: bench
id: Record
observed_at: When
lat: Latitude
lon: Longitude
accuracy: Accuracy
user_id: Observer
fields:
  species: Species
  count: {column: Count, type: integer}
"""
SPECIES = ["Vulpes vulpes", "Erinaceus europaeus", "Pica pica", "Turdus merula", "Parus major", "Strix aluco"]


def write_source(folder: Path, n: int) -> tuple[Path, Path]:
    start = datetime(2019, 4, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    source = folder / "old.csv"
    with source.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Record", "When", "Latitude", "Longitude", "Accuracy", "Species", "Count", "Observer"])
        for i in range(n):
            writer.writerow([f"R{i}", (start + timedelta(minutes=7 * i)).isoformat(), f"{41 + (i % 1000) / 1000:.4f}",
                             f"{2 + (i % 997) / 1000:.4f}", 5 + i % 40, SPECIES[i % len(SPECIES)], 1 + i % 9,
                             f"obs-{i % 250}"])
    mapping = folder / "mapping.yaml"
    mapping.write_text(MAPPING)
    return source, mapping


def plain_rows(source: Path) -> list[dict[str, Any]]:
    """The observation rows the import stores, built directly from the CSV (before any timing)."""
    now = datetime.now(timezone.utc)
    rows = []
    with source.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append({
                "project": PROJECT, "client_id": f"bench:{r['Record']}", "content_hash": "0" * 64,
                # one key per observer, as the import stores (an indexed column: a constant would
                # make the baseline's index cheaper than the rows it stands for)
                "contributor_id": None, "source_contributor": hashlib.sha256(r["Observer"].encode()).hexdigest(),
                "kind": "generic",
                "observed_at": datetime.fromisoformat(r["When"]).astimezone(timezone.utc),
                "lat": float(r["Latitude"]), "lon": float(r["Longitude"]), "accuracy_m": float(r["Accuracy"]),
                "fields": {"species": r["Species"], "count": int(r["Count"])}, "status": "pending",
                "licence": "CC-BY-4.0", "location_privacy": "open", "created_at": now, "updated_at": now,
                "assess_due_at": now,
            })
    return rows


def start_engine(folder: Path, database_url: str) -> Engine:
    registry = folder / "registry.yaml"
    registry.write_text(textwrap.dedent(REGISTRY))
    settings = Settings(environment="test", data_dir=folder / "data", database_url=database_url,
                        broker_url="filesystem://", registry_path=registry, plugin_modules="noop=bench.noop_plugin")
    return Engine.start(settings, dispatcher=CeleryDispatcher())


def empty(engine: Engine) -> None:
    with engine.db.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    for message in (engine.settings.broker_folder / "in").glob("*.msg"):
        message.unlink()


def count(engine: Engine, model: type) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def run_import(engine: Engine, source: Path, mapping: Path, batch: int) -> Any:
    summary = import_file(engine, PROJECT, source, mapping=mapping, batch_size=batch, progress=None)
    if not engine.dispatcher.flush(120.0):
        raise SystemExit("the background sender did not queue every enrichment within 120 s")
    return summary


def run_plain(engine: Engine, rows: list[dict[str, Any]], batch: int) -> None:
    insert = sa.insert(Observation.__table__)
    for start in range(0, len(rows), batch):
        with engine.db.begin() as conn:
            conn.execute(insert, rows[start:start + batch])


def timed(work: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = work()
    return time.perf_counter() - began, result


def bench(database: str, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"obs-bench-import-{database}-"))
    try:
        source, mapping = write_source(folder, args.rows)
        rows = plain_rows(source)
        db = sqlite_database(folder) if database == "sqlite" else postgresql_database(args.database_url)
        with db as url:
            engine = start_engine(folder, url)
            try:
                # warm-up: a small file through both paths (imports, statement caches, the broker)
                (folder / "warm").mkdir()
                warm_source, _ = write_source(folder / "warm", 300)
                run_import(engine, warm_source, mapping, args.batch)
                empty(engine)
                run_plain(engine, plain_rows(warm_source), args.batch)
                empty(engine)

                seconds, summary = timed(lambda: run_import(engine, source, mapping, args.batch))
                found = (summary.stored, summary.refused, count(engine, Observation), count(engine, Enrichment))
                if found != (args.rows, 0, args.rows, args.rows):
                    raise SystemExit(f"import check failed: expected {args.rows} stored, 0 refused, {args.rows} "
                                     f"observations and enrichments; got {found}")
                again_seconds, again = timed(lambda: run_import(engine, source, mapping, args.batch))
                if (again.stored, again.duplicates) != (0, args.rows):
                    raise SystemExit(f"second run check failed: {again.text()}")
                if args.profile:
                    empty(engine)
                    profile(engine, source, mapping, args)
                empty(engine)
                plain_seconds, _ = timed(lambda: run_plain(engine, rows, args.batch))
                if count(engine, Observation) != args.rows:
                    raise SystemExit("plain insert check failed")
                empty(engine)
            finally:
                engine.close()
        result = {"database": database, "import": args.rows / seconds, "plain": args.rows / plain_seconds,
                  "again": args.rows / again_seconds}
        result["ratio"] = result["import"] / result["plain"]
        print(f"  {database}: import {result['import']:,.0f} rows/s ({seconds:.1f} s), plain {result['plain']:,.0f} "
              f"rows/s ({plain_seconds:.1f} s), second run {result['again']:,.0f} rows/s", file=sys.stderr)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def profile(engine: Engine, source: Path, mapping: Path, args: argparse.Namespace) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    run_import(engine, source, mapping, args.batch)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the CSV (default 100000)")
    parser.add_argument("--batch", type=int, default=2000, help="rows per transaction, both paths (default 2000, "
                        "as import_file's)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server (default {DEFAULT_PG_URL})")
    parser.add_argument("--profile", action="store_true", help="profile the import once more and print the top")
    parser.add_argument("--top", type=int, default=30, help="functions listed by --profile")
    args = parser.parse_args(argv)

    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results = [bench(database, args) for database in databases]
    print(f"\nImport, {args.rows} CSV rows, {args.batch} rows per transaction")
    print(f"{'database':<11} {'import rows/s':>14} {'plain insert rows/s':>20} {'ratio':>6} {'target':>7}")
    for r in results:
        verdict = "ok" if r["ratio"] >= TARGET else "BELOW"
        print(f"{r['database']:<11} {r['import']:>14,.0f} {r['plain']:>20,.0f} {r['ratio']:>6.2f} "
              f"{'>= ' + str(TARGET):>7}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
