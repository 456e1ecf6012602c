"""`observatory serve` as a newcomer runs it: the API and a worker on the embedded defaults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import draft
from tests.support.serving import free_port
from tests.support.waiting import wait_until

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
    log_path = tmp_path / "serve.log"  # a file, not a pipe: nobody reads a pipe here, and a full one blocks serve
    with log_path.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port)], env=env,
                                  cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def log_tail() -> str:
        return f"serve's output:\n{log_path.read_text(errors='replace')[-4000:]}"

    def ready() -> bool:
        if server.poll() is not None:
            pytest.fail(f"serve exited with {server.returncode} before it was ready\n{log_tail()}")
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, 60, "serve to answer /readyz", details=log_tail)
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/v1/projects/alpha/observations", json=draft(client_id=f"serve-{port}"),
                             headers=headers, timeout=10)
        assert created.status_code == 201, created.text
        obs_id = created.json()["id"]

        def graded() -> dict | None:
            obs = httpx.get(f"{base}/api/v1/observations/{obs_id}", headers=headers, timeout=10).json()
            return obs if obs["grade"] is not None else None

        obs = wait_until(graded, 30, "the worker beside serve to enrich and grade the observation", details=log_tail)
        assert obs["enrichments"]["recorder"]["status"] == "done", json.dumps(obs)
        workers = children(server.pid)
        assert workers, "serve started a worker process"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    wait_until(lambda: not any(alive(pid) for pid in workers), 30, "the worker to stop with serve", details=log_tail)
