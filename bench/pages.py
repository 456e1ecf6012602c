"""The pages' server time at 100,000 observations: the moderation queue's first page and the
public map's full-world marker request, each beside the plain API list of the same rows, in the
same run, on the same database.

    python bench/pages.py [--rows 100000] [--repeat 15] [--database-url postgresql://postgres@127.0.0.1:5432/test]

SQLite always (a file in a temporary folder); PostgreSQL too with ``--database-url`` or
``OBSERVATORY_DATABASE_URL`` (a temporary database beside it, dropped at the end).

The rows are made with a plain bulk insert (``executemany`` of 10,000 rows a statement), spread
over the globe, 90% published, location privacy 85% open, 10% obscured, 5% private, on a
project that shows places to 3 decimals. Each request is sent in process (FastAPI's TestClient:
no network), warmed up three times, then timed ``--repeat`` times; the median is printed:

- *queue*: ``GET /console/projects/bench/observations`` signed in as a moderator (the first page);
- *markers*: ``GET /map/bench/markers?zoom=2`` (no box: the whole world), cells made by the
  database on the places as the public sees them;
- *API list*: ``GET /api/v1/projects/bench/observations?limit=50`` (the baseline: the same
  project's rows as the engine's own API lists them), anonymously for the map's comparison and
  as the moderator for the queue's.

Targets (issue 15): the queue under 300 ms, the markers under 500 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa

from bench.common import postgresql_database, sqlite_database
from core import accounts
from core.config import Settings
from core.db.models import Observation
from core.engine import Engine
from core.worker import InlineDispatcher

PROJECT = "bench"
REGISTRY = f"""
services: {{}}
projects:
  - slug: {PROJECT}
    name: Bench
    timezone: Europe/Madrid
    location_precision: 3
    obscured_precision: 1
    services: {{}}
"""
INSERT_CHUNK = 10_000
PASSWORD = "bench bench bench"
TARGETS_MS = {"queue": 300.0, "markers": 500.0}


def start_engine(folder: Path, database_url: str) -> Engine:
    registry = folder / "registry.yaml"
    registry.write_text(textwrap.dedent(REGISTRY))
    settings = Settings(environment="test", data_dir=folder / "data", database_url=database_url,
                        registry_path=registry, map_tile_url="")
    return Engine.start(settings, dispatcher=InlineDispatcher())


def insert_rows(engine: Engine, rows: int) -> float:
    """``rows`` observations by a plain bulk insert; seconds taken."""
    first = datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    began = time.perf_counter()
    insert = sa.insert(Observation.__table__)
    for low in range(0, rows, INSERT_CHUNK):
        batch = []
        for i in range(low, min(rows, low + INSERT_CHUNK)):
            privacy = "private" if i % 20 == 0 else "obscured" if i % 10 == 1 else "open"
            batch.append({
                "project": PROJECT, "content_hash": f"{i:064x}", "kind": "generic",
                "observed_at": first - timedelta(minutes=i), "lat": -60 + (i * 7919 % 12_000) / 100,
                "lon": -180 + (i * 104_729 % 36_000) / 100, "accuracy_m": 8.0,
                "status": "pending" if i % 10 == 3 else "published",
                "fields": {"note": f"observation {i}", "count": i % 7}, "licence": "CC-BY-4.0",
                "location_privacy": privacy, "created_at": first, "updated_at": first,
            })
        with engine.db.begin() as conn:
            conn.execute(insert, batch)
    if engine.db.dialect.name == "postgresql":
        with engine.db.begin() as conn:
            conn.exec_driver_sql("ANALYZE observations")
    return time.perf_counter() - began


def timed(client: Any, path: str, repeat: int) -> float:
    """The median milliseconds of ``repeat`` GETs of ``path`` (after three to warm up)."""
    for _ in range(3):
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def sign_in(client: Any, engine: Engine) -> bool:
    """Sign a moderator of the project in through the console's form; False without a console."""
    account = accounts.create_account(engine, "Bench Moderator", email="moderator@bench.example")
    accounts.grant(engine, account.id, PROJECT, "moderator")
    accounts.set_password(engine, account.id, PASSWORD)
    page = client.get("/console/sign-in")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    if page.status_code != 200 or not found:
        return False
    answer = client.post("/console/sign-in", data={"email": "moderator@bench.example", "password": PASSWORD,
                                                   "csrf": found.group(1)}, follow_redirects=False)
    return answer.status_code in (302, 303)


def bench(database: str, url_context: Any, rows: int, repeat: int, folder: Path) -> dict[str, float | None]:
    from fastapi.testclient import TestClient

    from core.api.app import create_app

    with url_context as url:
        engine = start_engine(folder, url)
        try:
            took = insert_rows(engine, rows)
            print(f"  {database}: {rows:,} rows inserted in {took:.1f} s", file=sys.stderr)
            app = create_app(engine)
            figures: dict[str, float | None] = {}
            with TestClient(app) as public:
                figures["markers"] = timed(public, f"/map/{PROJECT}/markers?zoom=2", repeat)
                figures["list (public)"] = timed(public, f"/api/v1/projects/{PROJECT}/observations?limit=50", repeat)
            with TestClient(app, raise_server_exceptions=False) as staff:
                if sign_in(staff, engine) and staff.get(f"/console/projects/{PROJECT}/observations").status_code == 200:
                    figures["queue"] = timed(staff, f"/console/projects/{PROJECT}/observations", repeat)
                else:
                    figures["queue"] = None
                figures["list (moderator)"] = timed(staff, f"/api/v1/projects/{PROJECT}/observations?limit=50",
                                                    repeat)
            return figures
        finally:
            engine.close()


def report(database: str, figures: dict[str, float | None], rows: int) -> None:
    print(f"\n{database}, {rows:,} observations (median server time, ms)")
    pairs = (("queue", "list (moderator)"), ("markers", "list (public)"))
    for name, baseline in pairs:
        ours, base = figures.get(name), figures.get(baseline)
        if ours is None:
            print(f"  {name:<10} not available (no console page yet)")
            continue
        assert base is not None
        verdict = "ok" if ours < TARGETS_MS[name] else "OVER TARGET"
        print(f"  {name:<10} {ours:8.1f} ms   {baseline} {base:8.1f} ms   ratio {ours / base:5.2f}   "
              f"target < {TARGETS_MS[name]:.0f} ms: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="observations (default 100,000)")
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per figure (default 15)")
    parser.add_argument("--database-url", default=os.environ.get("OBSERVATORY_DATABASE_URL"),
                        help="a PostgreSQL server's database URL: measure there too")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    runs: list[tuple[str, dict[str, float | None]]] = []
    if not args.no_sqlite:
        folder = Path(tempfile.mkdtemp(prefix="obs-bench-pages-sqlite-"))
        try:
            runs.append(("sqlite", bench("sqlite", sqlite_database(folder), args.rows, args.repeat, folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.database_url and args.database_url.startswith("postgres"):
        folder = Path(tempfile.mkdtemp(prefix="obs-bench-pages-pg-"))
        try:
            runs.append(("postgresql", bench("postgresql", postgresql_database(args.database_url), args.rows,
                                             args.repeat, folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if not runs:
        raise SystemExit("nothing measured: drop --no-sqlite or give --database-url")
    for database, figures in runs:
        report(database, figures, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
