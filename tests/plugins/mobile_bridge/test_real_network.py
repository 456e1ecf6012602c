"""The mobile bridge over a bad network, end to end: the engine under uvicorn (`observatory serve`,
with its worker) on loopback, behind a proxy that cuts connections in the middle of request and
response bodies at random. A simulated app signs up, queues 100 observations with photos while
"offline", then syncs through the proxy, retrying every failed request up to five times (photos
with the real tus client, tuspy, resuming from the server's offset). Afterwards the server holds
exactly 100 observations of that person, every photo matches its checksum, none is stuck awaiting
media, and the app's feed shows their enrichment results.

SQLite with the file-system broker by default; with OBSERVATORY_TEST_DATABASE_URL, a new
PostgreSQL database and a Redis broker (CI runs both).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import cv2
import httpx
import pytest
import skimage.data
import sqlalchemy as sa
from tusclient import client as tus_client
from tusclient.uploader import Uploader

from tests.support.chaos_proxy import ChaosProxy
from tests.support.serving import HOST, free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[3]
PROJECT = "wildlife"  # species_id and mobile_bridge on: the feed carries a real model's results
N = 100
ATTEMPTS = 6  # the first try and five retries
BACKOFF_S = 0.1  # before retry k: BACKOFF_S * 2**k seconds, as apps back off
REDIS = os.environ.get("OBSERVATORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


def photos(n: int) -> list[bytes]:
    """``n`` different real photos: crops of scikit-image's samples, as JPEG."""
    sources = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket()]
    out = []
    for i in range(n):
        image = sources[i % len(sources)]
        y, x = (i * 7) % 60, (i * 11) % 80
        crop = image[y:y + 240, x:x + 320]
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        out.append(buf.tobytes())
    assert len({hashlib.sha256(p).digest() for p in out}) == n
    return out


def with_retries(call: Callable[[], Any], what: str, log: list[str]) -> Any:
    """Call, and call again after any transport failure or 5xx, up to ATTEMPTS times."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = call()
        except Exception as exc:  # noqa: BLE001 (a cut connection surfaces as many exception types)
            log.append(f"{what}: attempt {attempt}: {type(exc).__name__}")
            if attempt == ATTEMPTS:
                raise
            time.sleep(BACKOFF_S * 2 ** attempt)
            continue
        if isinstance(answer, httpx.Response) and answer.status_code >= 500:
            log.append(f"{what}: attempt {attempt}: {answer.status_code}")
            if attempt == ATTEMPTS:
                answer.raise_for_status()
            continue
        return answer
    raise AssertionError("unreachable")


@pytest.fixture
def backing(tmp_path: Path) -> Any:
    """(database URL, broker URL): SQLite and the file-system broker, or PostgreSQL and Redis."""
    base = os.environ.get("OBSERVATORY_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'observatory.db'}", ""
        return
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    name = f"obs_mobile_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}", REDIS
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        redis.Redis.from_url(REDIS).flushdb()


@pytest.fixture
def server(tmp_path: Path, backing: tuple[str, str]) -> Any:
    database_url, broker_url = backing
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    env.update({"OBSERVATORY_DATA_DIR": str(tmp_path / "data"), "OBSERVATORY_DATABASE_URL": database_url,
                "OBSERVATORY_REGISTRY_PATH": str(ROOT / "registry.yaml"), "OBSERVATORY_RATE_LIMIT_PER_MINUTE": "0",
                "OBSERVATORY_TOKEN_CACHE_S": "0", "PYTHONPATH": str(ROOT)})
    if broker_url:
        env["OBSERVATORY_BROKER_URL"] = broker_url
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--host", HOST, "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        wait_until_healthy(base, process, timeout_s=120)
        yield base, port, database_url, log_path
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow  # fault injection: run once in CI (the PostgreSQL pass), as the others are
def test_a_field_app_syncs_100_observations_through_a_network_that_cuts_connections(server: Any) -> None:
    base, port, database_url, log_path = server
    failures: list[str] = []
    pictures = photos(N)
    shas = [hashlib.sha256(p).hexdigest() for p in pictures]
    uuids = [str(uuid.uuid4()) for _ in range(N)]

    with ChaosProxy(port, cut_probability=0.5, max_budget=20_000, seed=2026) as proxy:
        app = httpx.Client(base_url=proxy.base, timeout=30)
        signed = with_retries(lambda: app.post(f"/api/v1/mobile/projects/{PROJECT}/signup", json={
            "display_name": "Field tester", "device_name": "test phone"}), "sign-up", failures)
        assert signed.status_code == 201, signed.text
        token, account_id = signed.json()["token"], signed.json()["account_id"]
        auth = {"Authorization": f"Bearer {token}"}

        # made offline: 100 observations, each expecting its photo
        items = [{"uuid": uuids[i], "kind": "generic", "observed_at": f"2026-05-{1 + i % 28:02d}T09:30:00+02:00",
                  "location": {"lat": 41.39 + i / 10_000, "lon": 2.17, "accuracy_m": 8},
                  "fields": {"note": f"observation {i}"}, "device_created_at": f"2026-05-{1 + i % 28:02d}T09:31:00+02:00",
                  "media": [{"sha256": shas[i], "size": len(pictures[i]), "content_type": "image/jpeg"}]}
                 for i in range(N)]

        def upload(i: int) -> None:
            tus = tus_client.TusClient(f"{proxy.base}/api/v1/mobile/uploads", headers=auth)
            url = None
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    uploader = Uploader(file_stream=io.BytesIO(pictures[i]), url=url, client=tus, chunk_size=16_384,
                                        metadata={"filename": f"p{i}.jpg", "filetype": "image/jpeg",
                                                  "sha256": shas[i]})
                    url = uploader.url
                    uploader.upload()
                    return
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"upload {i}: attempt {attempt}: {type(exc).__name__}: {exc}")
                    url = url or getattr(uploader, "url", None) if "uploader" in locals() else url
                    if attempt == ATTEMPTS:
                        raise AssertionError("\n".join(failures[-12:])) from exc
                    time.sleep(BACKOFF_S * 2 ** attempt)  # as an app backs off: 423/409 mean "ask again"

        def sync(batch: list[dict[str, Any]]) -> dict[str, Any]:
            answer = with_retries(lambda: app.post(f"/api/v1/mobile/projects/{PROJECT}/sync", json={"items": batch},
                                                   headers=auth), "sync", failures)
            assert answer.status_code == 200, answer.text
            return answer.json()

        # half the photos go before their records, half after (the records wait as awaiting_media)
        for i in range(N // 2):
            upload(i)
        first = [sync(items[k:k + 10]) for k in range(0, N // 2, 10)]
        assert {a["status"] for batch in first for a in batch["items"]} <= {"created", "duplicate"}
        later = [sync(items[k:k + 10]) for k in range(N // 2, N, 10)]
        assert {a["status"] for batch in later for a in batch["items"]} <= {"awaiting_media", "created", "duplicate"}
        for i in range(N // 2, N):
            upload(i)
        again = sync(items[:20])  # the app, unsure, sends part of its queue again
        assert {a["status"] for a in again["items"]} == {"duplicate"}
        app.close()
    assert proxy.stats.cuts >= 10, f"the network was not bad enough to test anything: {proxy.stats}"
    assert any(f.startswith("upload") for f in failures), "no upload was cut and resumed"
    print(f"\nnetwork: {proxy.stats}; failed attempts retried: {len(failures)}")

    direct = httpx.Client(base_url=base, timeout=30, headers=auth)
    # nothing stuck: every item is an observation
    states = [direct.get(f"/api/v1/mobile/projects/{PROJECT}/sync/{u}").json() for u in uuids]
    assert [s["status"] for s in states].count("created") == N, [s for s in states if s["status"] != "created"][:3]

    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT o.client_id, m.sha256 FROM observations o JOIN observation_media m ON m.observation_id = o.id "
            "WHERE o.contributor_id = :account"), {"account": account_id}).all()
        count = conn.execute(sa.text("SELECT count(*) FROM observations WHERE contributor_id = :a"),
                             {"a": account_id}).scalar()
    engine.dispose()
    assert count == N, f"{count} observations stored for {N} queued"
    assert {client_id: sha for client_id, sha in rows} == dict(zip(uuids, shas))
    media_dir = Path(log_path.parent / "data" / "media")
    for sha in shas:  # the bytes on disk are the photo's
        stored = next(media_dir.rglob(sha), None)
        assert stored is not None and hashlib.sha256(stored.read_bytes()).hexdigest() == sha

    # the feed shows each observation's results once the worker has been through them
    deadline = time.monotonic() + 240
    results: dict[int, Any] = {}
    while time.monotonic() < deadline and len(results) < N:
        cursor = None
        results = {}
        while True:
            page = direct.get("/api/v1/mobile/feed", params={"per_page": 200, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            for entry in body["items"]:
                if entry["type"] == "results":
                    results[entry["observation_id"]] = entry["data"]
            if not body["items"]:
                break
            cursor = body["next_cursor"]
        if len(results) < N:
            time.sleep(2)
    assert len(results) == N, f"{len(results)} of {N} observations have results in the feed; log: " + \
        log_path.read_text()[-3000:]
    assert all("species_id" in data["results"] for data in results.values()), list(results.values())[:2]
