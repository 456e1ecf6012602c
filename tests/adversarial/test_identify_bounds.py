"""``POST /api/v1/identify`` cannot be made to take unbounded memory (issue 9, finding 5).

Five 80-megapixel PNGs of one flat colour make a 1.2 MB upload, within every byte limit, that
decodes to 1.2 GB of pixels. A real server (uvicorn in a subprocess) is attacked and its memory
read from ``/proc/PID/status``: the request is refused by the pixel budget (413) before anything
is decoded, the largest request the budget accepts stays under the bound the docs state, and so
do several such requests at once (the process's decoding gate lets one through at a time). A
large JPEG is decoded reduced by libjpeg and identified as the small one is.
"""

from __future__ import annotations

import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from core.engine import Engine
from core.tokens import create_token
from plugins.species_id import model_build
from tests.plugins.species_id.conftest import link_model, species_registry
from tests.support.serving import ServerDidNotStart, api_server, proc_memory, server_pid

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/identify"
SIDE_W, SIDE_H = 10_000, 8_000  # 80,000,000 pixels: the engine's default max_image_pixels, no more
MB = 1024 * 1024
# docs/species_id.md, "Resource bounds": one decoding holds about 3.2 bytes a pixel of the photo
# (PNG, WebP, GIF, progressive JPEG: the whole photo; a sequential JPEG at its reduced scale), and
# a process decodes at most `decode_pixels` (100 million) at once; the rest of a request (its
# body, the reduced photos, the answer) is a few times its upload.
BYTES_PER_PIXEL = 3.2
SLACK = 64 * MB

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status (Linux)")


def flat_png() -> bytes:
    """An 80-megapixel PNG of one colour, written row by row (no 240 MB array to encode)."""
    row = b"\x00" + bytes((200, 120, 40)) * SIDE_W  # filter type 0, then RGB
    packer = zlib.compressobj(9)
    idat = b"".join([packer.compress(row) for _ in range(SIDE_H)] + [packer.flush()])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", SIDE_W, SIDE_H, 8, 2, 0, 0, 0)  # 8 bits, RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def huge_pngs() -> list[bytes]:
    """The attack's five 80-megapixel PNGs (one, made once per session, sent five times)."""
    return [flat_png()] * 5


@pytest.fixture(scope="session")
def cats() -> dict[str, bytes]:
    """Chelsea as a small JPEG and upscaled 16 times (7216×4800, 34.6 megapixels)."""
    import cv2
    import skimage.data

    small = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
    large = cv2.resize(small, None, fx=16, fy=16, interpolation=cv2.INTER_CUBIC)
    encode = lambda image: cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()  # noqa: E731
    return {"small": encode(small), "large": encode(large)}


@pytest.fixture(scope="session")
def built_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_build.build_default_model(tmp_path_factory.mktemp("identify_bounds_model"))


def memory(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of ``pid``, in bytes."""
    return {key: proc_memory(pid, key) for key in ("VmRSS", "VmHWM")}


class Served:
    def __init__(self, base: str, token: str):
        self.base, self.headers = base, {"Authorization": f"Bearer {token}"}
        self.pid = server_pid(int(base.rsplit(":", 1)[1]))

    def identify(self, *photos: tuple[str, bytes], **fields: str) -> httpx.Response:
        files = [("images", (name, data, "application/octet-stream")) for name, data in photos]
        return httpx.post(f"{self.base}{URL}", files=files, data=fields, headers=self.headers, timeout=120)

    def growth(self, send: Callable[[], Any]) -> tuple[Any, int, float]:
        """What ``send()`` returned, how far the server's peak memory rose above its memory before
        (bytes), and the seconds it took."""
        before = memory(self.pid)["VmRSS"]
        started = time.perf_counter()
        answer = send()
        spent = time.perf_counter() - started
        return answer, max(0, memory(self.pid)["VmHWM"] - before), spent


@pytest.fixture
def served(make_engine: Callable[..., Engine], built_model: Path, tmp_path: Path) -> Iterator[Served]:
    engine = make_engine(species_registry({"wildlife": {}}), rate_limit_per_minute=0)
    link_model(engine.settings.data_dir, built_model)
    token = create_token(engine, "contributor", "wildlife", "attacker").token
    try:
        with api_server(tmp_path, ROOT, {"OBSERVATORY_SERVE_DISPATCHER": "inline"}) as base:
            yield Served(base, token)
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))


def test_five_80_megapixel_pngs_are_refused_before_decoding(served: Served, huge_pngs: list[bytes],
                                                            cats: dict[str, bytes]) -> None:
    assert sum(map(len, huge_pngs)) < 2 * MB  # the attack is small on the wire
    warm = served.identify(("cat.jpg", cats["small"]))  # model loaded, OpenCV imported
    assert warm.status_code == 200, warm.text

    response, grew, spent = served.growth(lambda: served.identify(*[(f"flat{i}.png", d) for i, d in enumerate(huge_pngs)]))
    print(f"\nfive 80-megapixel PNGs: {response.status_code} in {spent:.2f} s, server peak +{grew / MB:.0f} MB")
    assert response.status_code == 413, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    (detail,) = error["details"]
    assert detail["path"] == ["images"] and detail["code"] == "too_many_pixels"
    assert "400,000,000 pixels" in detail["message"] and "100,000,000" in detail["message"]
    assert grew < SLACK, f"the refused request grew the server by {grew / MB:.0f} MB"
    assert spent < 5, f"the refusal took {spent:.1f} s"


def test_the_largest_accepted_request_stays_under_its_bound(served: Served, huge_pngs: list[bytes],
                                                            cats: dict[str, bytes]) -> None:
    assert served.identify(("cat.jpg", cats["small"])).status_code == 200
    bound = BYTES_PER_PIXEL * SIDE_W * SIDE_H + SLACK  # one 80-megapixel PNG: within the 100 million budget

    response, grew, _ = served.growth(lambda: served.identify(("flat.png", huge_pngs[0]), ("cat.jpg", cats["small"]),
                                                              no_reject="true"))
    print(f"\none 80-megapixel PNG and a cat: {response.status_code}, server peak +{grew / MB:.0f} MB")
    assert response.status_code == 200, response.text[:500]
    assert grew < bound, f"one 80-megapixel PNG grew the server by {grew / MB:.0f} MB (bound {bound / MB:.0f} MB)"

    # three such requests at once: the decoding gate (100 million pixels) lets one decode at a time
    with ThreadPoolExecutor(3) as pool:
        answers, grew, _ = served.growth(lambda: list(pool.map(
            lambda i: served.identify((f"flat{i}.png", huge_pngs[i])), range(3))))
    print(f"three at once: {[a.status_code for a in answers]}, server peak +{grew / MB:.0f} MB")
    assert [a.status_code for a in answers] == [200] * 3, [a.text[:200] for a in answers]
    assert grew < bound + 2 * SLACK, f"three at once grew the server by {grew / MB:.0f} MB (bound {bound / MB:.0f} MB)"


def test_a_large_jpeg_is_decoded_reduced_and_identified_as_the_small_one(served: Served,
                                                                       cats: dict[str, bytes]) -> None:
    from plugins.species_id.inference import decode, decode_cost

    assert decode(cats["large"], 7216, 4800, min_side=256).shape[:2] == (600, 902)  # libjpeg at 1/8
    assert decode_cost(cats["large"], 7216, 4800, 256) == 902 * 600

    small = served.identify(("cat.jpg", cats["small"]))
    assert small.status_code == 200
    large, grew, _ = served.growth(lambda: served.identify(("cat.jpg", cats["large"])))
    print(f"\n34.6-megapixel JPEG: {large.status_code}, server peak +{grew / MB:.0f} MB")
    assert large.status_code == 200, large.text[:500]
    a, b = small.json(), large.json()
    assert a["bestMatch"] == b["bestMatch"] == "Felis catus"
    assert abs(a["results"][0]["score"] - b["results"][0]["score"]) < 0.1
    full = 7216 * 4800 * 3
    assert grew < full / 2, f"the 34.6-megapixel JPEG grew the server by {grew / MB:.0f} MB (decoded whole: {full / MB:.0f})"
