"""Export throughput and memory: CSV and Darwin Core Archive through the engine against a plain
``SELECT`` written with ``csv.writer``, in the same run, on the same rows.

    python bench/export.py [--rows 1000000] [--database-url postgresql://postgres@127.0.0.1:5432/test]

SQLite always (a file in a temporary folder); PostgreSQL too with ``--database-url`` (a temporary
database is created beside that one and dropped at the end; ``--no-sqlite`` skips SQLite).

The rows are made with a plain bulk insert (``executemany`` of 10,000 rows a statement), not
through ``submit``: this measures the export, not the ingest. They look like a real project's:
published, kind ``generic``, three fields, licences CC BY and CC0, location privacy 90% open,
8% obscured, 2% private, on a project that shows places to 3 decimals. On PostgreSQL the table is
then analysed, as autovacuum does on a live server within a minute of such an insert: without
statistics the planner expects (project, status) to match almost no row, and reads each page of
an export through that index (every published row, then a sort) instead of the primary key.

Three paths read the same published rows, each into a sink that counts the bytes and keeps none:

- *plain*: ``SELECT`` of the source of every CSV column: the observation's columns (fields as
  their JSON text, licence, location privacy), its media count and its quality flags' codes (a
  subquery each, as the export's ``media_count`` and ``flags`` columns read them), with
  ``stream_results``, 10,000 rows at a time, each row written with ``csv.writer``: the least an
  export can do;
- *engine CSV*: ``core.export.export(..., "csv")``, the public export as the API streams it
  (schema columns, ``fields_other``, flags, plugins' columns, licence and privacy columns,
  places by privacy, pages of ``EXPORT_BATCH`` rows with their media and flags);
- *engine DwC-A*: ``core.dwca.archive``, the zip the API streams (occurrence rows, media spooled
  to a temporary file, meta.xml and eml.xml), compressed.

Each path runs in a forked child process, so that its memory is its own: peak memory is the
child's high-water mark of resident memory (``VmHWM``) less its resident memory when it
started. Every path is measured at ``rows / 10`` and then, after the other rows are inserted,
at ``rows``; memory is *flat* when the peak at ``rows`` is at most 1.5 times the peak at
``rows / 10`` plus 16 MiB (allocator noise). Prints rows per second, the ratio to plain
(target >= 0.5), and both peaks.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa
from sqlalchemy.types import NullType

from bench.common import TARGET, postgresql_database, sqlite_database
from core.config import Settings
from core.db.models import MediaBlob, Observation, ObservationMedia, QualityFlag
from core.dwca import archive
from core.engine import Engine
from core.export import export
from core.worker import InlineDispatcher

PROJECT = "bench"
REGISTRY = f"""
services: {{}}
projects:
  - slug: {PROJECT}
    name: Bench
    description: Synthetic observations of the export benchmark.
    timezone: Europe/Madrid
    location_precision: 3
    obscured_precision: 1
    licence: CC-BY-4.0
    licences: [CC-BY-4.0, CC0-1.0]
    services: {{}}
    dataset:
      title: Export benchmark
      publisher: {{name: Bench Trust}}
      contacts: [{{name: Ana Contact, email: ana@bench.example}}]
      creators: [{{name: Bo Creator}}]
"""
INSERT_CHUNK = 10_000
PLAIN_COLUMNS = ("id", "kind", "observed_at", "lat", "lon", "accuracy_m", "status", "grade", "fields", "licence",
                 "location_privacy")
FLAT_FACTOR = 1.5
FLAT_SLACK_MIB = 16.0
MiB = 1024 * 1024


# -- the rows ---------------------------------------------------------------------------------


def start_engine(folder: Path, database_url: str) -> Engine:
    registry = folder / "registry.yaml"
    registry.write_text(textwrap.dedent(REGISTRY))
    settings = Settings(environment="test", data_dir=folder / "data", database_url=database_url,
                        registry_path=registry, public_url="https://bench.example.org")
    return Engine.start(settings, dispatcher=InlineDispatcher())


def insert_rows(engine: Engine, start: int, stop: int) -> float:
    """Insert observations ``start`` to ``stop`` (exclusive) with a plain bulk insert; seconds taken."""
    first = datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    began = time.perf_counter()
    insert = sa.insert(Observation.__table__)
    for low in range(start, stop, INSERT_CHUNK):
        rows = []
        for i in range(low, min(stop, low + INSERT_CHUNK)):
            privacy = "private" if i % 50 == 0 else "obscured" if i % 12 == 0 else "open"
            rows.append({
                "project": PROJECT, "content_hash": f"{i:064x}", "kind": "generic",
                "observed_at": first - timedelta(minutes=i), "lat": 41.0 + (i % 10_000) / 10_000,
                "lon": 2.0 + (i % 9_973) / 10_000, "accuracy_m": 8.0, "status": "published",
                "fields": {"note": f"a fox crossing the path, number {i}", "count": i % 7,
                           "species": "Vulpes vulpes" if i % 3 else "Meles meles"},
                "licence": "CC0-1.0" if i % 4 == 0 else "CC-BY-4.0", "location_privacy": privacy,
            })
        with engine.db.begin() as conn:
            conn.execute(insert, rows)
    if engine.db.dialect.name == "postgresql":
        with engine.db.begin() as conn:
            conn.exec_driver_sql("ANALYZE observations")
    return time.perf_counter() - began


# -- the paths --------------------------------------------------------------------------------


class Sink:
    """Where every path writes: counts the bytes, keeps none (``csv.writer`` needs ``write``)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: str | bytes) -> int:
        self.size += len(data)
        return len(data)


def plain_query() -> sa.Select[Any]:
    """What the CSV export reads, and no more: the observation's columns as the driver gives them
    (no JSON parsed, no time made), the number of its media and its flags' codes (the sources of
    ``media_count`` and ``flags``, a subquery each)."""
    obs, media, blobs, flags = (Observation.__table__, ObservationMedia.__table__, MediaBlob.__table__,
                                QualityFlag.__table__)
    media_count = (sa.select(sa.func.count()).select_from(media.join(blobs, blobs.c.sha256 == media.c.sha256))
                   .where(media.c.observation_id == obs.c.id).scalar_subquery())
    flag_codes = (sa.select(sa.func.aggregate_strings(flags.c.code, ","))
                  .where(flags.c.observation_id == obs.c.id).scalar_subquery())
    return (sa.select(*(sa.type_coerce(obs.c[name], NullType()).label(name) for name in PLAIN_COLUMNS),
                      media_count.label("media_count"), flag_codes.label("flags"))
            .where(obs.c.project == PROJECT, obs.c.status == "published").order_by(obs.c.id))


def plain(engine: Engine) -> int:
    """The least an export does: a plain SELECT of the CSV's sources, each row written with csv.writer."""
    sink = Sink()
    writer = csv.writer(sink)
    writer.writerow((*PLAIN_COLUMNS, "media_count", "flags"))
    with engine.db.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=INSERT_CHUNK).execute(plain_query())
        for partition in result.partitions():
            writer.writerows(partition)
    return sink.size


def engine_csv(engine: Engine) -> int:
    sink = Sink()
    for chunk in export(engine, engine.registry.project(PROJECT), "csv"):
        sink.write(chunk)
    return sink.size


def engine_dwca(engine: Engine) -> int:
    sink = Sink()
    for chunk in archive(engine, engine.registry.project(PROJECT)):
        sink.write(chunk)
    return sink.size


PATHS: dict[str, Callable[[Engine], int]] = {"plain": plain, "engine CSV": engine_csv, "engine DwC-A": engine_dwca}


# -- measuring --------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _child(engine: Engine, path: str, conn: Any) -> None:
    engine.db.dispose(close=False)  # the parent's connections stay the parent's
    try:
        start_rss = _status_kib("VmRSS")
        began = time.perf_counter()
        size = PATHS[path](engine)
        seconds = time.perf_counter() - began
        peak = _status_kib("VmHWM")
        conn.send((seconds, size, max(0, peak - start_rss) * 1024))
    except BaseException as exc:  # noqa: BLE001 (reported by the parent)
        conn.send(exc)
    finally:
        conn.close()


@dataclass
class Run:
    database: str
    path: str
    rows: int
    seconds: float
    size: int
    peak: int

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def measure(engine: Engine, database: str, path: str, rows: int) -> Run:
    """One path over the rows now in the database, in a forked child (its own memory)."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(engine, path, child))
    process.start()
    child.close()
    answer = parent.recv()
    process.join()
    if isinstance(answer, BaseException):
        raise SystemExit(f"{database} {path}: {type(answer).__name__}: {answer}")
    seconds, size, peak = answer
    run = Run(database, path, rows, seconds, size, peak)
    print(f"  {database} {path:<13} {rows:>9,} rows: {run.rate:>9,.0f} rows/s, {size / MiB:>7.1f} MiB out, "
          f"peak +{peak / MiB:.1f} MiB", file=sys.stderr)
    return run


def bench(database: str, url_context: Any, rows: int, folder: Path) -> list[Run]:
    runs: list[Run] = []
    with url_context as url:
        engine = start_engine(folder, url)
        try:
            small = max(1, rows // 10)
            took = insert_rows(engine, 0, small)
            print(f"  {database}: {small:,} rows inserted in {took:.1f} s", file=sys.stderr)
            runs += [measure(engine, database, path, small) for path in PATHS]
            took = insert_rows(engine, small, rows)
            print(f"  {database}: {rows - small:,} more rows inserted in {took:.1f} s", file=sys.stderr)
            runs += [measure(engine, database, path, rows) for path in PATHS]
        finally:
            engine.close()
    return runs


def report(runs: Iterable[Run], rows: int) -> None:
    by = {(r.database, r.path, r.rows): r for r in runs}
    small = max(1, rows // 10)
    print(f"\nExport of {rows:,} published observations (memory compared with {small:,})")
    print(f"{'database':<11} {'path':<13} {'rows/s':>10} {'ratio':>6} {'target':>7} "
          f"{'peak MiB at N/10':>17} {'peak MiB at N':>14}  memory")
    for database in dict.fromkeys(r.database for r in runs):
        base = by[(database, "plain", rows)]
        for path in PATHS:
            at_n, at_tenth = by[(database, path, rows)], by[(database, path, small)]
            ratio = at_n.rate / base.rate
            verdict = "" if path == "plain" else ("ok" if ratio >= TARGET else "BELOW")
            flat = at_n.peak <= FLAT_FACTOR * at_tenth.peak + FLAT_SLACK_MIB * MiB
            print(f"{database:<11} {path:<13} {at_n.rate:>10,.0f} {ratio:>6.2f} "
                  f"{'' if path == 'plain' else '>= ' + str(TARGET):>7} {at_tenth.peak / MiB:>17.1f} "
                  f"{at_n.peak / MiB:>14.1f}  {'flat' if flat else 'GROWS'} {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="observations (default 1,000,000)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server's database URL: measure there too (a temporary database beside it)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    if not os.path.exists("/proc/self/status"):
        raise SystemExit("this benchmark reads /proc/self/status for memory (Linux)")

    runs: list[Run] = []
    if not args.no_sqlite:
        folder = Path(tempfile.mkdtemp(prefix="obs-bench-export-sqlite-"))
        try:
            runs += bench("sqlite", sqlite_database(folder), args.rows, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.database_url:
        folder = Path(tempfile.mkdtemp(prefix="obs-bench-export-pg-"))
        try:
            runs += bench("postgresql", postgresql_database(args.database_url), args.rows, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if not runs:
        raise SystemExit("nothing measured: drop --no-sqlite or give --database-url")
    report(runs, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
