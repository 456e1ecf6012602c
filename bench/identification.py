"""The identification service: community taxon recomputation, and the iNaturalist-compatible list.

    python bench/identification.py [--taxa 100000] [--identifications 50] [--observations 1000]
                                   [--per-page 200] [--rounds 30] [--database sqlite|postgresql|both]
                                   [--database-url URL]

Set-up (not timed), in a temporary database migrated as the tests migrate theirs: a taxon tree of
``--taxa`` taxa (one kingdom, 10 phyla, 100 classes, 500 orders, 2,000 families, 10,000 genera,
species for the rest, with iNaturalist's ancestry), inserted in bulk; one project enabling the
identification service; 60 people; ``--observations`` published observations with a photo and
five identifications each (species of one genus, a genus, a species of another family), and one
observation with ``--identifications`` identifications by different people (species and genera
of one family, two mavericks), each recomputed once by the store so that every category and the
``observation_taxa`` row are in place. Then, in the same run and on the same database:

(a) *recompute*: ``plugins.identification.recompute.recompute`` of the observation with
    ``--identifications`` identifications, as an identification's transaction runs it (the
    observation locked, its current identifications with their taxa's ancestry read, the rank
    levels of every taxon named or above read from the database, ``rules.community_taxon`` and the
    categories decided, the categories and the ``observation_taxa`` row written, committed),
    against the *plain query of the same rows*: one ``SELECT`` of the observation's
    identifications joined to their taxa, fetched.
(b) *list*: ``GET /inat/v1/observations?per_page=200`` from a uvicorn server started as
    ``observatory serve`` starts one (``bench.api:our_app``, rate limit off), with httpx on one
    keep-alive connection, the whole answer read, against the *plain query of the same rows* in
    this process: the ``SELECT`` of the same 200 observations (the list's filters and order) and
    one of their identifications, fetched, with the same SQLAlchemy engine settings.

Each figure is the median of ``--rounds`` after a warm-up. **Prints** milliseconds per operation,
ours beside plain, and the ratio ours / plain; the list's target is at most 2.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.api import server_env, serving  # noqa: E402
from bench.common import DEFAULT_PG_URL, postgresql_database, sqlite_database  # noqa: E402

TARGET = 2.0
PROJECT = "bench"
REGISTRY = f"""
services:
  identification:
    summary: identifications (benchmark)
    settings:
      type: object
      properties:
        expert_weight: {{type: integer, minimum: 1, maximum: 2, default: 1}}
        require_expert: {{type: boolean, default: false}}
projects:
  - slug: {PROJECT}
    name: Bench
    public: true
    auto_publish: true
    timezone: Europe/Madrid
    location_precision: 3
    services: {{identification: {{}}}}
"""
# rank, rank level, children per parent (the species share what is left of --taxa)
LEVELS = (("kingdom", 70, 1), ("phylum", 60, 10), ("class", 50, 10), ("order", 40, 5), ("family", 30, 4),
          ("genus", 20, 5))


def median_ms(run: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# -- set-up ---------------------------------------------------------------------------------------


def make_taxa(db: sa.Engine, total: int) -> dict[str, list[int]]:
    """The tree, inserted in bulk; rank -> ids."""
    from core.db.models import Taxon

    rows: list[dict[str, Any]] = []
    by_rank: dict[str, list[int]] = {}
    paths: dict[int, str | None] = {}
    parents: list[int | None] = [None]
    now = datetime.now(timezone.utc)

    with db.connect() as conn:  # the engine's default taxonomy may already be there
        first = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(Taxon.__table__.c.id), 0))).scalar_one()) + 1

    def add(rank: str, level: float, parent: int | None, name: str) -> int:
        taxon_id = first + len(rows)
        ancestry = None if parent is None else (f"{paths[parent]}/{parent}" if paths[parent] else str(parent))
        paths[taxon_id] = ancestry
        rows.append({"id": taxon_id, "scientific_name": name, "rank": rank, "rank_level": level, "parent_id": parent,
                     "ancestry": ancestry, "source": "bench", "source_id": str(taxon_id), "is_active": True,
                     "created_at": now, "updated_at": now})
        by_rank.setdefault(rank, []).append(taxon_id)
        return taxon_id

    for rank, level, per_parent in LEVELS:
        parents = [add(rank, level, parent, f"{rank.title()} {len(rows) + 1}")
                   for parent in parents for _ in range(per_parent)]
    genera, left = parents, total - len(rows)
    filled = max(1, min(len(genera), left // 8))  # about 8 species a genus, in as many genera as that allows
    for k in range(max(0, left)):
        genus = genera[k % filled]
        add("species", 10, genus, f"Genus{genus} species{k}")
    for row in rows:  # a checklist's ids are its own: keep them apart from the default taxonomy's
        row["source_id"] = f"bench-{row['id']}"
    with db.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(sa.insert(Taxon.__table__), rows[start:start + 5000])
    return by_rank


def make_people(db: sa.Engine, n: int) -> list[int]:
    from core.db.models import Account

    with db.begin() as conn:
        conn.execute(sa.insert(Account.__table__), [{"display_name": f"Bench person {i}", "is_operator": False,
                                                     "created_at": datetime.now(timezone.utc)} for i in range(n)])
        return [row.id for row in conn.execute(sa.select(Account.__table__.c.id).order_by(Account.__table__.c.id))]


def species_of(db: sa.Engine, genus: int, n: int) -> list[int]:
    from core.db.models import Taxon

    table = Taxon.__table__
    with db.connect() as conn:
        return [r.id for r in conn.execute(sa.select(table.c.id).where(table.c.parent_id == genus)
                                           .order_by(table.c.id).limit(n))]


def make_observations(engine: Any, people: list[int], by_rank: dict[str, list[int]], n: int, heavy: int) -> int:
    """``n`` observations with a photo and five identifications, and one with ``heavy``; its id."""
    from core.db.models import MediaBlob, Observation, ObservationMedia
    from plugins.identification.db import identifications

    db, now = engine.db, datetime.now(timezone.utc)
    genera = by_rank["genus"]
    pick = {g: species_of(db, g, 3) for g in genera[:40]}
    pick = {g: s for g, s in pick.items() if len(s) >= 2}
    choices = list(pick.items())
    obs_rows, media_rows, ident_rows = [], [], []
    for k in range(n + 1):
        obs_id = k + 1
        at = now - timedelta(minutes=n - k)
        obs_rows.append({"id": obs_id, "project": PROJECT, "content_hash": f"bench{k}", "contributor_id": people[k % 10],
                         "observed_at": at, "lat": 41.38 + k * 1e-4, "lon": 2.17, "accuracy_m": 10.0,
                         "fields": {"note": f"bench {k}"}, "status": "published", "grade": "needs_id",
                         "location_privacy": ("open", "open", "open", "obscured", "private")[k % 5],
                         "created_at": at, "updated_at": at, "comments_locked": False})
        media_rows.append({"observation_id": obs_id, "sha256": "0" * 64, "filename": None, "position": 0})
        genus, species = choices[k % len(choices)]
        other_genus, other = choices[(k + 7) % len(choices)]
        if k == n:  # the heavy one: species and the genus of one family, two mavericks
            plan = [species[j % 2] if j % 5 else genus for j in range(heavy - 2)] + [other[0], other_genus]
        else:
            plan = [species[0], species[0], genus, species[1], other[0]]
        for j, taxon in enumerate(plan):
            ident_rows.append({"uuid": f"b{obs_id}-{j}", "observation_id": obs_id, "project": PROJECT,
                               "account_id": people[(k + j) % len(people)], "taxon_id": taxon, "current": True,
                               "withdrawn": False, "vision": False, "own": j == 0, "expert": False,
                               "created_at": at + timedelta(seconds=j), "updated_at": at + timedelta(seconds=j)})
    with db.begin() as conn:
        conn.execute(sa.insert(MediaBlob.__table__), [{"sha256": "0" * 64, "size": 1000, "content_type": "image/jpeg",
                                                       "width": 1600, "height": 1200, "created_at": now}])
        conn.execute(sa.insert(Observation.__table__), obs_rows)
        conn.execute(sa.insert(ObservationMedia.__table__), media_rows)
        for start in range(0, len(ident_rows), 5000):
            conn.execute(sa.insert(identifications), ident_rows[start:start + 5000])
        if db.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("observations", "observation_media", "identifications", "taxa"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))")
    for obs_id in range(1, n + 2):
        recompute_once(engine, obs_id)
    with db.begin() as conn:  # statistics, as autovacuum (or a DBA) keeps them on a live database
        conn.exec_driver_sql("ANALYZE")
    return n + 1


def recompute_once(engine: Any, obs_id: int) -> None:
    from core.db.session import transaction
    from plugins.identification.recompute import lock_observation, recompute

    with transaction(engine.sessions) as session:
        obs = lock_observation(session, obs_id)
        recompute(session, obs, engine.registry.project(PROJECT))


# -- the two measures -----------------------------------------------------------------------------


def plain_identifications(engine: Any, obs_id: int) -> Callable[[], Any]:
    from core.db.models import Taxon
    from plugins.identification.db import identifications

    taxa = Taxon.__table__
    query = (sa.select(identifications, taxa.c.ancestry, taxa.c.rank_level)
             .join(taxa, taxa.c.id == identifications.c.taxon_id)
             .where(identifications.c.observation_id == obs_id, identifications.c.current.is_(True)))

    def run() -> Any:
        with engine.db.connect() as conn:
            return conn.execute(query).all()

    return run


def plain_list(engine: Any, per_page: int, *, with_taxa: bool = True) -> Callable[[], Any]:
    """The rows the list is made of, plainly: the page of observations with their taxon, and their
    identifications with theirs (``with_taxa``: else the two tables' rows alone)."""
    from core.db.models import Observation, Taxon
    from plugins.identification.db import identifications, observation_taxa

    obs, taxa = Observation.__table__, Taxon.__table__
    page = (sa.select(obs, observation_taxa, taxa)
            .outerjoin(observation_taxa, observation_taxa.c.observation_id == obs.c.id)
            .outerjoin(taxa, taxa.c.id == observation_taxa.c.taxon_id)
            .where(obs.c.status == "published", obs.c.project.in_([PROJECT]))
            .order_by(obs.c.created_at.desc(), obs.c.id.desc()).limit(per_page))
    idents = (sa.select(identifications, taxa).join(taxa, taxa.c.id == identifications.c.taxon_id)
              .where(identifications.c.observation_id.in_(sa.bindparam("ids", expanding=True))))

    def run() -> Any:
        with engine.db.connect() as conn:
            rows = conn.execute(page if with_taxa else bare).all()
            return rows, conn.execute(idents if with_taxa else bare_idents, {"ids": [r.id for r in rows]}).all()

    bare = (sa.select(obs).where(obs.c.status == "published", obs.c.project.in_([PROJECT]))
            .order_by(obs.c.created_at.desc(), obs.c.id.desc()).limit(per_page))
    bare_idents = sa.select(identifications).where(identifications.c.observation_id.in_(
        sa.bindparam("ids", expanding=True)))
    return run


def bench(database: str, args: argparse.Namespace) -> dict[str, float]:
    from core.config import Settings
    from core.dispatch import InlineDispatcher
    from core.engine import Engine

    folder = Path(tempfile.mkdtemp(prefix="obs-identification-"))
    try:
        (folder / "registry.yaml").write_text(textwrap.dedent(REGISTRY))
        databases = sqlite_database(folder) if database == "sqlite" else postgresql_database(args.database_url)
        with databases as url:
            settings = Settings(environment="test", data_dir=folder / "data", database_url=url,
                                registry_path=folder / "registry.yaml", broker_url="filesystem://")
            engine = Engine.start(settings, dispatcher=InlineDispatcher())
            try:
                started = time.perf_counter()
                by_rank = make_taxa(engine.db, args.taxa)
                people = make_people(engine.db, 60)
                heavy = make_observations(engine, people, by_rank, args.observations, args.identifications)
                print(f"  {database}: {sum(map(len, by_rank.values()))} taxa, {args.observations + 1} observations "
                      f"set up in {time.perf_counter() - started:.0f} s", flush=True)
                figures = measure(engine, url, folder, heavy, args)
            finally:
                engine.close()
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(engine: Any, url: str, folder: Path, heavy: int, args: argparse.Namespace) -> dict[str, float]:
    plain_rows = plain_identifications(engine, heavy)
    if len(plain_rows()) != args.identifications:
        raise SystemExit(f"the heavy observation has {len(plain_rows())} identifications, not {args.identifications}")
    ours_recompute = lambda: recompute_once(engine, heavy)  # noqa: E731
    for run in (ours_recompute, plain_rows):
        run()
    figures = {"recompute": median_ms(ours_recompute, args.rounds), "recompute_plain": median_ms(plain_rows, args.rounds)}
    plain_page = plain_list(engine, args.per_page)
    with serving("our_app", server_env(url, folder), folder / "server.log") as (base, _pid), \
            httpx.Client(base_url=base, timeout=120) as http:
        def ours_list() -> bytes:
            response = http.get("/inat/v1/observations", params={"per_page": args.per_page})
            if response.status_code != 200:
                raise SystemExit(f"/inat/v1/observations answered {response.status_code}: {response.text[:1000]}")
            return response.content

        body = ours_list()
        rows, idents = plain_page()
        import json

        results = json.loads(body)["results"]
        if [r["id"] for r in results] != [r.id for r in rows] or \
                sum(len(r["identifications"]) for r in results) != len(idents):
            raise SystemExit("the list and the plain query did not read the same rows")
        for _ in range(3):
            ours_list()
            plain_page()
        figures["list"] = median_ms(ours_list, args.rounds)
        figures["list_plain"] = median_ms(plain_page, args.rounds)
        figures["list_bare"] = median_ms(plain_list(engine, args.per_page, with_taxa=False), args.rounds)
        figures["list_kb"] = len(body) / 1024
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taxa", type=int, default=100_000, help="taxa in the tree (default 100000)")
    parser.add_argument("--identifications", type=int, default=50, help="of the recomputed observation (default 50)")
    parser.add_argument("--observations", type=int, default=1000, help="listed observations (default 1000)")
    parser.add_argument("--per-page", type=int, default=200, help="the list's page (default 200, iNaturalist's most)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server (default {DEFAULT_PG_URL})")
    args = parser.parse_args(argv)
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print(f"{args.taxa} taxa; recompute of an observation with {args.identifications} identifications; "
          f"/inat/v1/observations?per_page={args.per_page} with identifications; median of {args.rounds} rounds")
    results = [(database, bench(database, args)) for database in databases]
    print(f"{'database':<11} {'what':<10} {'ours ms':>9} {'plain ms':>9} {'ratio':>7} {'target':>7}")
    short = False
    for database, f in results:
        print(f"{database:<11} {'recompute':<10} {f['recompute']:>9.2f} {f['recompute_plain']:>9.2f} "
              f"{f['recompute'] / f['recompute_plain']:>6.1f}x {'':>7}")
        ratio = f["list"] / f["list_plain"]
        short |= ratio > TARGET
        print(f"{database:<11} {'list':<10} {f['list']:>9.2f} {f['list_plain']:>9.2f} {ratio:>6.1f}x "
              f"{'<= ' + str(TARGET):>7}   ({f['list_kb']:.0f} KB of JSON; the two tables alone, without "
              f"the taxa: {f['list_bare']:.2f} ms, {f['list'] / f['list_bare']:.1f}x)")
    return 1 if short else 0


if __name__ == "__main__":
    raise SystemExit(main())
