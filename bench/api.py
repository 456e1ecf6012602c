"""HTTP API latency and throughput: our API against a bare FastAPI app on the same table.

    python bench/api.py [--database sqlite|postgresql|both] [--seconds 10] [--concurrency 16]
                        [--rounds 1] [--pg-url URL] [--profile] [--py-spy PATH]

Two servers, each uvicorn on 127.0.0.1 in a subprocess, one at a time, on the same database:

- *ours*: ``core.api.app.create_app`` on an engine started as ``observatory serve`` starts it
  (``CeleryDispatcher`` on the file-system broker), rate limit off. The project enables one
  enriching plugin (``bench/noop_plugin.py``), as ``bench/ingest.py`` does, so a create also
  stores an enrichment row and queues a task.
- *bare*: a FastAPI app with one route that inserts the posted observation into the same
  ``observations`` table with a plain SQLAlchemy Core insert, and one that selects a row by id,
  on an engine made by the same ``core.db.session.make_engine``.

For each server: a warm-up, then ``create`` (POST .../projects/{slug}/observations, JSON, a
distinct client_id each) for ``--seconds``, then ``get`` (GET .../observations/{id} of the rows
just created) for ``--seconds``, by ``--concurrency`` httpx async clients in this process
(they share the machine with the server). Tables are emptied before each server's turn. Every
answer must be 201 (create) or 200 (get); any other is counted as an error and makes the run
fail. The table shows requests/s, p50 and p99 latency, ours and bare, and the ratio of
throughputs (target >= 0.5), the median over ``--rounds``.

The server CPU time per request (from /proc) is printed too: the clients, the server and the
database share the machine's cores, and CPU per request does not depend on who is waiting on
whom. A short separate pass counts each server's database work per request (pool check-outs,
transactions, statements), printed under the table. When a ratio is under the target, or with
``--profile``, our server is sampled again with py-spy (``pip install py-spy``; all threads,
so the thread pool's work too) under the same load, and the share of samples per stage and the
top functions are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextvars
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from tests.support.serving import ServerDidNotStart, free_port, wait_until_healthy  # noqa: E402
from bench.common import DEFAULT_PG_URL, PROJECT, REGISTRY, TARGET, postgresql_database, sqlite_database  # noqa: E402

HOST = "127.0.0.1"
OURS = {"create": "/api/v1/projects/{slug}/observations", "get": "/api/v1/observations/{id}"}
BARE = {"create": "/bare/projects/{slug}/observations", "get": "/bare/observations/{id}"}
STATS_ENV = "OBSERVATORY_BENCH_STATS"  # where a server writes its database work per request


# -- the servers (uvicorn factories, configured from OBSERVATORY_* in the environment) --------

_route: contextvars.ContextVar[str] = contextvars.ContextVar("bench_route", default="other")


def _count_database_work(app: Any, db: sa.Engine) -> None:
    """Count requests and database work per route label; write them to $STATS_ENV at exit."""
    target = os.environ.get(STATS_ENV)
    if not target:
        return
    counts: dict[str, Counter[str]] = {}

    def add(key: str) -> None:
        counts.setdefault(_route.get(), Counter())[key] += 1

    sa.event.listen(db.pool, "checkout", lambda *a: add("checkout"))
    sa.event.listen(db, "begin", lambda *a: add("transaction"))
    sa.event.listen(db, "before_cursor_execute", lambda *a: add("statement"))

    class Label:  # plain ASGI (cheap): which route the database work that follows is for
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                path = scope["path"]
                _route.set("create" if scope["method"] == "POST" else "get" if "/observations/" in path else "other")
                add("request")  # the context is copied into the thread pool: the label follows
            await self.inner(scope, receive, send)

    app.add_middleware(Label)

    def write() -> None:
        Path(target).write_text(json.dumps({k: dict(v) for k, v in counts.items()}))

    atexit.register(write)


def our_app() -> Any:
    from core.api.app import create_app
    from core.config import get_settings
    from core.engine import Engine
    from core.worker import CeleryDispatcher

    engine = Engine.start(get_settings(), dispatcher=CeleryDispatcher())
    app = create_app(engine)
    _count_database_work(app, engine.db)
    return app


def bare_app() -> Any:
    import hashlib
    from datetime import datetime

    from fastapi import Body, FastAPI, HTTPException

    from core.config import get_settings
    from core.db.models import Observation
    from core.db.session import make_engine

    db = make_engine(get_settings().database_url)
    table = Observation.__table__
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/bare/projects/{slug}/observations", status_code=201)
    def create(slug: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        location = body["location"]
        row = {
            "project": slug,
            "client_id": body.get("client_id"),
            "content_hash": hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
            "kind": body.get("kind"),
            "observed_at": datetime.fromisoformat(body["observed_at"]),
            "lat": location["lat"],
            "lon": location["lon"],
            "accuracy_m": location.get("accuracy_m"),
            "fields": body.get("fields", {}),
            "status": "pending",
        }
        with db.begin() as conn:
            obs_id = conn.execute(sa.insert(table).values(row)).inserted_primary_key[0]
        return {"id": obs_id, **row}

    @app.get("/bare/observations/{obs_id}")
    def get(obs_id: int) -> dict[str, Any]:
        with db.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == obs_id)).mappings().first()
        if row is None:
            raise HTTPException(404)
        return dict(row)

    _count_database_work(app, db)
    return app


# -- databases and processes -------------------------------------------------------------------




@contextmanager
def serving(factory: str, env: dict[str, str], log: Path, wrap: list[str] | None = None) -> Iterator[tuple[str, int]]:
    """uvicorn serving ``bench.api:<factory>`` on 127.0.0.1; yields its base URL and process id."""

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", f"bench.api:{factory}", "--host", HOST, "--port", str(port),
            "--log-level", "warning", "--no-access-log"]
    with log.open("a") as out:
        process = subprocess.Popen((wrap or []) + argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        try:
            wait_until_healthy(base, process)
        except ServerDidNotStart as exc:
            raise SystemExit(f"the {factory} server: {exc}:\n{log.read_text()[-3000:]}") from None
        yield base, process.pid
    finally:
        os.killpg(process.pid, signal.SIGINT)  # uvicorn (and py-spy around it) stop cleanly on SIGINT
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# -- the load ------------------------------------------------------------------------------------


@dataclass
class Phase:
    count: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    ids: list[int] = field(default_factory=list)
    server_cpu_s: float | None = None  # CPU time the server process used in this phase (Linux)
    client_cpu_s: float = 0.0  # CPU time this process (the httpx clients) used in this phase

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s / self.count * 1000 if self.server_cpu_s is not None and self.count else float("nan")

    @property
    def client_ms_per_request(self) -> float:
        return self.client_cpu_s / self.count * 1000 if self.count else float("nan")

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of process ``pid`` and its threads so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def draft(tag: str, n: int) -> dict[str, Any]:
    return {
        "client_id": f"{tag}-{n}",
        "observed_at": f"2026-05-01T{n // 60 % 24:02d}:{n % 60:02d}:00+02:00",
        "location": {"lat": 41.0 + (n % 1000) / 1000, "lon": 2.0 + (n % 997) / 1000, "accuracy_m": 8},
        "kind": "generic",
        "fields": {"note": f"a fox crossing the path, number {n}", "count": n % 7},
    }


async def drive(base: str, headers: dict[str, str], concurrency: int, seconds: float,
                request: Callable[[int], tuple[str, str, Any, int]], max_requests: int = 5_000_000,
                pid: int | None = None) -> Phase:
    """``concurrency`` clients send ``request(i)`` until the deadline; latencies of those answered."""
    import httpx

    phase = Phase()
    limits = httpx.Limits(max_connections=concurrency, keepalive_expiry=1.0)
    counter = iter(range(max_requests))
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60.0) as client:
        cpu_before = cpu_seconds(pid)
        client_before = time.process_time()
        began = time.perf_counter()
        deadline = began + seconds

        async def worker() -> None:
            for i in counter:
                if time.perf_counter() >= deadline:
                    return
                method, url, body, expected = request(i)
                start = time.perf_counter()
                try:
                    response = await client.request(method, url, json=body)
                except httpx.HTTPError as exc:
                    phase.errors.append(f"{method} {url}: {type(exc).__name__} {exc}")
                    continue
                took = time.perf_counter() - start
                if response.status_code != expected:
                    phase.errors.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
                    continue
                phase.count += 1
                phase.latencies.append(took)
                if method == "POST":
                    phase.ids.append(response.json()["id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        phase.elapsed = time.perf_counter() - began
        phase.client_cpu_s = time.process_time() - client_before
        cpu_after = cpu_seconds(pid)
        if cpu_before is not None and cpu_after is not None:
            phase.server_cpu_s = cpu_after - cpu_before
    return phase


def run_load(base: str, routes: dict[str, str], headers: dict[str, str], tag: str, concurrency: int,
             seconds: float, pid: int | None = None) -> dict[str, Phase]:
    """``create`` for ``seconds``, then ``get`` of what was created for ``seconds``."""
    create_url = routes["create"].format(slug=PROJECT)

    def create(i: int) -> tuple[str, str, Any, int]:
        return "POST", create_url, draft(tag, i), 201

    async def both() -> dict[str, Phase]:
        created = await drive(base, headers, concurrency, seconds, create, pid=pid)
        ids = created.ids or [1]

        def get(i: int) -> tuple[str, str, Any, int]:
            return "GET", routes["get"].format(id=ids[(i * 7919) % len(ids)]), None, 200

        return {"create": created, "get": await drive(base, headers, concurrency, seconds, get, pid=pid)}

    return asyncio.run(both())


# -- one database ---------------------------------------------------------------------------------


@dataclass
class Figures:
    database: str
    phases: dict[tuple[str, str], list[Phase]] = field(default_factory=dict)  # (server, op) -> rounds
    work: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (server, op) -> per request

    def median(self, server: str, op: str, what: Callable[[Phase], float]) -> float:
        return statistics.median(what(p) for p in self.phases[(server, op)])

    def ratio(self, op: str) -> float:
        return self.median("ours", op, lambda p: p.rate) / self.median("bare", op, lambda p: p.rate)


def server_env(url: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    env.update({
        "OBSERVATORY_DATABASE_URL": url,
        "OBSERVATORY_DATA_DIR": str(folder / "data"),
        "OBSERVATORY_REGISTRY_PATH": str(folder / "registry.yaml"),
        "OBSERVATORY_PLUGIN_MODULES": "noop=bench.noop_plugin",
        "OBSERVATORY_BROKER_URL": "filesystem://",
        "OBSERVATORY_RATE_LIMIT_PER_MINUTE": "0",  # 600 a minute per caller would refuse most of the load
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    return env


def empty_observations(db: sa.Engine, folder: Path) -> None:
    """Empty the tables the load writes (not the tokens), and the broker's queue."""
    with db.begin() as conn:
        for table in ("quality_flags", "observation_media", "enrichments", "audit_log", "observations"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    for message in (folder / "data" / "broker" / "in").glob("*.msg"):
        message.unlink()


def turn(server: str, env: dict[str, str], folder: Path, db: sa.Engine, headers: dict[str, str], tag: str,
         args: argparse.Namespace, figures: Figures) -> None:
    """Start one server, warm it up, measure create then get, and stop it."""
    routes = OURS if server == "ours" else BARE
    with serving("our_app" if server == "ours" else "bare_app", env, folder / f"{server}.log") as (base, pid):
        warm = run_load(base, routes, headers, f"{tag}-warm-{server}", args.concurrency, min(2.0, args.seconds / 4))
        empty_observations(db, folder)
        phases = run_load(base, routes, headers, f"{tag}-{server}", args.concurrency, args.seconds, pid=pid)
    for op, phase in phases.items():
        errors = warm[op].errors + phase.errors
        if errors:
            raise SystemExit(f"{server} {op}: {len(errors)} errors, the first: {errors[:3]}")
        figures.phases.setdefault((server, op), []).append(phase)
        print(f"  {figures.database} {tag} {server:<4} {op:<6} {phase.rate:8,.0f}/s  p50 {phase.percentile(0.5):6.1f} ms"
              f"  p99 {phase.percentile(0.99):6.1f} ms  CPU per request: server {phase.cpu_ms_per_request:5.2f} ms,"
              f" clients {phase.client_ms_per_request:5.2f} ms  ({phase.count} requests)", file=sys.stderr)


def count_database_work(server: str, env: dict[str, str], folder: Path, headers: dict[str, str],
                        args: argparse.Namespace, figures: Figures) -> None:
    """A short pass apart, with the server counting its database work (kept out of the timed turns)."""
    stats = folder / f"stats-{server}.json"
    routes = OURS if server == "ours" else BARE
    with serving("our_app" if server == "ours" else "bare_app", {**env, STATS_ENV: str(stats)},
                 folder / f"{server}.log") as (base, _):
        run_load(base, routes, headers, f"count-{server}", args.concurrency, 1.0)
    counts = json.loads(stats.read_text()) if stats.exists() else {}
    for op in ("create", "get"):
        c = counts.get(op, {})
        if c.get("request"):
            figures.work[(server, op)] = {k: c.get(k, 0) / c["request"] for k in ("checkout", "transaction", "statement")}


def bench(database: str, args: argparse.Namespace) -> Figures:
    from core.config import Settings
    from core.engine import Engine
    from core.tokens import create_token
    from core.worker import CeleryDispatcher

    folder = Path(tempfile.mkdtemp(prefix=f"obs-bench-api-{database}-"))
    figures = Figures(database)
    try:
        (folder / "registry.yaml").write_text(textwrap.dedent(REGISTRY))
        context = sqlite_database(folder) if database == "sqlite" else postgresql_database(args.pg_url)
        with context as url:
            settings = Settings(environment="test", data_dir=folder / "data", database_url=url, broker_url="filesystem://",
                                registry_path=folder / "registry.yaml", plugin_modules="noop=bench.noop_plugin")
            engine = Engine.start(settings, dispatcher=CeleryDispatcher())
            try:
                token = create_token(engine, "contributor", PROJECT, "bench").token
                headers = {"Authorization": f"Bearer {token}"}
                env = server_env(url, folder)
                for r in range(args.rounds):
                    order = ("ours", "bare") if r % 2 == 0 else ("bare", "ours")
                    for server in order:
                        empty_observations(engine.db, folder)
                        turn(server, env, folder, engine.db, headers, f"r{r + 1}", args, figures)
                for server in ("ours", "bare"):
                    empty_observations(engine.db, folder)
                    count_database_work(server, env, folder, headers, args, figures)
                below = any(figures.ratio(op) < TARGET for op in ("create", "get"))
                if args.profile or below:
                    profile(database, env, folder, engine.db, headers, args)
            finally:
                engine.close()
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- profile ------------------------------------------------------------------------------------------

# (label, a frame of this function in the sample's stack): a request's stages, outermost first
STAGES = [
    ("caller: get_principal (token look-up, rate limit)", "get_principal (core/api/deps.py"),
    ("  authenticate: one transaction", "authenticate (core/tokens.py"),
    ("create: read and parse the body", "_parse_create (core/api/routes/observations.py"),
    ("create: lifecycle.submit", "submit (core/lifecycle.py"),
    ("  validate (pydantic, JSON Schema, plugins)", "validate (core/lifecycle.py"),
    ("  client_id look-up: one transaction", "_lookup_retry (core/lifecycle.py"),
    ("  queue: _after_commit (Celery send_task)", "_after_commit (core/lifecycle.py"),
    ("read_as: the observation read back for the answer", "read_as (core/api/routes/observations.py"),
    ("  read_observation (plain selects, core/read_model.py)", "read_observation (core/read_model.py"),
    ("  observation_data (the answer's dict)", "observation_data (core/read_model.py"),
    ("create: ObservationOut validate + dump", "model_validate ("),
    ("get: FastAPI response_model validation", "serialize_response (fastapi/routing.py"),
    ("JSON rendering of the answer", "render (starlette/responses.py"),
    ("event-loop thread: HTTP, routing, async code, in all", "uvicorn/protocols/http"),
    ("thread-pool threads (sync routes, run_in_threadpool), in all", "WorkerThread.run (anyio/"),
]
LIBRARIES = [("sqlalchemy", "sqlalchemy/"), ("psycopg", "psycopg/"), ("sqlite3", "sqlite3/"), ("pydantic", "pydantic"),
             ("fastapi", "fastapi/"), ("starlette", "starlette/"), ("uvicorn", "uvicorn/"), ("anyio", "anyio/"),
             ("asyncio", "asyncio/"), ("celery/kombu", "celery/"), ("celery/kombu", "kombu/"), ("jsonschema", "jsonschema"),
             ("json", "json/"), ("pluggy", "pluggy/"), ("threading", "threading.py"), ("core", "core/"),
             ("httptools", "httptools"), ("logging", "logging/")]


def find_py_spy(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    return found


def read_samples(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) stacks, start-up (imports) left out."""
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any("_find_and_load" in f or "import_from_string" in f for f in frames):
            continue
        samples.append((frames, int(count)))
    return samples


def print_profile(title: str, samples: list[tuple[list[str], int]], top: int) -> None:
    total = sum(n for _, n in samples) or 1
    print(f"\n{title}: {total} samples (CPU; all threads)")
    print(f"  {'stage (samples with it on the stack)':<55} {'share':>6}")
    for label, needle in STAGES:
        share = sum(n for frames, n in samples if any(needle in f for f in frames)) / total
        print(f"  {label:<55} {share:>6.0%}")
    libs: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, n in samples:
        leaf = frames[-1]
        leaves[leaf] += n
        libs[next((name for name, needle in LIBRARIES if needle in leaf), "other")] += n
    print("  where the samples end (the running function's library): "
          + ", ".join(f"{name} {n / total:.0%}" for name, n in libs.most_common()))
    print(f"  top {top} running functions:")
    for leaf, n in leaves.most_common(top):
        print(f"    {n / total:>5.1%}  {leaf[:120]}")


def profile(database: str, env: dict[str, str], folder: Path, db: sa.Engine, headers: dict[str, str],
            args: argparse.Namespace) -> None:
    spy = find_py_spy(args.py_spy)
    if spy is None:
        print(f"\n(no py-spy: `pip install py-spy` for a profile of our server on {database}; "
              "the database work per request is below)")
        return
    empty_observations(db, folder)
    for op in ("create", "get"):
        out = folder / f"profile-{op}.txt"
        wrap = [spy, "record", "--format", "raw", "--rate", "250", "--gil", "-o", str(out), "--"]
        with serving("our_app", env, folder / "profile.log", wrap=wrap) as (base, _):
            if op == "get":  # rows to read, made before the profiled part counts much
                with db.begin() as conn:
                    have = conn.execute(sa.select(sa.func.count()).select_from(sa.table("observations"))).scalar_one()
                if not have:
                    raise SystemExit("profile: nothing to read")
            phases = run_load_only(base, op, headers, args, db)
        if not out.exists():
            print(f"\n(py-spy wrote no profile for {op}; see {folder / 'profile.log'})")
            continue
        print_profile(f"Profile of our server on {database}, {op}, {phases.rate:,.0f} requests/s under py-spy",
                      read_samples(out), args.top)


def run_load_only(base: str, op: str, headers: dict[str, str], args: argparse.Namespace, db: sa.Engine) -> Phase:
    if op == "create":
        url = OURS["create"].format(slug=PROJECT)
        return asyncio.run(drive(base, headers, args.concurrency, args.seconds,
                                 lambda i: ("POST", url, draft("profile", i), 201)))
    with db.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM observations")).scalars())
    return asyncio.run(drive(base, headers, args.concurrency, args.seconds,
                             lambda i: ("GET", OURS["get"].format(id=ids[(i * 7919) % len(ids)]), None, 200)))


# -- main -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (servers alternate who goes first); the median")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server (default {DEFAULT_PG_URL})")
    parser.add_argument("--profile", action="store_true", help="profile our server even when it meets the target")
    parser.add_argument("--py-spy", help="the py-spy executable (default: on PATH or beside this Python)")
    parser.add_argument("--top", type=int, default=20, help="functions to list in a profile")
    args = parser.parse_args(argv)

    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results = [bench(database, args) for database in databases]

    print(f"\nHTTP API, {args.concurrency} concurrent clients, {args.seconds:g} s per figure, "
          f"median of {args.rounds} round(s); latency in ms")
    print(f"{'database':<11} {'op':<7} {'ours req/s':>10} {'bare req/s':>10} {'ratio':>6} "
          f"{'ours p50':>9} {'bare p50':>9} {'ours p99':>9} {'bare p99':>9}  target >= {TARGET}")
    for f in results:
        for op in ("create", "get"):
            ratio = f.ratio(op)
            print(f"{f.database:<11} {op:<7} {f.median('ours', op, lambda p: p.rate):>10,.0f} "
                  f"{f.median('bare', op, lambda p: p.rate):>10,.0f} {ratio:>6.2f} "
                  f"{f.median('ours', op, lambda p: p.percentile(0.5)):>9.1f} "
                  f"{f.median('bare', op, lambda p: p.percentile(0.5)):>9.1f} "
                  f"{f.median('ours', op, lambda p: p.percentile(0.99)):>9.1f} "
                  f"{f.median('bare', op, lambda p: p.percentile(0.99)):>9.1f}  {'ok' if ratio >= TARGET else 'BELOW'}")
    print("\nServer CPU per request (ms; the clients and the database share this machine's cores, so this"
          "\nratio, bare / ours, is what the throughput ratio tends to where the server alone is the limit):")
    for f in results:
        for op in ("create", "get"):
            ours = f.median("ours", op, lambda p: p.cpu_ms_per_request)
            bare = f.median("bare", op, lambda p: p.cpu_ms_per_request)
            clients = f.median("ours", op, lambda p: p.client_ms_per_request)
            print(f"  {f.database:<11} {op:<7} ours {ours:5.2f}, bare {bare:5.2f}, bare / ours {bare / ours:4.2f}"
                  f"   (httpx clients: {clients:4.2f} ms per request)")
    print("\nDatabase work per request (pool check-outs, transactions, statements):")
    for f in results:
        for op in ("create", "get"):
            cells = []
            for server in ("ours", "bare"):
                w = f.work.get((server, op))
                cells.append(f"{server} " + (f"{w['checkout']:.1f} / {w['transaction']:.1f} / {w['statement']:.1f}"
                                             if w else "n/a"))
            print(f"  {f.database:<11} {op:<7} " + ",  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
