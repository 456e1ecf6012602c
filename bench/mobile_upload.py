"""A large upload through the mobile bridge's tus endpoint against one plain streamed PUT.

    python bench/mobile_upload.py [--mb 200] [--chunk-mb 5] [--rounds 3] [--database sqlite|postgresql]
                                  [--pg-url URL]

One server, uvicorn on 127.0.0.1 in a subprocess: the engine's API (``core.api.app.create_app``,
rate limit off, one project that enables the mobile bridge) plus, in the same app, a minimal raw
route ``PUT /bench/raw/{name}`` (a Starlette route: no dependencies, no token, no checks, no
hashing, no database) that streams the request body to a file and fsyncs it. In the same run,
from the same file of ``--mb`` random MB, with its sha256 announced in Upload-Metadata:

- *tus, tuspy*: the real ``tuspy`` client, ``--chunk-mb`` MB per ``PATCH`` (it opens a new
  connection for every request and reads each chunk whole before sending it);
- *tus, keep-alive*: the same protocol on one keep-alive connection, each chunk streamed from
  the file in 1 MB blocks (``http.client``), as apps' HTTP stacks send it;
- *plain*: one ``PUT`` of the whole file with Content-Length, streamed in 1 MB blocks;
- *plain PUTs* (information): the raw route in ``--chunk-mb`` MB requests on one keep-alive
  connection, what splitting the body into requests costs by itself.

For tus the server appends each chunk to disk as it arrives, hashes it (sha256) as it goes,
records the offset (a database write per chunk), and at the end fsyncs, checks the sha256 and
links the file into the media store, which the bench then checks. Each round runs every path
(the order rotates); the server's peak memory is reset before each upload
(``/proc/PID/clear_refs``) and its growth read from ``VmHWM``. Printed: MB/s of each path
(median over ``--rounds``), each tus path's ratio to the plain PUT (target >= 0.8) and the
server's largest memory growth during a tus upload (target < 64 MB).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable from here
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.api import server_env  # noqa: E402
from bench.common import DEFAULT_PG_URL, PROJECT, postgresql_database, sqlite_database  # noqa: E402
from tests.support.serving import HOST, ServerDidNotStart, free_port, proc_memory, wait_until_healthy  # noqa: E402

TARGET = 0.8
MEMORY_TARGET = 64 * 1024 * 1024
MB = 1024 * 1024


# -- the server ---------------------------------------------------------------------------------


def create() -> Any:
    """The uvicorn factory: the engine's API with the raw PUT route beside it."""
    from starlette.requests import Request
    from starlette.responses import Response

    from core.api.app import create_app
    from core.config import get_settings
    from core.engine import Engine
    from core.worker import InlineDispatcher

    engine = Engine.start(get_settings(), dispatcher=InlineDispatcher())
    app = create_app(engine)
    folder = Path(engine.settings.data_dir) / "raw"
    folder.mkdir(parents=True, exist_ok=True)

    async def raw_put(request: Request) -> Response:
        size = 0
        with (folder / request.path_params["name"]).open("wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        return Response(status_code=204, headers={"X-Size": str(size)})

    app.router.add_route("/bench/raw/{name}", raw_put, methods=["PUT"])
    return app


def registry_text() -> str:
    service = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]["mobile_bridge"]
    return yaml.safe_dump({"services": {"mobile_bridge": service}, "projects": [
        {"slug": PROJECT, "name": "Bench", "timezone": "Europe/Madrid", "services": {"mobile_bridge": {}}}]})


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "bench.mobile_upload:create", "--host", HOST,
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with log.open("a") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        try:
            wait_until_healthy(base, process)
        except ServerDidNotStart as exc:
            raise SystemExit(f"the server: {exc}:\n{log.read_text()[-3000:]}") from None
        yield base, process.pid
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# -- the uploads --------------------------------------------------------------------------------


def reset_peak(pid: int) -> int:
    """Reset the server's peak memory (VmHWM) where Linux allows it; return its memory now."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass
    return proc_memory(pid, "VmRSS")


def tus_upload(base: str, token: str, source: Path, sha256: str, chunk: int) -> str:
    from tusclient.client import TusClient

    client = TusClient(f"{base}/api/v1/mobile/uploads", headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(str(source), chunk_size=chunk, metadata={"filename": source.name, "sha256": sha256})
    uploader.upload()
    return uploader.url


class Slice:
    """``length`` bytes of an open file from where it stands, read as http.client streams a body."""

    def __init__(self, fh: Any, length: int):
        self.fh, self.left = fh, length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.fh.read(size)
        self.left -= len(data)
        return data


def tus_keepalive(base: str, token: str, source: Path, sha256: str, chunk: int) -> str:
    """The tus protocol as an app's HTTP stack speaks it: one keep-alive connection, each chunk
    streamed from the file (TUSKit's URLSession, tus-android-client's HttpURLConnection)."""
    import base64

    host, port = base.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), blocksize=MB)
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    size = source.stat().st_size
    meta = f"filename {base64.b64encode(source.name.encode()).decode()},sha256 {base64.b64encode(sha256.encode()).decode()}"
    conn.request("POST", "/api/v1/mobile/uploads", headers={**auth, "Upload-Length": str(size), "Upload-Metadata": meta})
    created = conn.getresponse()
    created.read()
    location = created.headers["Location"]
    offset = 0
    with source.open("rb") as fh:
        while offset < size:
            length = min(chunk, size - offset)
            conn.request("PATCH", location, body=Slice(fh, length), headers={
                **auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(length)})
            answer = conn.getresponse()
            answer.read()
            if answer.status != 204:
                raise SystemExit(f"tus PATCH answered {answer.status}")
            offset = int(answer.headers["Upload-Offset"])
    conn.close()
    return location


def plain_puts(base: str, source: Path, name: str, chunk: int) -> int:
    """The raw route in ``chunk``-sized PUTs on one keep-alive connection: what the requests
    themselves cost, with nothing of tus (for information)."""
    host, port = base.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), blocksize=MB)
    size, offset, part = source.stat().st_size, 0, 0
    with source.open("rb") as fh:
        while offset < size:
            length = min(chunk, size - offset)
            conn.request("PUT", f"/bench/raw/{name}-{part}", body=Slice(fh, length),
                         headers={"Content-Length": str(length)})
            answer = conn.getresponse()
            answer.read()
            offset, part = offset + int(answer.headers["X-Size"]), part + 1
    conn.close()
    return offset


def plain_put(base: str, source: Path, name: str) -> int:
    host, port = base.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), blocksize=MB)
    with source.open("rb") as fh:
        conn.request("PUT", f"/bench/raw/{name}", body=fh, headers={"Content-Length": str(source.stat().st_size)})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 204:
        raise SystemExit(f"plain PUT answered {response.status}")
    return int(response.headers["X-Size"])


def make_source(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(MB)
    with path.open("wb") as fh:
        for i in range(size // MB):
            piece = i.to_bytes(8, "big") + block[8:]
            fh.write(piece)
            digest.update(piece)
    return digest.hexdigest()


def run(url: str, folder: Path, args: argparse.Namespace) -> None:
    from core.config import Settings
    from core.engine import Engine
    from core.tokens import create_token

    (folder / "registry.yaml").write_text(registry_text())
    env = server_env(url, folder)
    env["OBSERVATORY_PLUGIN_MODULES"] = ""
    env["OBSERVATORY_MAX_REQUEST_BYTES"] = str(args.mb * MB + MB)  # the plain PUT is one request
    size, chunk = args.mb * MB, args.chunk_mb * MB
    source = folder / "upload.bin"
    sha256 = make_source(source, size)
    warm = folder / "warm.bin"
    warm_sha = make_source(warm, 2 * chunk)
    engine = Engine.start(Settings(database_url=url, data_dir=folder / "data", registry_path=folder / "registry.yaml",
                                   plugin_modules=""))
    token = create_token(engine, "contributor", PROJECT, "bench phone").token
    paths = ("tuspy", "keep-alive", "plain", "plain-chunks")
    rates: dict[str, list[float]] = {path: [] for path in paths}
    growth: list[int] = []
    with serving(env, folder / "server.log") as (base, pid):
        tus_upload(base, token, warm, warm_sha, chunk)
        _remove_stored(engine, warm_sha, folder)
        tus_keepalive(base, token, warm, warm_sha, chunk)
        plain_put(base, warm, "warm")
        for round_no in range(args.rounds):
            for path in paths[round_no % len(paths):] + paths[:round_no % len(paths)]:
                _remove_stored(engine, sha256, folder)
                before = reset_peak(pid)
                started = time.perf_counter()
                if path == "tuspy":
                    tus_upload(base, token, source, sha256, chunk)
                elif path == "keep-alive":
                    tus_keepalive(base, token, source, sha256, chunk)
                elif path == "plain":
                    assert plain_put(base, source, "upload") == size
                else:
                    assert plain_puts(base, source, "upload", chunk) == size
                elapsed = time.perf_counter() - started
                grew = proc_memory(pid, "VmHWM") - before
                if path in ("tuspy", "keep-alive"):
                    stored = engine.media.path_for(sha256)
                    assert stored.stat().st_size == size, "the tus upload is not in the media store"
                    growth.append(grew)
                rates[path].append(size / MB / elapsed)
                print(f"  round {round_no + 1} {path:<10} {size / MB / elapsed:8.1f} MB/s  {elapsed:6.2f} s  "
                      f"server memory +{grew / MB:.1f} MB", file=sys.stderr)
    engine.close()
    median = {path: statistics.median(rates[path]) for path in paths}
    print(f"\n{args.mb} MB through tus in {args.chunk_mb} MB chunks against one plain streamed PUT, "
          f"median of {args.rounds} rounds ({args.database})")
    for path, label in (("tuspy", "tus, tuspy (a new connection per chunk)"),
                        ("keep-alive", "tus, one keep-alive connection"), ("plain", "plain PUT"),
                        ("plain-chunks", f"plain PUTs of {args.chunk_mb} MB, keep-alive (information)")):
        ratio = median[path] / median["plain"]
        verdict = "" if path == "plain" else f"  ratio {ratio:4.2f}" if path == "plain-chunks" else f"  ratio {ratio:4.2f} (target >= {TARGET}) " + \
            ("ok" if ratio >= TARGET else "UNDER TARGET")
        print(f"  {label:<42} {median[path]:8.1f} MB/s{verdict}")
    print(f"  server memory growth during a tus upload: at most {max(growth) / MB:.1f} MB "
          f"(target < {MEMORY_TARGET // MB} MB) {'ok' if max(growth) < MEMORY_TARGET else 'OVER TARGET'}")


def _remove_stored(engine: Any, sha256: str, folder: Path) -> None:
    """Start each upload afresh: no stored copy (tus would then skip the move) and no raw file."""
    engine.media.path_for(sha256).unlink(missing_ok=True)
    for raw in (folder / "data" / "raw").glob("upload*"):
        raw.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the upload in MB (default 200)")
    parser.add_argument("--chunk-mb", type=int, default=5, help="tus chunk size in MB (default 5)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-mobile-upload-"))
    try:
        if args.database == "sqlite":
            with sqlite_database(folder) as url:
                run(url, folder, args)
        else:
            with postgresql_database(args.pg_url) as url:
                run(url, folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
