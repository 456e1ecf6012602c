"""`observatory serve` as a newcomer runs it: the API and a worker on the embedded defaults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import draft
from tests.support.serving import free_port

ROOT = Path(__file__).resolve().parent.parent


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc to find the worker process")
def test_serve_runs_api_and_worker_and_stops_both(settings_factory, tmp_path):
    settings_factory(data_dir=tmp_path / "data")
    from core.db.migrate import upgrade

    upgrade(os.environ["OBSERVATORY_DATABASE_URL"])
    from core.config import get_settings
    from core.engine import Engine
    from core.tokens import create_token
    from core.worker import InlineDispatcher

    engine = Engine.start(get_settings(), dispatcher=InlineDispatcher())
    token = create_token(engine, "contributor", "alpha").token
    engine.close()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OBSERVATORY_BROKER_URL": "filesystem://"}
    server = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port)], env=env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not become ready")
        body = {**draft(client_id=f"serve-{port}")}
        created = httpx.post(f"{base}/api/v1/projects/alpha/observations", json=body,
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert created.status_code == 201, created.text
        obs_id = created.json()["id"]
        for _ in range(150):
            obs = httpx.get(f"{base}/api/v1/observations/{obs_id}", headers={"Authorization": f"Bearer {token}"}).json()
            if obs["grade"] is not None:
                break
            time.sleep(0.2)
        assert obs["enrichments"]["recorder"]["status"] == "done", json.dumps(obs)
        workers = children(server.pid)
        assert workers, "serve started a worker process"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "the worker stops with serve"
