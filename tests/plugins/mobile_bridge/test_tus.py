"""tus 1.0 uploads of the mobile bridge, driven by the real ``tuspy`` client against the engine
under uvicorn on loopback (a separate process, sharing this test's database and data folder).

What an app would notice: a chunked upload arrives whole in the media store under its sha256;
bytes of a request cut off mid-body are kept and a new client resumes from the server's offset;
a wrong offset is a 409, a wrong chunk checksum a 460 with the chunk discarded, too much a 413;
an abandoned upload can be terminated or is swept after its Upload-Expires; another account
sees none of it; and 200 MB pass through in bounded server memory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from core.tokens import NewToken, create_token
from plugins.mobile_bridge import tus, tus_store
from tests.support.serving import api_server, proc_memory, server_pid
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
MAX_BYTES = 256 * 1024 * 1024
EXPIRY_H = 2

REGISTRY = f"""
services:
  mobile_bridge:
    summary: the back end for field apps
    config: {{upload_expiry_h: {EXPIRY_H}, max_upload_bytes: {MAX_BYTES}}}
    settings:
      type: object
      properties:
        map_area: {{type: array}}
projects:
  - slug: demo
    name: Demo
    timezone: Europe/Madrid
    services: {{mobile_bridge: {{}}}}
"""


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    return ""


@pytest.fixture(autouse=True)
def no_uploads(engine: Any) -> None:
    """The kit empties the engine's tables, not the plugin's: start each test with no upload."""
    with engine.db.begin() as conn:
        conn.execute(tus_store.uploads.delete())


@pytest.fixture
def server(engine: Any, tmp_path: Path) -> Iterator[str]:
    """The API under uvicorn on loopback (the endpoint's base URL), on ``engine``'s database and data."""
    with api_server(tmp_path, ROOT, {"OBSERVATORY_SERVE_DISPATCHER": "inline"}) as base:
        yield base


@pytest.fixture
def device(engine: Any) -> Callable[[], NewToken]:
    """``device()``: a new account of the demo project with a token (as an app holds)."""
    return lambda: create_token(engine, "contributor", "demo", "phone")


def endpoint(base: str) -> str:
    return base + tus.BASE


def tus_headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", **extra}


def client_for(base: str, token: str) -> TusClient:
    return TusClient(endpoint(base), headers={"Authorization": f"Bearer {token}"})


def metadata_for(data: bytes, name: str = "photo.jpg") -> dict[str, str]:
    return {"filename": name, "filetype": "image/jpeg", "sha256": hashlib.sha256(data).hexdigest()}


def create(base: str, token: str, length: int, **headers: str) -> str:
    response = httpx.post(endpoint(base), headers=tus_headers(token, **{"Upload-Length": str(length), **headers}))
    assert response.status_code == 201, response.text
    return base + response.headers["location"] if response.headers["location"].startswith("/") \
        else response.headers["location"]


def head(url: str, token: str) -> httpx.Response:
    return httpx.head(url, headers=tus_headers(token))


def patch(url: str, token: str, offset: int, body: bytes, **headers: str) -> httpx.Response:
    return httpx.patch(url, content=body, headers=tus_headers(
        token, **{"Upload-Offset": str(offset), "Content-Type": tus.OFFSET_TYPE, **headers}))


def state(url: str, token: str) -> dict[str, Any]:
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def upload_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_photo_sent_in_chunks_arrives_whole_in_the_media_store(server: str, engine: Any, device: Any,
                                                                 photos: dict[str, bytes]) -> None:
    data = photos["astronaut.jpg"]
    phone = device()
    uploader = client_for(server, phone.token).uploader(file_stream=io.BytesIO(data), chunk_size=16 * 1024,
                                                        metadata=metadata_for(data, "astronaut.jpg"))
    uploader.upload()

    sha = hashlib.sha256(data).hexdigest()
    done = state(uploader.url, phone.token)
    assert (done["state"], done["offset"], done["length"], done["sha256"]) == ("complete", len(data), len(data), sha)
    assert done["metadata"] == {"filename": "astronaut.jpg", "filetype": "image/jpeg", "sha256": sha}
    assert len(data) > 5 * 16 * 1024  # it took several PATCH requests
    stored = tus.uploaded_media(engine, phone.account_id, sha)
    assert stored == engine.media.path_for(sha) and stored.read_bytes() == data
    assert not tus_store.part_path(engine, upload_id(uploader.url)).exists()
    finished = head(uploader.url, phone.token)
    assert finished.headers["upload-offset"] == str(len(data)) and "upload-expires" not in finished.headers


def test_options_advertise_the_protocol_and_creation_with_upload_takes_the_first_bytes(
        server: str, engine: Any, device: Any) -> None:
    options = httpx.options(endpoint(server))
    assert options.status_code == 204
    assert options.headers["tus-version"] == "1.0.0"
    assert set(options.headers["tus-extension"].split(",")) == {
        "creation", "creation-with-upload", "checksum", "termination", "expiration"}
    assert options.headers["tus-checksum-algorithm"] == "sha1,sha256"
    assert options.headers["tus-max-size"] == str(MAX_BYTES)

    phone = device()
    body = b"first bytes of a sound recording"
    created = httpx.post(endpoint(server), content=body, headers=tus_headers(
        phone.token, **{"Upload-Length": "100", "Content-Type": tus.OFFSET_TYPE}))
    assert created.status_code == 201 and created.headers["upload-offset"] == str(len(body))
    expires = parsedate_to_datetime(created.headers["upload-expires"])
    assert abs(expires - tus_store.now() - timedelta(hours=EXPIRY_H)) < timedelta(minutes=1)
    url = server + created.headers["location"]
    probe = head(url, phone.token)
    assert (probe.status_code, probe.headers["upload-offset"], probe.headers["upload-length"]) == (200, "32", "100")
    assert probe.headers["cache-control"] == "no-store"

    assert httpx.head(url, headers={"Authorization": f"Bearer {phone.token}"}).status_code == 400
    old_version = httpx.head(url, headers={"Authorization": f"Bearer {phone.token}", "Tus-Resumable": "0.2.2"})
    assert (old_version.status_code, old_version.headers["tus-version"]) == (412, "1.0.0")
    wrong_type = patch(url, phone.token, len(body), b"more", **{"Content-Type": "application/octet-stream"})
    assert wrong_type.status_code == 415


def test_a_request_cut_off_mid_body_keeps_its_bytes_and_a_new_client_resumes(
        server: str, engine: Any, device: Any, photos: dict[str, bytes]) -> None:
    data = photos["coffee.jpg"]
    phone = device()
    url = create(server, phone.token, len(data))
    sent = len(data) // 2 + 12345
    address = urlsplit(url)
    head_lines = [f"PATCH {address.path} HTTP/1.1", f"Host: {address.netloc}", f"Authorization: Bearer {phone.token}",
                  "Tus-Resumable: 1.0.0", "Upload-Offset: 0", f"Content-Type: {tus.OFFSET_TYPE}",
                  f"Content-Length: {len(data)}"]
    part = tus_store.part_path(engine, upload_id(url))
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(("\r\n".join(head_lines) + "\r\n\r\n").encode() + data[:sent])
        # bytes are written as they arrive, before the request ends
        wait_until(lambda: part.stat().st_size == sent, 20, f"the server to write the {sent} bytes sent")
    # the connection is cut with half the body sent: the server keeps what it got
    wait_until(lambda: head(url, phone.token).headers.get("upload-offset") == str(sent), 20,
               f"the server to record the {sent} bytes as the upload's offset")
    resumed = client_for(server, phone.token).uploader(file_stream=io.BytesIO(data), url=url, chunk_size=256 * 1024)
    assert resumed.offset == sent
    resumed.upload()

    sha = hashlib.sha256(data).hexdigest()
    assert state(url, phone.token)["sha256"] == sha
    assert engine.media.path_for(sha).read_bytes() == data


def test_bytes_counted_but_lost_from_disk_are_sent_again(server: str, engine: Any, device: Any,
                                                          photos: dict[str, bytes]) -> None:
    """A server that died after counting bytes that never reached its disk: clients resume from
    what is on disk, never from a gap."""
    data = photos["coffee.jpg"]
    phone = device()
    uploader = client_for(server, phone.token).uploader(file_stream=io.BytesIO(data), chunk_size=32 * 1024)
    uploader.upload(stop_at=64 * 1024)
    os.truncate(tus_store.part_path(engine, upload_id(uploader.url)), 40000)

    assert head(uploader.url, phone.token).headers["upload-offset"] == "40000"
    assert patch(uploader.url, phone.token, 64 * 1024, data[64 * 1024:]).status_code == 409
    resumed = client_for(server, phone.token).uploader(file_stream=io.BytesIO(data), url=uploader.url)
    assert resumed.offset == 40000
    resumed.upload()
    assert engine.media.path_for(hashlib.sha256(data).hexdigest()).read_bytes() == data


def test_clients_without_patch_send_post_with_a_method_override(server: str, engine: Any, device: Any) -> None:
    """tus-java-client falls back to POST + X-HTTP-Method-Override: PATCH on JREs without PATCH,
    and streams chunks with Transfer-Encoding: chunked and Expect: 100-continue."""
    phone = device()
    url = create(server, phone.token, 10)
    chunked = httpx.post(url, content=iter([b"01234", b"567"]), headers=tus_headers(phone.token, **{
        "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0", "Content-Type": tus.OFFSET_TYPE,
        "Expect": "100-continue"}))
    assert (chunked.status_code, chunked.headers["upload-offset"]) == (204, "8")
    assert patch(url, phone.token, 8, b"89").headers["upload-offset"] == "10"
    assert engine.media.path_for(hashlib.sha256(b"0123456789").hexdigest()).read_bytes() == b"0123456789"

    other = create(server, phone.token, 10)
    assert httpx.post(other, headers=tus_headers(phone.token)).status_code == 400
    assert httpx.post(other, headers=tus_headers(phone.token, **{"X-HTTP-Method-Override": "DELETE"})).status_code == 204
    assert head(other, phone.token).status_code == 404


def test_a_wrong_offset_is_a_conflict_and_changes_nothing(server: str, device: Any) -> None:
    phone = device()
    url = create(server, phone.token, 1000)
    assert patch(url, phone.token, 0, b"a" * 100).status_code == 204

    for offset in (0, 50, 200):
        refused = patch(url, phone.token, offset, b"b" * 100)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "offset_mismatch"
        assert refused.headers["upload-offset"] == "100"
    assert head(url, phone.token).headers["upload-offset"] == "100"


def test_a_chunk_whose_checksum_does_not_match_is_discarded(server: str, engine: Any, device: Any,
                                                            photos: dict[str, bytes]) -> None:
    data = photos["rocket.jpg"]
    phone = device()
    url = create(server, phone.token, len(data))
    first, second = data[:40000], data[40000:80000]
    good = f"sha256 {base64.b64encode(hashlib.sha256(first).digest()).decode()}"
    assert patch(url, phone.token, 0, first, **{"Upload-Checksum": good}).status_code == 204

    wrong = f"sha256 {base64.b64encode(hashlib.sha256(b'other bytes').digest()).decode()}"
    refused = patch(url, phone.token, len(first), second, **{"Upload-Checksum": wrong})
    assert refused.status_code == 460 and refused.json()["error"]["code"] == "checksum_mismatch"
    assert head(url, phone.token).headers["upload-offset"] == str(len(first))
    assert tus_store.part_path(engine, upload_id(url)).stat().st_size == len(first)
    unknown = patch(url, phone.token, len(first), second, **{"Upload-Checksum": "md5 " + good.split()[1]})
    assert unknown.status_code == 400

    # tuspy sends sha1 checksums with every chunk when asked to: the rest goes through
    resumed = client_for(server, phone.token).uploader(file_stream=io.BytesIO(data), url=url, chunk_size=32 * 1024,
                                                       upload_checksum=True)
    assert resumed.offset == len(first)
    resumed.upload()
    assert engine.media.path_for(hashlib.sha256(data).hexdigest()).read_bytes() == data


def test_too_much_is_refused_with_413(server: str, engine: Any, device: Any, tmp_path: Path) -> None:
    phone = device()
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(MAX_BYTES + 1)
    with pytest.raises(TusCommunicationError) as refused:
        client_for(server, phone.token).uploader(str(big), chunk_size=1024 * 1024).upload()
    assert refused.value.status_code == 413

    url = create(server, phone.token, 10)
    assert patch(url, phone.token, 0, b"0123456789abc").status_code == 413
    assert head(url, phone.token).headers["upload-offset"] == "0"
    assert patch(url, phone.token, 0, b"0123456789").status_code == 204
    assert patch(url, phone.token, 10, b"x").status_code == 413


def test_an_upload_can_be_terminated(server: str, engine: Any, device: Any, photos: dict[str, bytes]) -> None:
    data = photos["chelsea.jpg"]
    phone = device()
    uploader = client_for(server, phone.token).uploader(file_stream=io.BytesIO(data), chunk_size=16 * 1024)
    uploader.upload(stop_at=32 * 1024)
    part = tus_store.part_path(engine, upload_id(uploader.url))
    assert part.stat().st_size == 32 * 1024

    assert httpx.delete(uploader.url, headers=tus_headers(phone.token)).status_code == 204
    assert head(uploader.url, phone.token).status_code == 404
    assert not part.exists()
    with pytest.raises(TusUploadFailed):
        uploader.upload()


def test_abandoned_uploads_are_swept_after_they_expire(server: str, engine: Any, device: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    phone = device()
    abandoned = create(server, phone.token, 1000)
    assert patch(abandoned, phone.token, 0, b"x" * 300).status_code == 204
    finished = create(server, phone.token, 3)
    assert patch(finished, phone.token, 0, b"abc").status_code == 204
    expires = parsedate_to_datetime(head(abandoned, phone.token).headers["upload-expires"])

    assert tus.sweep_uploads(engine) == 0  # not yet expired
    assert head(abandoned, phone.token).status_code == 200
    later = expires + timedelta(seconds=1)
    monkeypatch.setattr(tus_store, "now", lambda: later)
    result = CliRunner().invoke(tus.sweep_uploads_command, [], obj={})
    assert result.exit_code == 0, result.output
    assert "removed 1 abandoned upload" in result.output
    assert head(abandoned, phone.token).status_code == 404
    assert not tus_store.part_path(engine, upload_id(abandoned)).exists()
    assert head(finished, phone.token).status_code == 200  # finished uploads are kept


def test_another_accounts_upload_is_not_found(server: str, engine: Any, device: Any,
                                              photos: dict[str, bytes]) -> None:
    owner, other = device(), device()
    data = photos["camera.png"]
    uploader = client_for(server, owner.token).uploader(file_stream=io.BytesIO(data), chunk_size=64 * 1024)
    uploader.upload(stop_at=64 * 1024)
    url = uploader.url

    assert head(url, other.token).status_code == 404
    assert patch(url, other.token, 64 * 1024, data[64 * 1024:]).status_code == 404
    assert httpx.get(url, headers={"Authorization": f"Bearer {other.token}"}).status_code == 404
    assert httpx.delete(url, headers=tus_headers(other.token)).status_code == 404
    assert httpx.head(url, headers={"Tus-Resumable": "1.0.0"}).status_code == 401
    assert head(url, owner.token).headers["upload-offset"] == str(64 * 1024)

    uploader.upload()
    sha = hashlib.sha256(data).hexdigest()
    assert tus.uploaded_media(engine, owner.account_id, sha) is not None
    assert tus.uploaded_media(engine, other.account_id, sha) is None


def test_a_200_mb_upload_in_5_mb_chunks_keeps_server_memory_bounded(server: str, engine: Any, device: Any,
                                                                    tmp_path: Path) -> None:
    size, chunk = 200 * 1024 * 1024, 5 * 1024 * 1024
    source = tmp_path / "video.bin"
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with source.open("wb") as fh:
        for i in range(size // len(block)):
            piece = i.to_bytes(8, "big") + block[8:]
            fh.write(piece)
            digest.update(piece)
    pid = server_pid(int(server.rsplit(":", 1)[1]))
    phone = device()
    client_for(server, phone.token).uploader(str(source), chunk_size=chunk).upload(stop_at=chunk)  # warm up
    before = proc_memory(pid, "VmRSS")

    uploader = client_for(server, phone.token).uploader(str(source), chunk_size=chunk,
                                                        metadata={"sha256": digest.hexdigest()})
    uploader.upload()

    growth = proc_memory(pid, "VmHWM") - before
    assert state(uploader.url, phone.token)["state"] == "complete"
    assert engine.media.path_for(digest.hexdigest()).stat().st_size == size
    assert growth < 64 * 1024 * 1024, f"the server grew by {growth / 2**20:.1f} MB"


def test_a_file_that_is_not_the_announced_one_fails_with_a_reason(server: str, engine: Any, device: Any) -> None:
    phone = device()
    announced = hashlib.sha256(b"the photo the app meant").hexdigest()
    uploader = client_for(server, phone.token).uploader(
        file_stream=io.BytesIO(b"some other bytes"), metadata={"sha256": announced})
    with pytest.raises(TusUploadFailed) as failed:
        uploader.upload()
    assert failed.value.status_code == 422

    after = state(uploader.url, phone.token)
    assert after["state"] == "failed" and announced in after["reason"]
    assert head(uploader.url, phone.token).status_code == 410
    assert tus.uploaded_media(engine, phone.account_id, hashlib.sha256(b"some other bytes").hexdigest()) is None
