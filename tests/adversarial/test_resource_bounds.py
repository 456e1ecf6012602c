"""The largest request each core route accepts stays under a stated memory and time (issue 9,
"Resource bounds").

A real server (uvicorn in a subprocess, on the test database) is sent, route by route, the
largest request it accepts: fields at ``OBSERVATORY_MAX_FIELDS_BYTES``, media at
``OBSERVATORY_MAX_UPLOAD_BYTES`` in a body at ``OBSERVATORY_MAX_REQUEST_BYTES``, pages at their
largest ``limit`` with every row at the largest fields. Its peak memory is read from
``/proc/PID/status`` (VmHWM, reset before each request through ``/proc/PID/clear_refs``) and
compared with its memory before the request. The limits are lowered for the server under test
(it stays quick); every bound is written in terms of them, so it scales with the setting.

Fields come in two shapes: long strings (about one byte of memory a byte of JSON) and arrays of
small numbers (``[0,0,...]``: two bytes of JSON, eight of a Python list, the most memory a byte
of JSON can cost).
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa

from core.db.models import AuditEntry, Observation
from core.engine import Engine
from core.export import LARGE_BATCH
from core.tokens import create_token
from tests.support.serving import ServerDidNotStart, api_server, proc_memory, server_pid

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads /proc/PID/status (Linux)"),
]

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
KiB, MiB = 1024, 1024 * 1024

# The limits of the server under test, lowered from the defaults (256 KiB, 20 MiB, 100 MiB) so
# that the test is quick; the bounds below are multiples of them.
MAX_FIELDS_BYTES = 64 * KiB
MAX_UPLOAD_BYTES = 4 * MiB
MAX_REQUEST_BYTES = 16 * MiB
PAGE = 200  # the list's largest limit (core/api/routes/observations.py)
AUDIT_PAGE = 500  # the audit log's largest limit (core/api/routes/audit.py)

# Bounds on the server's peak memory growth, as multiples of the fields a request or an answer
# holds as JSON. Measured on SQLite and PostgreSQL (2 cores): a page of 200 rows (12.6 MiB) cost
# +41..58 MiB with strings and +77..100 MiB with dense arrays (each `0,` is an 8-byte list slot
# in each copy: the database row, the answer's dictionary, its JSON), i.e. up to 8x; an audit
# page 6x, an export's batch 7x. Memory does not vary with a machine's load: 12x is 1.5x the
# worst measured.
FIELDS_FACTOR = 12
# a multipart create holds the body, its parsed parts and the stored files: 2.0-2.3x its bytes measured
BODY_FACTOR = 6
# a media file is read whole (1x measured), and cleaned once into a copy
MEDIA_FACTOR = 5
# what a server allocates on any request (imports already done, buffers, the allocator's arenas)
SLACK = 24 * MiB
# An export streams in batches: its memory must not grow with the number of rows.
EXPORT_ROWS = (2_000, 20_000)
EXPORT_GROWTH_RATIO = 1.5
# rows an export holds at once when their fields are large (core/export.py), as many as a list page
EXPORT_BATCH = LARGE_BATCH
# Wall time: measured under 2.7 s a request, exports 0.25-0.65 ms a row; a loaded CI machine
# gets several times that.
SECONDS = 10.0
EXPORT_SECONDS_PER_ROW = 0.005

# glibc keeps freed memory for reuse, and raises its mmap threshold after each large free: a
# request could then reuse what an earlier one left and look free. With fixed thresholds, large
# blocks are mapped and unmapped and the heap's top is trimmed, so memory before each request is
# what the server really holds, and the peak above it is that request's own.
GIVE_BACK = {"MALLOC_MMAP_THRESHOLD_": str(128 * KiB), "MALLOC_TRIM_THRESHOLD_": str(128 * KiB)}

REGISTRY = """
projects:
  - slug: open
    name: Open
    auto_publish: true
    services: {}
"""


# ---- what the largest requests hold ----------------------------------------------------------

def compact(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def largest_fields(shape: str, limit: int = MAX_FIELDS_BYTES) -> dict[str, Any]:
    """Fields of exactly ``limit`` bytes as compact JSON: ``strings`` (a few long ones, each
    within the one-value limit of 64 KiB) or ``dense`` (one array of zeros)."""
    if shape == "dense":
        fields: dict[str, Any] = {"z": []}
        fields["z"] = [0] * ((limit - compact(fields) + 1) // 2)
        if compact(fields) < limit:  # one byte short: a two-digit member
            fields["z"][0] = 10
    else:
        fields, i = {}, 0
        while compact(fields) < limit:
            key = f"s{i}"
            fields[key] = ""
            fields[key] = "x" * min(64 * KiB - 1, limit - compact(fields))
            i += 1
    assert compact(fields) == limit, (shape, compact(fields))
    return fields


def padded_png(size: int) -> bytes:
    """A real PNG (random pixels, stored uncompressed) of exactly ``size`` bytes: the largest
    accepted file, whose cleaned public copy is as large (pixels are kept, metadata dropped)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    width = 1024
    row = 1 + 3 * width
    # signature, IHDR, IEND and the IDAT chunk's 12 bytes; deflate's stored blocks add 5 bytes a
    # 64 KiB and the zlib stream 6
    fixed = 8 + 25 + 12 + 12 + 6
    height = 1
    while fixed + (height + 1) * row + 5 * ((height + 1) * row // 65535 + 1) <= size:
        height += 1
    raw = os.urandom(height * row)
    raw = b"".join(b"\x00" + raw[i * row + 1:(i + 1) * row] for i in range(height))
    idat = zlib.compress(raw, 0)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
    pad = size - len(png) - 12 - 12
    assert pad >= 0, (size, len(png))
    return png + chunk(b"zzPd", os.urandom(pad)) + chunk(b"IEND", b"")  # a private ancillary chunk


# ---- a real server and its memory ------------------------------------------------------------

class Served:
    def __init__(self, base: str, engine: Engine):
        self.base, self.engine = base, engine
        self.pid = server_pid(int(base.rsplit(":", 1)[1]))
        self.client = httpx.Client(base_url=base, timeout=120)
        self.operator = {"Authorization": f"Bearer {create_token(engine, 'operator', None, 'operator').token}"}
        self.figures: list[str] = []

    def measure(self, what: str, send: Callable[[], httpx.Response]) -> tuple[httpx.Response, int, float]:
        """The answer to ``send()``, the server's peak memory growth over the request (bytes) and
        its wall time (seconds); the answer's body is read in full."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = proc_memory(self.pid, "VmRSS")
        started = time.perf_counter()
        answer = send()
        spent = time.perf_counter() - started
        grew = max(0, proc_memory(self.pid, "VmHWM") - before)
        self.figures.append(f"{what}: {answer.status_code}, {len(answer.content) / MiB:.1f} MiB answered, "
                            f"+{grew / MiB:.0f} MiB, {spent:.2f} s")
        print(self.figures[-1])
        return answer, grew, spent


@pytest.fixture
def served(make_engine: Callable[..., Engine], tmp_path: Path) -> Iterator[Served]:
    engine = make_engine(REGISTRY, rate_limit_per_minute=0, max_fields_bytes=MAX_FIELDS_BYTES,
                         max_upload_bytes=MAX_UPLOAD_BYTES, max_request_bytes=MAX_REQUEST_BYTES)
    try:
        with api_server(tmp_path, ROOT, {"OBSERVATORY_SERVE_DISPATCHER": "inline", **GIVE_BACK}) as base:
            served = Served(base, engine)
            assert served.client.get(f"{API}/projects/open/observations").status_code == 200  # warm
            yield served
            served.client.close()
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))


def seed(engine: Engine, count: int, fields: dict[str, Any], *, batch: int = 1000) -> list[int]:
    """``count`` published observations of project ``open`` holding ``fields``, written straight to
    the database (what submit stores, without its checks' time); their ids."""
    now = datetime.now(timezone.utc)
    table = Observation.__table__
    with engine.db.begin() as conn:
        first = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
        for start in range(0, count, batch):
            conn.execute(table.insert(), [
                {"project": "open", "content_hash": f"{first + i:064x}", "kind": "generic",
                 "observed_at": now - timedelta(minutes=i), "lat": 41.391234, "lon": 2.171234, "accuracy_m": 5.0,
                 "fields": fields, "status": "published", "grade": "casual", "created_at": now, "updated_at": now}
                for i in range(start, min(count, start + batch))])
        ids = conn.execute(sa.select(table.c.id).where(table.c.id > first).order_by(table.c.id)).scalars().all()
    return list(ids)


DRAFT = {"observed_at": "2026-05-01T09:30:00+02:00", "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 8}}


# ---- the routes ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["strings", "dense"])
def test_create_read_and_patch_with_the_largest_fields(served: Served, shape: str) -> None:
    fields = largest_fields(shape)
    bound = FIELDS_FACTOR * MAX_FIELDS_BYTES + SLACK
    url = f"{API}/projects/open/observations"
    warm = served.client.post(url, json={**DRAFT, "fields": {"note": "warm"}}, headers=served.operator)
    assert warm.status_code == 201, warm.text

    # one byte more is refused: these are the largest accepted
    over = {**fields, "s": "x"} if shape == "strings" else {"z": fields["z"] + [0]}
    refused = served.client.post(url, json={**DRAFT, "fields": over}, headers=served.operator)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_failed", refused.text[:300]

    created, grew, spent = served.measure(f"POST json, {shape}", lambda: served.client.post(
        url, json={**DRAFT, "fields": fields}, headers=served.operator))
    assert created.status_code == 201, created.text[:300]
    assert created.json()["fields"] == fields
    assert grew < bound and spent < SECONDS, (grew / MiB, spent)

    obs_id = created.json()["id"]
    read, grew, spent = served.measure(f"GET one, {shape}", lambda: served.client.get(f"{API}/observations/{obs_id}"))
    assert read.status_code == 200 and read.json()["fields"] == fields
    assert grew < bound and spent < SECONDS, (grew / MiB, spent)

    # PATCH: every field replaced by another of the same largest size
    other = largest_fields(shape)
    if shape == "dense":
        other["z"][-1] = 1
    else:
        other = {k: v.replace("x", "y") for k, v in other.items()}
    patched, grew, spent = served.measure(f"PATCH, {shape}", lambda: served.client.patch(
        f"{API}/observations/{obs_id}", json={"fields": other}, headers=served.operator))
    assert patched.status_code == 200, patched.text[:300]
    assert patched.json()["fields"] == other
    assert grew < bound and spent < SECONDS, (grew / MiB, spent)


def test_multipart_create_with_the_largest_body_and_the_media_it_serves(served: Served) -> None:
    url = f"{API}/projects/open/observations"
    draft = json.dumps({**DRAFT, "fields": largest_fields("strings")})
    # as many files of the largest accepted size as the largest body holds (multipart's own bytes
    # take part of the last one's place)
    count = MAX_REQUEST_BYTES // MAX_UPLOAD_BYTES
    files = [padded_png(MAX_UPLOAD_BYTES) for _ in range(count - 1)]
    request = httpx.Request("POST", "http://x", data={"draft": draft},
                            files=[("media", (f"{i}.png", f, "image/png")) for i, f in enumerate(files)])
    request.read()
    files.append(padded_png(MAX_REQUEST_BYTES - len(request.content) - 512))
    parts = [("media", (f"{i}.png", f, "image/png")) for i, f in enumerate(files)]
    body = httpx.Request("POST", "http://x", data={"draft": draft}, files=parts)
    body.read()
    assert MAX_REQUEST_BYTES - 1024 < len(body.content) <= MAX_REQUEST_BYTES, len(body.content)

    too_big = served.client.post(url, data={"draft": draft}, headers=served.operator,
                                 files=[("media", ("big.png", padded_png(MAX_UPLOAD_BYTES + 1), "image/png"))])
    assert too_big.status_code == 413, too_big.text[:300]
    assert too_big.json()["error"]["details"][0]["code"] == "media_too_large"

    created, grew, spent = served.measure("POST multipart, largest body", lambda: served.client.post(
        url, data={"draft": draft}, files=parts, headers=served.operator))
    assert created.status_code == 201, created.text[:300]
    assert [m["size"] for m in created.json()["media"]] == [len(f) for f in files]
    bound = BODY_FACTOR * MAX_REQUEST_BYTES + SLACK
    assert grew < bound and spent < SECONDS, (grew / MiB, spent)

    # the largest file, to the public: cleaned on first request (the original read, a copy
    # written), then served from the kept copy
    media = created.json()["media"][0]
    assert media["size"] == MAX_UPLOAD_BYTES
    for when in ("first", "again"):
        answer, grew, spent = served.measure(f"GET media public, {when}", lambda: served.client.get(media["url"]))
        assert answer.status_code == 200, answer.text[:300]
        assert MAX_UPLOAD_BYTES - 64 * KiB < len(answer.content) < MAX_UPLOAD_BYTES  # the padding chunk dropped
        assert grew < MEDIA_FACTOR * MAX_UPLOAD_BYTES + SLACK and spent < SECONDS, (grew / MiB, spent)
    answer, grew, spent = served.measure("GET media as stored", lambda: served.client.get(
        media["url"], headers=served.operator))
    assert answer.status_code == 200 and len(answer.content) == MAX_UPLOAD_BYTES
    assert grew < MEDIA_FACTOR * MAX_UPLOAD_BYTES + SLACK and spent < SECONDS, (grew / MiB, spent)


@pytest.mark.parametrize("shape", ["strings", "dense"])
def test_the_largest_list_page(served: Served, shape: str) -> None:
    fields = largest_fields(shape)
    seed(served.engine, PAGE + 1, fields)
    url = f"{API}/projects/open/observations?limit={PAGE}"
    for who, headers in (("anonymous", {}), ("operator", served.operator)):
        page, grew, spent = served.measure(f"GET list {PAGE}, {shape}, {who}",
                                           lambda: served.client.get(url, headers=headers))
        assert page.status_code == 200, page.text[:300]
        items = page.json()["items"]
        # a page stops at OBSERVATORY_MAX_PAGE_BYTES (8 MiB) of fields: fewer than PAGE rows of these
        assert 1 <= len(items) < PAGE and all(item["fields"] == fields for item in items)
        assert len(items) * MAX_FIELDS_BYTES <= 8 * MiB + MAX_FIELDS_BYTES
        assert page.json()["next_cursor"]
        bound = FIELDS_FACTOR * PAGE * MAX_FIELDS_BYTES + SLACK
        assert grew < bound, f"a page of {PAGE} rows grew the server by {grew / MiB:.0f} MiB (bound {bound / MiB:.0f})"
        assert spent < SECONDS


def test_the_largest_audit_page(served: Served) -> None:
    """Each entry of an edit holds the fields before and after: 2 x the largest fields, so 500 of
    them would be 1000 x max_fields_bytes (250 MiB at the defaults). A page stops at the fields
    of a page of observations, and its cursor leads on without a gap."""
    before, after = largest_fields("dense"), largest_fields("strings")
    (obs_id,) = seed(served.engine, 1, after)
    now = datetime.now(timezone.utc)
    snapshot = {"status": "published", "grade": "casual", "kind": "generic", "observed_at": now.isoformat(),
                "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 5.0}, "media": []}
    with served.engine.db.begin() as conn:
        conn.execute(AuditEntry.__table__.insert(), [
            {"project": "open", "observation_id": obs_id, "actor": "operator", "action": "edit", "at": now,
             "before": {**snapshot, "fields": before}, "after": {**snapshot, "fields": after}}
            for _ in range(AUDIT_PAGE + 1)])
    url = f"{API}/projects/open/audit?limit={AUDIT_PAGE}"
    page, grew, spent = served.measure(f"GET audit {AUDIT_PAGE}", lambda: served.client.get(url, headers=served.operator))
    assert page.status_code == 200, page.text[:300]
    items = page.json()["items"]
    assert 0 < len(items) <= PAGE // 2 and page.json()["next_cursor"]
    assert all(item["before"]["fields"] == before and item["after"]["fields"] == after for item in items)
    bound = FIELDS_FACTOR * PAGE * MAX_FIELDS_BYTES + SLACK
    assert grew < bound, f"an audit page grew the server by {grew / MiB:.0f} MiB (bound {bound / MiB:.0f})"
    assert spent < SECONDS

    following = served.client.get(f"{url}&before_id={page.json()['next_cursor']}", headers=served.operator)
    assert following.status_code == 200
    assert following.json()["items"][0]["id"] == items[-1]["id"] - 1


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_exports_stay_flat_as_rows_grow(served: Served, fmt: str) -> None:
    fields = {"note": "a fox crossing the path", "count": 2, "tags": ["mammal", "dusk"]}
    url = f"{API}/projects/open/export?format={fmt}"
    growth, seeded = {}, 0
    for rows in EXPORT_ROWS:
        seed(served.engine, rows - seeded, fields, batch=5000)
        seeded = rows
        answer, grew, spent = served.measure(f"GET export {fmt}, {rows} rows", lambda: served.client.get(url))
        assert answer.status_code == 200
        lines = answer.text.count("\n") if fmt == "csv" else answer.text.count('"Feature"')
        assert lines == rows + (1 if fmt == "csv" else 0), lines
        assert spent < SECONDS + EXPORT_SECONDS_PER_ROW * rows, spent
        growth[rows] = grew
    small, large = (growth[n] for n in EXPORT_ROWS)
    assert large < EXPORT_GROWTH_RATIO * small + SLACK, (
        f"{EXPORT_ROWS[1]} rows took +{large / MiB:.0f} MiB against +{small / MiB:.0f} MiB for {EXPORT_ROWS[0]}")


def test_an_export_of_rows_at_the_largest_fields(served: Served) -> None:
    """An export holds one batch of rows at a time: its memory is bounded by the batch's fields."""
    fields = largest_fields("dense")
    seed(served.engine, EXPORT_BATCH + 100, fields, batch=100)
    answer, grew, spent = served.measure(f"GET export csv, {EXPORT_BATCH + 100} rows at the largest fields",
                                         lambda: served.client.get(f"{API}/projects/open/export?format=csv"))
    assert answer.status_code == 200
    bound = FIELDS_FACTOR * EXPORT_BATCH * MAX_FIELDS_BYTES + SLACK
    assert grew < bound, f"the export grew the server by {grew / MiB:.0f} MiB (bound {bound / MiB:.0f})"
