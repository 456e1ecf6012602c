"""Offline queue sync through the mobile bridge against one-by-one creates through the core API.

    python bench/mobile_sync.py [--n 1000] [--batch 100] [--database sqlite|postgresql|both]
                                [--rounds 1] [--pg-url URL]

One server, uvicorn on 127.0.0.1 in a subprocess (``core.api.app.create_app`` on an engine
started as ``observatory serve`` starts it: ``CeleryDispatcher`` on the file-system broker,
rate limit off), one project that enables the mobile bridge and one enriching no-op plugin
(``bench/noop_plugin.py``, as ``bench/api.py`` does), so every observation also stores an
enrichment row and queues a task. In the same run, on the same server and database:

- *bridge*: an app signs up (``POST /api/v1/mobile/projects/{slug}/signup``) and syncs ``--n``
  queued observations, each with its own small JPEG (distinct photos, a few KB), in batches of
  ``--batch``: ``POST .../sync`` as multipart, the batch as JSON and its photos as parts, one
  request at a time, as a phone sends its queue;
- *plain*: ``--n`` one-by-one ``POST /api/v1/projects/{slug}/observations`` (multipart, the draft
  and its photo) with a contributor's token, one request at a time, with other photos.

Both clients are httpx on one keep-alive connection in this process. Afterwards the bench checks
that the database holds exactly ``--n`` observations of each path, each with its photo. Printed:
observations per second of each path, and the ratio bridge / plain (target >= 3), the median over
``--rounds`` (each round with new observations and photos).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from bench.api import serving, server_env  # noqa: E402
from bench.common import DEFAULT_PG_URL, PROJECT, postgresql_database, sqlite_database  # noqa: E402

TARGET = 3.0
API = "/api/v1"


def registry_text() -> str:
    services = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]
    return yaml.safe_dump({
        "services": {"mobile_bridge": services["mobile_bridge"],
                     "noop": {"summary": "enriches every observation with nothing (benchmark)",
                              "settings": {"type": "object"}}},
        "projects": [{"slug": PROJECT, "name": "Bench", "timezone": "Europe/Madrid",
                      "services": {"noop": {}, "mobile_bridge": {}}}],
    })


def small_photos(n: int, seed: int) -> list[bytes]:
    """``n`` distinct small JPEGs (96 x 72, a few KB each)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, 96 * 72 * 3).reshape(72, 96, 3).astype(np.uint8)
    photos = []
    for _ in range(n):
        noise = rng.integers(0, 64, size=(72, 96, 3), dtype=np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.add(base, noise), [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        photos.append(buf.tobytes())
    return photos


def queued(photo: bytes, i: int, tag: str) -> dict[str, Any]:
    import hashlib

    made = datetime.now(timezone.utc) - timedelta(hours=3, seconds=i)
    return {"uuid": str(uuid.uuid4()), "observed_at": made.isoformat(),
            "location": {"lat": 41.39 + i * 1e-5, "lon": 2.17, "accuracy_m": 8},
            "fields": {"note": f"{tag} {i}"}, "device_created_at": made.isoformat(),
            "device_sent_at": datetime.now(timezone.utc).isoformat(),
            "media": [{"sha256": hashlib.sha256(photo).hexdigest(), "size": len(photo), "content_type": "image/jpeg"}]}


def sign_up(http: httpx.Client, name: str) -> dict[str, str]:
    response = http.post(f"{API}/mobile/projects/{PROJECT}/signup", json={"display_name": name, "device_name": name})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def bridge(http: httpx.Client, headers: dict[str, str], photos: list[bytes], batch: int, tag: str) -> float:
    """Sync one queue of observations with photos; the seconds it took."""
    items = [queued(photo, i, tag) for i, photo in enumerate(photos)]
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        part = items[start:start + batch]
        files = [("batch", (None, json.dumps({"items": part}), "application/json"))]
        files += [("media", (f"{item['uuid']}.jpg", photo, "image/jpeg"))
                  for item, photo in zip(part, photos[start:start + batch])]
        response = http.post(f"{API}/mobile/projects/{PROJECT}/sync", files=files, headers=headers)
        response.raise_for_status()
        statuses = {a["status"] for a in response.json()["items"]}
        if statuses != {"created"}:
            raise SystemExit(f"bridge: items answered {statuses}: {response.text[:2000]}")
    return time.perf_counter() - started


def plain(http: httpx.Client, headers: dict[str, str], photos: list[bytes], tag: str) -> float:
    """Create the same number of observations one request each; the seconds it took."""
    drafts = []
    for i in range(len(photos)):
        item = queued(photos[i], i, tag)
        drafts.append(json.dumps({"client_id": item["uuid"], "observed_at": item["observed_at"],
                                  "location": item["location"], "fields": item["fields"]}))
    started = time.perf_counter()
    for i, (draft, photo) in enumerate(zip(drafts, photos)):
        response = http.post(f"{API}/projects/{PROJECT}/observations", headers=headers, files=[
            ("draft", (None, draft, "application/json")), ("media", (f"p{i}.jpg", photo, "image/jpeg"))])
        if response.status_code != 201:
            raise SystemExit(f"plain: {response.status_code} {response.text[:1000]}")
    return time.perf_counter() - started


def check(db: sa.Engine, tag: str, n: int) -> None:
    """Exactly ``n`` observations of this path, each with one photo."""
    with db.connect() as conn:
        count, with_media = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT m.observation_id) FROM observations o "
            "LEFT JOIN observation_media m ON m.observation_id = o.id WHERE CAST(o.fields AS TEXT) LIKE :tag"),
            {"tag": f'%"{tag} %'}).one()
    if (count, with_media) != (n, n):
        raise SystemExit(f"{tag}: {count} observations stored ({with_media} with a photo), not {n}")


def bench(database: str, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    folder = Path(tempfile.mkdtemp(prefix="obs-mobile-sync-"))
    try:
        (folder / "registry.yaml").write_text(registry_text())
        databases = sqlite_database(folder) if database == "sqlite" else postgresql_database(args.pg_url)
        with databases as url:
            env = server_env(url, folder)
            db = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            bridge_rates, plain_rates = [], []
            with serving("our_app", env, folder / "server.log") as (base, _pid), \
                    httpx.Client(base_url=base, timeout=120) as http:
                app = sign_up(http, "bench app")
                person = sign_up(http, "bench person")  # a contributor's token for the plain creates
                warm = small_photos(20, seed=999)
                bridge(http, app, warm[:10], args.batch, "warm-bridge")
                plain(http, person, warm[10:], "warm-plain")
                for r in range(args.rounds):
                    photos = small_photos(2 * args.n, seed=r)
                    plain_s = plain(http, person, photos[args.n:], f"plain-{r}")
                    bridge_s = bridge(http, app, photos[:args.n], args.batch, f"bridge-{r}")
                    check(db, f"bridge-{r}", args.n)
                    check(db, f"plain-{r}", args.n)
                    bridge_rates.append(args.n / bridge_s)
                    plain_rates.append(args.n / plain_s)
            db.dispose()
        return bridge_rates, plain_rates
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="observations per path (default 1000)")
    parser.add_argument("--batch", type=int, default=100, help="items per sync request (default 100)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print(f"{args.n} observations with a small photo each; bridge batches of {args.batch}; median of "
          f"{args.rounds} round(s)")
    print(f"{'database':<11} {'bridge obs/s':>13} {'plain obs/s':>12} {'ratio':>7} {'target':>7}")
    short = False
    for database in databases:
        bridge_rates, plain_rates = bench(database, args)
        b, p = statistics.median(bridge_rates), statistics.median(plain_rates)
        short |= b / p < TARGET
        print(f"{database:<11} {b:>13.0f} {p:>12.0f} {b / p:>6.1f}x {'>= ' + str(TARGET):>7}")
    return 1 if short else 0


if __name__ == "__main__":
    raise SystemExit(main())
