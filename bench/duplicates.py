"""The near-duplicate photo check as a project grows: our in-memory index against a plain scan.

    python bench/duplicates.py [--sizes 10000,100000] [--checks 50] [--database sqlite|postgresql|both]

For each size the bench writes a project of that many observations with a done species_id
enrichment (one random 64-bit dHash each, as the worker stores it, ended a second apart),
reads it once into the index (as a worker process does at its first check), then times
``--checks`` checks of a photo near a random earlier one, each after one more photo has been
identified (as happens in production):

- *ours*: ``plugins.species_id.hash_index.project_index(...).nearest(...)``, which reads only
  the enrichments that ended since its last read (here before every check: in production
  checks share one read a second), compares in numpy and looks up the few observations within
  the distance;
- *plain*: what the check did before the index: read every done species_id enrichment of the
  project, then the same numpy comparison (``photo.nearest``).

Both must find the same photo; the bench stops if they differ. It prints the median
milliseconds per check, plain / ours, and how long the index's first read of the project took.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core`, `plugins` and `bench` importable
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa

from bench.common import DEFAULT_PG_URL, postgresql_database, sqlite_database
from core.db.models import Enrichment, Observation, utcnow
from core.db.session import make_engine, make_sessionmaker
from plugins.species_id import photo
from plugins.species_id.catalogue import SERVICE
from plugins.species_id import hash_index
from plugins.species_id.hash_index import project_index

PROJECT = "bench"
DISTANCE = 5


def fill(db: sa.Engine, project: str, start: int, n: int, rng: random.Random, ended: datetime) -> None:
    """Observations start+1 .. start+n of ``project``, each with a done species_id enrichment of
    one photo, ended a second apart up to ``ended``."""
    now = utcnow()
    for chunk in range(start, start + n, 10_000):
        ids = range(chunk + 1, min(chunk + 10_000, start + n) + 1)
        with db.begin() as conn:
            conn.execute(sa.insert(Observation.__table__), [
                {"id": i, "project": project, "content_hash": "x", "kind": "generic", "observed_at": now, "lat": 41.0,
                 "lon": 2.0, "fields": {}, "status": "published", "created_at": now, "updated_at": now} for i in ids])
            conn.execute(sa.insert(Enrichment.__table__), [
                {"observation_id": i, "plugin": SERVICE, "status": "done", "attempts": 1, "updated_at": now,
                 "finished_at": ended - timedelta(seconds=start + n - i),
                 "result": {"dhashes": [f"{rng.getrandbits(64):016x}"], "model": "bench"}} for i in ids])


def plain_nearest(sessions: Any, project: str, value: str, before_id: int) -> tuple[int, int] | None:
    """The check as it was: every hash of the project read, then compared."""
    query = (
        sa.select(Enrichment.observation_id, Enrichment.result["dhashes"])
        .join(Observation, Observation.id == Enrichment.observation_id)
        .where(Observation.project == project, Observation.id < before_id, Observation.status != "trashed",
               Enrichment.plugin == SERVICE, Enrichment.status == "done")
    )
    with sessions() as session:
        rows = [(obs_id, h) for obs_id, hashes in session.execute(query) for h in (hashes or [])]
    index, distance = photo.nearest(value, (h for _, h in rows))
    return (rows[index][0], distance) if index >= 0 and distance <= DISTANCE else None


def measure(url: str, sizes: list[int], checks: int) -> list[tuple[int, float, float, float]]:
    hash_index.REFRESH_EVERY_S = 0.0  # every check reads what changed: the index's worst case
    db = make_engine(url)
    sessions = make_sessionmaker(db)
    rng = random.Random(7)
    stored, out = 0, []
    for size in sizes:
        # a project whose photos were identified over the last days, then a worker that starts
        project, first = f"{PROJECT}-{size}", stored
        fill(db, project, stored, size, rng, utcnow() - timedelta(minutes=1))
        stored += size
        began = time.perf_counter()
        project_index(sessions, project)  # the first read of the project, once per process
        first_read = time.perf_counter() - began
        ours, plain = [], []
        for _ in range(checks):
            fill(db, project, stored, 1, rng, utcnow())  # one more photo identified since the last check
            stored += 1
            # a photo near a random earlier one, so that there is something to find
            target = rng.randrange(first + 1, stored)
            with sessions() as session:
                hashes = session.scalar(sa.select(Enrichment.result["dhashes"]).where(
                    Enrichment.observation_id == target))
            value = f"{int(hashes[0], 16) ^ 0b101:016x}"
            began = time.perf_counter()
            match = project_index(sessions, project).nearest(value, stored + 1, DISTANCE)
            ours.append(time.perf_counter() - began)
            began = time.perf_counter()
            expected = plain_nearest(sessions, project, value, stored + 1)
            plain.append(time.perf_counter() - began)
            found = (match.observation_id, match.distance) if match else None
            if found != expected:
                raise SystemExit(f"the index found {found}, the plain scan {expected}")
        out.append((size, first_read * 1000, statistics.median(ours) * 1000, statistics.median(plain) * 1000))
        print(f"  {size:,} photos: first read {out[-1][1]:.0f} ms, then ours {out[-1][2]:.2f} ms a check, "
              f"plain {out[-1][3]:.2f} ms", file=sys.stderr)
    db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="project sizes, in photos (ascending)")
    parser.add_argument("--checks", type=int, default=50, help="checks per size (default 50)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results = []
    for database in databases:
        with tempfile.TemporaryDirectory() as folder:
            db = sqlite_database(Path(folder)) if database == "sqlite" else postgresql_database(args.pg_url)
            with db as url:
                results += [(database, *row) for row in measure(url, sizes, args.checks)]
    print(f"\nNear-duplicate check, one new photo against the project's, median of {args.checks} checks (ms)")
    print(f"{'database':<11} {'photos':>9} {'ours':>8} {'plain scan':>11} {'plain / ours':>13} "
          f"{'ours, first read (once a process)':>34}")
    for database, size, first_read, ours, plain in results:
        print(f"{database:<11} {size:>9,} {ours:>8.2f} {plain:>11.2f} {plain / ours:>12.0f}x {first_read:>34.0f}")


if __name__ == "__main__":
    main()
