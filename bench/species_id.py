"""species_id: the plugin's paths against plain onnxruntime, measured in the same run.

    python bench/species_id.py [--n 64] [--batch-size 16] [--rounds 8] [--requests 60]
                               [--via uvicorn|testclient] [--client raw|httpx] [--threads 0] [--json PATH]

1. **Enrichment path, images per second.** N photos (scikit-image's, as JPEG files, cycled)
   are decoded once; then the plugin's batch identification (``service.identify``:
   preprocessing, onnxruntime in batches, softmax, taxa, the combined and per-photo rankings)
   runs on them, against plain ``session.run`` on the same photos already preprocessed, in the
   same batches, with the same session. Rounds alternate between the two; each figure is the
   median. Target: the plugin at least 0.9 of the plain throughput. The photo checks the
   enrichment adds (luminance, sharpness, dHash) are timed apart, for information.
2. **Endpoint, per-photo latency p50.** One photo per ``POST /api/v1/identify`` (a real
   uvicorn server on 127.0.0.1 and an HTTP client in this process sending a multipart body
   encoded once, or FastAPI's TestClient), with a token,
   against decoding (``cv2.imdecode``) + preprocessing + plain ``session.run`` of the same
   photo; requests alternate between the two. Target: p50 within 1.5 times the plain p50.
   The client is by default a bare HTTP/1.1 keep-alive connection sending the request's bytes,
   prepared once, and reading the answer (``--client raw``): httpx's own Python work per request
   (about 1 ms, in the same process and under the same GIL as the server) is the client's time,
   not the endpoint's, as a browser's or curl's would be; ``--client httpx`` measures with it.

The engine runs on a temporary SQLite database and data folder; the model is built into it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import textwrap
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tests.support.serving import free_port  # noqa: E402

THROUGHPUT_TARGET = 0.9
LATENCY_TARGET = 1.5
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "hubble_deep_field")
REGISTRY = """
services:
  species_id:
    summary: species identification (benchmark)
    config:
      batch_size: {batch_size}
      threads: {threads}
      spinning: {spinning}
      models:
        - name: efficientnet_lite0-imagenet1k
          builtin: efficientnet_lite0
projects:
  - slug: bench
    name: Bench
    services: {{species_id: {{}}}}
"""


def photo_files(n: int) -> list[tuple[str, bytes]]:
    import cv2
    import skimage.data

    encoded = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., :3][..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        encoded.append((f"{name}.jpg", buf.tobytes()))
    return [encoded[i % len(encoded)] for i in range(n)]


def start_engine(folder: Path, batch_size: int, threads: int, spinning: bool = False) -> Any:
    registry = folder / "registry.yaml"
    registry.write_text(textwrap.dedent(REGISTRY.format(batch_size=batch_size, threads=threads,
                                                        spinning=str(spinning).lower())))
    env = {"OBSERVATORY_DATA_DIR": str(folder / "data"), "OBSERVATORY_REGISTRY_PATH": str(registry),
           "OBSERVATORY_ENVIRONMENT": "test", "OBSERVATORY_RATE_LIMIT_PER_MINUTE": "0",
           "OBSERVATORY_PLUGIN_MODULES": ""}
    os.environ.update(env)
    for key in ("OBSERVATORY_DATABASE_URL", "OBSERVATORY_BROKER_URL", "OBSERVATORY_MEDIA_DIR"):
        os.environ.pop(key, None)
    from core.config import get_settings
    from core.db.migrate import upgrade
    from core.engine import Engine
    from core.worker import InlineDispatcher

    get_settings.cache_clear()
    settings = get_settings()
    settings.ensure_dirs()
    upgrade(settings.database_url)
    return Engine.start(settings, dispatcher=InlineDispatcher())


def median_rate(times: list[float], n: int) -> float:
    return n / statistics.median(times)


# --------------------------------------------------------------------------------------------
# 1. Throughput
# --------------------------------------------------------------------------------------------


def throughput(engine: Any, files: list[tuple[str, bytes]], batch_size: int, rounds: int) -> dict[str, Any]:
    from plugins.species_id import photo
    from plugins.species_id.runtime import Runtime
    from plugins.species_id.service import Photo, decode_photo, identify, model_for

    catalogue = Runtime.of(engine).catalogue()
    model = model_for(catalogue, None)
    limits = engine.settings
    decoded = [decode_photo(Photo(data, name, "image/jpeg", i, filename=name), max_bytes=limits.max_upload_bytes,
                            max_pixels=limits.max_image_pixels, min_side=model.spec.preprocessing.resize)
               for i, (name, data) in enumerate(files)]
    assert all(d.pixels is not None for d in decoded)
    n = len(decoded)
    batch = np.empty((n, *model.input_shape), np.float32)
    for i, d in enumerate(decoded):
        model.normaliser(d.pixels, batch[i])
    session, feed, output = model.session, model.input_name, model.output_name

    def plugin() -> float:
        started = time.perf_counter()
        result = identify(model, decoded, top_k=5, no_reject=False, batch_size=batch_size)
        spent = time.perf_counter() - started
        assert len(result["images"]) == n
        return spent

    def plain() -> float:
        started = time.perf_counter()
        for start in range(0, n, batch_size):
            session.run([output], {feed: batch[start: start + batch_size]})
        return time.perf_counter() - started

    def checks() -> float:
        started = time.perf_counter()
        for d in decoded:
            photo.measure(d.pixels, d.width, d.height)
        return time.perf_counter() - started

    plugin(), plain()  # warm-up
    plugin_times, plain_times = [], []
    for i in range(rounds):  # A B B A ...: a slow drift of the machine weighs on both sides alike
        if i % 2 == 0:
            plugin_times.append(plugin())
            plain_times.append(plain())
        else:
            plain_times.append(plain())
            plugin_times.append(plugin())
    check_time = statistics.median([checks() for _ in range(3)])
    plugin_rate, plain_rate = median_rate(plugin_times, n), median_rate(plain_times, n)
    paired = statistics.median(b / a for a, b in zip(plugin_times, plain_times))
    return {
        "images": n, "batch_size": batch_size, "rounds": rounds,
        "plugin_images_per_s": round(plugin_rate, 1), "plain_images_per_s": round(plain_rate, 1),
        "ratio": round(plugin_rate / plain_rate, 3), "paired_ratio": round(paired, 3),
        "photo_checks_ms_per_image": round(check_time / n * 1000, 2),
        "enrichment_with_checks_images_per_s": round(n / (statistics.median(plugin_times) + check_time), 1),
        "plugin_s": [round(t, 4) for t in plugin_times], "plain_s": [round(t, 4) for t in plain_times],
    }


# --------------------------------------------------------------------------------------------
# 2. Endpoint latency
# --------------------------------------------------------------------------------------------


class RawClient:
    """HTTP/1.1 over one kept-alive socket: prepared request bytes out, one answer back."""

    def __init__(self, base: str):
        import socket

        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    @staticmethod
    def prepare(request: Any) -> bytes:
        """An httpx request as the bytes sent on the wire."""
        body = request.read()
        head = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "content-length"]
        head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    def send(self, raw: bytes) -> Any:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.pending:
            self.pending += self._recv()
        head, _, rest = self.pending.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            rest += self._recv()
        self.pending = rest[length:]
        return _Answer(int(lines[0].split()[1]), rest[:length])

    def _recv(self) -> bytes:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


class _Answer:
    def __init__(self, status_code: int, content: bytes):
        self.status_code, self.content = status_code, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Server:
    """The app under uvicorn on 127.0.0.1, in a thread of this process."""

    def __init__(self, app: Any):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def latency(engine: Any, files: list[tuple[str, bytes]], requests: int, via: str,
            client_kind: str = "raw") -> dict[str, Any]:
    import cv2
    import httpx

    from core.api.app import create_app
    from core.tokens import create_token
    from plugins.species_id.runtime import Runtime
    from plugins.species_id.service import model_for

    model = model_for(Runtime.of(engine).catalogue(), None)
    token = create_token(engine, "contributor", "bench", "bench").token
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(engine)
    name, data = files[0]
    session, feed, output = model.session, model.input_name, model.output_name
    tensor = np.empty((1, *model.input_shape), np.float32)

    def plain() -> float:
        started = time.perf_counter()
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        model.normaliser(pixels, tensor[0])
        session.run([output], {feed: tensor})
        return time.perf_counter() - started

    def measure(post: Callable[[], Any]) -> tuple[list[float], list[float]]:
        for _ in range(5):  # warm-up
            assert post().status_code == 200
            plain()
        endpoint_times, plain_times = [], []

        def endpoint() -> None:
            started = time.perf_counter()
            response = post()
            endpoint_times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text

        for i in range(requests):  # A B B A ...
            if i % 2 == 0:
                endpoint()
                plain_times.append(plain())
            else:
                plain_times.append(plain())
                endpoint()
        return endpoint_times, plain_times

    files_field = [("images", (name, data, "image/jpeg"))]
    if via == "uvicorn":
        with Server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            # the multipart body is encoded once: a client's own encoding is not the endpoint's time
            body = client.build_request("POST", "/api/v1/identify", files=files_field, headers=headers)
            if client_kind == "raw":
                raw, wire = RawClient.prepare(body), RawClient(base)
                try:
                    endpoint_times, plain_times = measure(lambda: wire.send(raw))
                finally:
                    wire.close()
            else:
                content, sent_headers = body.read(), dict(body.headers)
                endpoint_times, plain_times = measure(lambda: client.post("/api/v1/identify", content=content,
                                                                          headers=sent_headers))
    else:
        from fastapi.testclient import TestClient

        with TestClient(app) as client:
            endpoint_times, plain_times = measure(lambda: client.post("/api/v1/identify", files=files_field,
                                                                      headers=headers))
    p50_endpoint = statistics.median(endpoint_times) * 1000
    p50_plain = statistics.median(plain_times) * 1000
    return {
        "via": via, "client": client_kind if via == "uvicorn" else "testclient", "requests": requests, "photo": name, "bytes": len(data),
        "endpoint_p50_ms": round(p50_endpoint, 2), "plain_p50_ms": round(p50_plain, 2),
        "ratio": round(p50_endpoint / p50_plain, 3),
        "paired_ratio": round(statistics.median(a / b for a, b in zip(endpoint_times, plain_times)), 3),
        "endpoint_p95_ms": round(float(np.percentile(endpoint_times, 95)) * 1000, 2),
        "plain_p95_ms": round(float(np.percentile(plain_times, 95)) * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="photos in the throughput run")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--via", choices=("uvicorn", "testclient"), default="uvicorn")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="uvicorn only: a bare HTTP/1.1 socket (default) or httpx")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--spinning", action="store_true", help="let onnxruntime's threads spin between runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-species-") as tmp:
        engine = start_engine(Path(tmp), args.batch_size, args.threads, args.spinning)
        try:
            files = photo_files(args.n)
            started = time.perf_counter()
            from plugins.species_id.runtime import Runtime
            from plugins.species_id.service import model_for

            model = model_for(Runtime.of(engine).catalogue(), None)
            build_s = time.perf_counter() - started
            print(f"species_id bench: {platform.machine()}, {os.cpu_count()} CPUs, onnxruntime "
                  f"{__import__('onnxruntime').__version__}, model {model.spec.name} {model.spec.version} "
                  f"(built and loaded in {build_s:.2f} s); onnxruntime threads {args.threads or 'default'}, "
                  f"spinning {'on' if args.spinning else 'off'} (the plain baseline uses the same session)")
            t = throughput(engine, files, args.batch_size, args.rounds)
            print(f"\n1. enrichment path, {t['images']} decoded photos, batches of {t['batch_size']}, "
                  f"median of {t['rounds']} rounds")
            print(f"   plugin identify():        {t['plugin_images_per_s']:8.1f} images/s")
            print(f"   plain session.run():      {t['plain_images_per_s']:8.1f} images/s (same preprocessed batches)")
            verdict = "ok" if t["ratio"] >= THROUGHPUT_TARGET else "UNDER TARGET"
            print(f"   ratio {t['ratio']:.3f} (target >= {THROUGHPUT_TARGET}): {verdict}; "
                  f"median of the rounds' own ratios {t['paired_ratio']:.3f}")
            print(f"   photo checks (luminance, sharpness, dHash): {t['photo_checks_ms_per_image']:.2f} ms/photo; "
                  f"enrichment with them: {t['enrichment_with_checks_images_per_s']:.1f} images/s")
            lat = latency(engine, files, args.requests, args.via, args.client)
            print(f"\n2. endpoint, one photo ({lat['photo']}, {lat['bytes']} bytes) per request, "
                  f"{lat['requests']} requests via {lat['via']} ({lat['client']} client)")
            print(f"   POST /api/v1/identify p50 {lat['endpoint_p50_ms']:7.2f} ms (p95 {lat['endpoint_p95_ms']:.2f})")
            print(f"   decode+preprocess+run p50 {lat['plain_p50_ms']:7.2f} ms (p95 {lat['plain_p95_ms']:.2f})")
            verdict = "ok" if lat["ratio"] <= LATENCY_TARGET else "OVER TARGET"
            print(f"   ratio {lat['ratio']:.3f} (target <= {LATENCY_TARGET}): {verdict}; "
                  f"median of the pairs' own ratios {lat['paired_ratio']:.3f}")
            if args.json:
                args.json.write_text(json.dumps({"throughput": t, "latency": lat, "cpus": os.cpu_count()}, indent=2))
            return 0 if t["ratio"] >= THROUGHPUT_TARGET and lat["ratio"] <= LATENCY_TARGET else 1
        finally:
            engine.close()


if __name__ == "__main__":
    sys.exit(main())
