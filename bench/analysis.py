"""Analysis frames: loading a project into the observations frame, locally against
``pandas.read_sql`` of the same table in the same run, remotely over the API, and the
participation metrics over a large frame.

    python bench/analysis.py                  # quick: 200,000 local, 20,000 remote, 200,000 x 10,000
    python bench/analysis.py --full           # the note's sizes: 1,000,000, 100,000, 1,000,000 x 50,000
    python bench/analysis.py --n 500000 --remote-n 0 --database-url postgresql://postgres@127.0.0.1:5432/test

The rows are made with a plain bulk insert (``executemany`` of 10,000 rows a statement), not
through ``submit``: this measures reading, not ingest. They look like a project's: published,
kind ``generic`` with three fields, by 1,000 contributors, licences CC BY and CC0, 90% open
places, 8% obscured, 2% private, one in twenty with a medium. SQLite (a file in a temporary
folder) unless ``--database-url`` names a PostgreSQL server (a temporary database is made
beside it and dropped at the end).

- *local*: ``Observatory.local(engine=..., cache=False).observations(project)``: the frame of
  the contract (every column typed, taxa, fields, media and comment counts, flags), as staff see
  it, against ``pandas.read_sql`` of the text ``SELECT * FROM observations WHERE project = ...`` on
  the same SQLAlchemy engine (the driver's values as they come: JSON and, on SQLite, times left as
  text, nothing typed, no media or flags): rows per second of each and the ratio (target >= 0.5).
  The median of ``--rounds``.
- *remote*: ``Observatory(url, cache=False).observations(project)`` over a live uvicorn server
  (``tests.api.serve_app``) on the same database, anonymous (the public's view of a public
  project): rows per second.
- *participation*: ``tests/plugins/analysis/planted.big_frame`` (``--participation-n``
  observations by ``--contributors`` contributors over two years), then
  ``participation.contributor_metrics``, ``participation.project_metrics`` and
  ``profiles.profiles_of``: seconds of each, then the same again under ``tracemalloc`` for the
  peak of memory allocated (numpy and pandas buffers included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
import tracemalloc
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.common import TARGET, postgresql_database, sqlite_database  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db.models import Account, MediaBlob, Observation, ObservationMedia  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.worker import InlineDispatcher  # noqa: E402

LOCAL, REMOTE = "bench", "bench_remote"
REGISTRY = f"""
services: {{}}
projects:
  - slug: {LOCAL}
    name: Bench
    public: true
    timezone: Europe/Madrid
    location_precision: 3
    obscured_precision: 1
    licences: [CC-BY-4.0, CC0-1.0]
    services: {{}}
  - slug: {REMOTE}
    name: Bench remote
    public: true
    timezone: Europe/Madrid
    location_precision: 3
    obscured_precision: 1
    licences: [CC-BY-4.0, CC0-1.0]
    services: {{}}
"""
INSERT_CHUNK = 10_000
CONTRIBUTORS = 1_000
QUICK = {"n": 200_000, "remote_n": 20_000, "participation_n": 200_000, "contributors": 10_000}
FULL = {"n": 1_000_000, "remote_n": 100_000, "participation_n": 1_000_000, "contributors": 50_000}
MiB = 1024 * 1024


def start_engine(folder: Path, database_url: str) -> tuple[Engine, dict[str, str]]:
    """An engine on ``database_url`` with the bench projects, and the environment that starts a
    server on the same database."""
    registry = folder / "registry.yaml"
    registry.write_text(textwrap.dedent(REGISTRY))
    env = {"OBSERVATORY_ENVIRONMENT": "test", "OBSERVATORY_DATA_DIR": str(folder / "data"),
           "OBSERVATORY_DATABASE_URL": database_url, "OBSERVATORY_REGISTRY_PATH": str(registry),
           "OBSERVATORY_RATE_LIMIT_PER_MINUTE": "100000000", "OBSERVATORY_SERVE_DISPATCHER": "inline"}
    settings = Settings(environment="test", data_dir=folder / "data", database_url=database_url,
                        registry_path=registry, rate_limit_per_minute=100_000_000)
    return Engine.start(settings, dispatcher=InlineDispatcher()), env


def insert_rows(engine: Engine, project: str, n: int) -> float:
    """Insert ``n`` published observations of ``project`` with a plain bulk insert; seconds taken."""
    first = datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    began = time.perf_counter()
    with engine.db.begin() as conn:
        if not conn.execute(sa.select(sa.func.count()).select_from(Account.__table__)).scalar():
            conn.execute(sa.insert(Account.__table__), [{"display_name": f"Person {i}", "email": f"p{i}@bench.example"}
                                                        for i in range(1, CONTRIBUTORS + 1)])
            conn.execute(sa.insert(MediaBlob.__table__), [{"sha256": "0" * 64, "content_type": "image/jpeg",
                                                           "size": 1000, "width": 10, "height": 10}])
        base = conn.execute(sa.select(sa.func.coalesce(sa.func.max(Observation.__table__.c.id), 0))).scalar()
    for low in range(0, n, INSERT_CHUNK):
        rows, media = [], []
        for i in range(low, min(n, low + INSERT_CHUNK)):
            privacy = "private" if i % 50 == 0 else "obscured" if i % 12 == 0 else "open"
            rows.append({
                "id": base + i + 1, "project": project, "content_hash": f"{project}{i:058x}", "kind": "generic",
                "contributor_id": 1 + (i * 7919) % CONTRIBUTORS,
                "observed_at": first - timedelta(minutes=i), "lat": 41.0 + (i % 10_000) / 10_000,
                "lon": 2.0 + (i % 9_973) / 10_000, "accuracy_m": 8.0, "status": "published",
                "fields": {"note": f"a fox crossing the path, number {i}", "count": i % 7,
                           "species": "Vulpes vulpes" if i % 3 else "Meles meles"},
                "licence": "CC0-1.0" if i % 4 == 0 else "CC-BY-4.0", "location_privacy": privacy,
            })
            if i % 20 == 0:
                media.append({"observation_id": base + i + 1, "sha256": "0" * 64, "position": 0})
        with engine.db.begin() as conn:
            conn.execute(sa.insert(Observation.__table__), rows)
            if media:
                conn.execute(sa.insert(ObservationMedia.__table__), media)
    if engine.db.dialect.name == "postgresql":
        with engine.db.begin() as conn:
            conn.exec_driver_sql("ANALYZE observations")
            conn.exec_driver_sql("ANALYZE observation_media")
    return time.perf_counter() - began


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = run()
    return time.perf_counter() - began, result


def bench_local(engine: Engine, n: int, rounds: int) -> dict[str, float]:
    """Rows per second of the observations frame and of pandas.read_sql, the medians of ``rounds``."""
    from plugins.analysis import Observatory

    reader = Observatory.local(engine=engine, cache=False)
    plain = sa.text("SELECT * FROM observations WHERE project = :project").bindparams(project=LOCAL)
    ours, theirs = [], []
    for _ in range(rounds):
        seconds, frame = timed(lambda: pd.read_sql(plain, engine.db))
        assert len(frame) == n, (len(frame), n)
        theirs.append(n / seconds)
        del frame
        seconds, frame = timed(lambda: reader.observations(LOCAL))
        assert len(frame) == n and int(frame["n_media"].sum()) == (n + 19) // 20
        ours.append(n / seconds)
        del frame
    return {"ours": statistics.median(ours), "read_sql": statistics.median(theirs)}


def bench_remote(env: dict[str, str], folder: Path, n: int) -> float:
    """Rows per second of the observations frame over a live server's API (anonymous)."""
    from plugins.analysis import Observatory
    from tests.support.serving import api_server

    with api_server(folder, ROOT, env) as base:
        reader = Observatory(base, cache=False, progress=False)
        seconds, frame = timed(lambda: reader.observations(REMOTE))
    assert len(frame) == n, (len(frame), n)
    return n / seconds


def bench_participation(n: int, contributors: int) -> list[tuple[str, float, float]]:
    """(step, seconds, peak MiB) of building the frame and each participation step."""
    from plugins.analysis.participation import contributor_metrics, project_metrics
    from plugins.analysis.profiles import profiles_of
    from tests.plugins.analysis.planted import big_frame

    timezone = "Europe/Madrid"
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("contributor_metrics", lambda f: contributor_metrics(f, timezone)),
        ("project_metrics", lambda f: project_metrics(f, timezone)),
        ("profiles_of", lambda f: profiles_of(f, timezone)),
    ]
    out = []
    seconds, frame = timed(lambda: big_frame(n, contributors))
    out.append(("big_frame (making the data)", seconds, float("nan")))
    for name, step in steps:
        seconds, _ = timed(lambda: step(frame))
        tracemalloc.start()
        step(frame)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.append((name, seconds, peak / MiB))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the note's sizes (1,000,000 / 100,000 / 1,000,000 x 50,000)")
    parser.add_argument("--n", type=int, help="observations read locally (0: skip)")
    parser.add_argument("--remote-n", type=int, help="observations read over the API (0: skip)")
    parser.add_argument("--participation-n", type=int, help="observations of the participation frame (0: skip)")
    parser.add_argument("--contributors", type=int, help="contributors of the participation frame")
    parser.add_argument("--rounds", type=int, default=1, help="local reads per path (the median is shown)")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server to make a temporary database beside")
    args = parser.parse_args(argv)
    sizes = dict(FULL if args.full else QUICK)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    failed = False
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-analysis-")))
        url = stack.enter_context(postgresql_database(args.database_url) if args.database_url
                                  else sqlite_database(folder))
        engine, env = start_engine(folder, url)
        print(f"database: {engine.db.dialect.name}")
        if sizes["n"]:
            print(f"inserting {sizes['n']:,} observations ... {insert_rows(engine, LOCAL, sizes['n']):.1f} s")
            local = bench_local(engine, sizes["n"], args.rounds)
            ratio = local["ours"] / local["read_sql"]
            failed |= ratio < TARGET
            print(f"\nlocal, {sizes['n']:,} rows: observations frame {local['ours']:,.0f} rows/s, "
                  f"pandas.read_sql {local['read_sql']:,.0f} rows/s, ratio {ratio:.2f} (target >= {TARGET})")
        if sizes["remote_n"]:
            print(f"\ninserting {sizes['remote_n']:,} observations ... "
                  f"{insert_rows(engine, REMOTE, sizes['remote_n']):.1f} s")
            rate = bench_remote(env, folder, sizes["remote_n"])
            print(f"remote, {sizes['remote_n']:,} rows over the API (anonymous): {rate:,.0f} rows/s")
        engine.db.dispose()
    if sizes["participation_n"]:
        print(f"\nparticipation, {sizes['participation_n']:,} observations x {sizes['contributors']:,} contributors:")
        for name, seconds, peak in bench_participation(sizes["participation_n"], sizes["contributors"]):
            memory = "" if peak != peak else f", peak {peak:,.1f} MiB allocated"
            print(f"  {name:<28} {seconds:6.2f} s{memory}")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OBSERVATORY_ENVIRONMENT", "test")
    raise SystemExit(main())
