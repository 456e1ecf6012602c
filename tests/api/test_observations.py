"""Observations over HTTP: create, retry, conflict, limits, filters, pagination, edits, media."""

from __future__ import annotations

import json
import struct
import threading
import zlib

import pytest

from tests.conftest import draft

API = "/api/v1"


@pytest.fixture
def contributor(make_token) -> str:
    return make_token("contributor", "alpha")


def post(client, auth, token, body=None, files=None, project="alpha", **kwargs):
    url = f"{API}/projects/{project}/observations"
    if files is not None:
        return client.post(url, data={"draft": json.dumps(body)}, files=files, headers=auth(token), **kwargs)
    return client.post(url, json=body, headers=auth(token), **kwargs)


def test_create_with_photos_then_download_them(client, auth, contributor, photos):
    response = post(client, auth, contributor, draft(client_id="c1"),
                    files=[("media", ("cat.jpg", photos["chelsea.jpg"], "image/jpeg")),
                           ("media", ("cam.png", photos["camera.png"], "image/png"))])
    assert response.status_code == 201, response.text
    obs = response.json()
    assert [m["content_type"] for m in obs["media"]] == ["image/jpeg", "image/png"]
    assert obs["enrichments"]["recorder"]["result"] == {"seen": obs["id"], "media": 2}
    download = client.get(obs["media"][0]["url"], headers=auth(contributor))
    assert download.status_code == 200
    assert download.content == photos["chelsea.jpg"]
    assert download.headers["content-type"] == "image/jpeg"


def test_a_retry_returns_the_first_and_other_content_is_409(client, auth, contributor):
    first = post(client, auth, contributor, draft(client_id="r1"))
    again = post(client, auth, contributor, draft(client_id="r1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    conflict = post(client, auth, contributor, draft(client_id="r1", fields={"note": "else"}))
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "client_id_conflict"


def test_concurrent_retries_over_http_store_one(client, auth, contributor, engine):
    codes, ids = [], []
    barrier = threading.Barrier(6)

    def send():
        barrier.wait()
        r = post(client, auth, contributor, draft(client_id="same"))
        codes.append(r.status_code)
        ids.append(r.json()["id"])

    threads = [threading.Thread(target=send) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(codes) == [200] * 5 + [201]
    assert len(set(ids)) == 1


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        (lambda c, h: c.post(f"{API}/projects/alpha/observations", content=b"{broken", headers={**h, "Content-Type": "application/json"}), 422, "validation_failed"),
        (lambda c, h: c.post(f"{API}/projects/alpha/observations", content=b"x=1", headers={**h, "Content-Type": "text/plain"}), 415, "unsupported_media_type"),
        (lambda c, h: c.post(f"{API}/projects/alpha/observations", json=draft(location={"lat": 12, "lon": 200}), headers=h), 422, "validation_failed"),
        (lambda c, h: c.post(f"{API}/projects/alpha/observations", data={"nodraft": "1"}, files=[("media", ("a.png", b"x", "image/png"))], headers=h), 422, "validation_failed"),
        (lambda c, h: c.post(f"{API}/projects/nope/observations", json=draft(), headers=h), 404, "unknown_project"),
    ],
)
def test_bad_requests_get_json_errors_and_store_nothing(client, auth, contributor, send, status, code):
    response = send(client, auth(contributor))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    listed = client.get(f"{API}/projects/alpha/observations", headers=auth(contributor)).json()["items"]
    assert listed == []


def test_validation_errors_carry_the_field_path(client, auth, contributor):
    response = post(client, auth, contributor, draft(location={"lat": 91, "lon": 2}))
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == ["location", "lat"]
    assert "less than or equal to 90" in detail["message"]


def test_an_upload_over_the_limit_is_413(engine, client, auth, contributor, photos):
    engine.settings.max_upload_bytes = 10_000
    response = post(client, auth, contributor, draft(), files=[("media", ("cat.jpg", photos["chelsea.jpg"], "image/jpeg"))])
    assert response.status_code == 413
    assert "over the limit of 10000 bytes" in response.text


def test_a_decompression_bomb_is_refused_before_decoding(client, auth, contributor):
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\0" * 10_000)) + chunk(b"IEND", b"")
    response = post(client, auth, contributor, draft(), files=[("media", ("bomb.png", bomb, "image/png"))])
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["code"] == "media_too_many_pixels"


def test_the_media_type_is_sniffed_not_trusted(client, auth, contributor, photos):
    response = post(client, auth, contributor, draft(),
                    files=[("media", ("cat.png", photos["chelsea.jpg"], "image/png"))])
    assert response.status_code == 422
    assert "its bytes are image/jpeg" in response.json()["error"]["details"][0]["message"]


def test_filters_and_cursor_pagination(client, auth, make_token, engine):
    mod = make_token("moderator", "alpha")
    made = []
    for i in range(7):
        body = draft(observed_at=f"2026-05-0{i + 1}T12:00:00+00:00", location={"lat": 41 + i / 10, "lon": 2.0},
                     fields={"i": i})
        made.append(post(client, auth, mod, body).json()["id"])
    seen, cursor = [], None
    while True:
        page = client.get(f"{API}/projects/alpha/observations", params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                          headers=auth(mod)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True), "newest first, every one exactly once"

    def ids(**params):
        r = client.get(f"{API}/projects/alpha/observations", params=params, headers=auth(mod))
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["items"]]

    assert ids(since="2026-05-03T00:00:00Z", until="2026-05-05T00:00:00Z") == [made[3], made[2]]
    assert ids(bbox="1.9,41.45,2.1,41.65") == [made[6], made[5]]
    assert ids(status="published") == []
    assert ids(grade="needs_id") == sorted(made, reverse=True)
    assert ids(kind="generic") == sorted(made, reverse=True)
    bad = client.get(f"{API}/projects/alpha/observations", params={"bbox": "1,2,3"}, headers=auth(mod))
    assert bad.status_code == 422 and "bbox" in bad.json()["error"]["message"]  # shape: the schema's pattern
    bad = client.get(f"{API}/projects/alpha/observations", params={"bbox": "1,50,3,40"}, headers=auth(mod))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_bbox"  # south > north
    bad = client.get(f"{API}/projects/alpha/observations", params={"until": "0.5"}, headers=auth(mod))
    assert bad.status_code == 422 and "ISO 8601" in bad.json()["error"]["message"]  # not read as a Unix time
    bad = client.get(f"{API}/projects/alpha/observations", params={"stauts": "pending"}, headers=auth(mod))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_parameter"  # a misspelt filter
    bad = client.get(f"{API}/projects/alpha/observations", params={"cursor": "!!"}, headers=auth(mod))
    assert bad.status_code == 422


def test_patch_validates_again_and_reruns_enrichments(client, auth, contributor):
    obs = post(client, auth, contributor, draft()).json()
    response = client.patch(f"{API}/observations/{obs['id']}", json={"fields": {"note": "otter", "count": 2}},
                            headers=auth(contributor))
    assert response.status_code == 200
    body = response.json()
    assert body["fields"] == {"note": "otter", "count": 2}
    assert body["enrichments"]["recorder"]["status"] == "done"
    refused = client.patch(f"{API}/observations/{obs['id']}", json={"fields": {"reject_me": True}},
                           headers=auth(contributor))
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["path"] == ["fields", "reject_me"]


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_every_route_is_documented_with_examples(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ["/api/v1/projects", "/api/v1/projects/{slug}", "/api/v1/projects/{slug}/observations",
                 "/api/v1/observations/{obs_id}", "/api/v1/observations/{obs_id}/moderation",
                 "/api/v1/observations/{obs_id}/media/{media_id}", "/api/v1/projects/{slug}/audit",
                 "/api/v1/plugins", "/healthz", "/readyz"]:
        assert path in paths, path
        for operation in paths[path].values():
            assert operation.get("summary"), (path, operation)
    schemas = spec["components"]["schemas"]
    assert schemas["DraftIn"]["examples"] and schemas["ObservationOut"]["examples"]
    assert schemas["ModerationIn"]["examples"] and schemas["ObservationPatch"]["examples"]
    create = paths["/api/v1/projects/{slug}/observations"]["post"]["requestBody"]["content"]
    assert set(create) == {"application/json", "multipart/form-data"}
    assert client.get("/docs").status_code == 200


def test_any_request_body_over_the_limit_is_413(make_engine, make_token):
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from tests.api.conftest import API_REGISTRY

    engine = make_engine(API_REGISTRY, max_request_bytes=2_000)
    from core.tokens import create_token

    token = create_token(engine, "operator").token
    with TestClient(create_app(engine)) as client:
        big = {"fields": {"note": "x" * 5_000}}
        response = client.patch(f"{API}/observations/1", json=big, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"

        def chunks():
            for _ in range(10):
                yield b"x" * 500

        streamed = client.post(f"{API}/projects/alpha/observations", content=chunks(),
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert streamed.status_code == 413


def test_the_public_gets_photos_without_exif_gps(make_token, make_observation, client, auth, photos):
    import struct as st

    import cv2
    import numpy as np

    jpeg = photos["chelsea.jpg"]
    exif = b"Exif\0\0MM\0*\0\0\0\x08GPSLatitude 41.387654 N"
    tagged = jpeg[:2] + b"\xff\xe1" + st.pack(">H", len(exif) + 2) + exif + jpeg[2:]
    owner = make_token("contributor", "gamma")
    obs = make_observation("gamma", token=owner, files=[("cat.jpg", tagged, "image/jpeg")])
    url = obs["media"][0]["url"]
    assert b"GPSLatitude" in client.get(url, headers=auth(owner)).content, "the owner gets the file as sent"
    public = client.get(url).content
    assert b"GPSLatitude" not in public
    decoded = cv2.imdecode(np.frombuffer(public, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (300, 451, 3), "still the same, whole picture"


def test_patch_reads_the_row_once_before_changing_it(client, auth, contributor, engine):
    """The access checks run on the row the edit changes, in its own transaction (it was read
    once to check, again to change, and a third time to answer)."""
    from sqlalchemy import event

    obs = post(client, auth, contributor, draft()).json()
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # noqa: ANN001
        statements.append(" ".join(statement.split()).lower())

    event.listen(engine.db, "before_cursor_execute", seen)
    try:
        response = client.patch(f"{API}/observations/{obs['id']}", json={"fields": {"note": "otter"}},
                                headers=auth(contributor))
    finally:
        event.remove(engine.db, "before_cursor_execute", seen)
    assert response.status_code == 200 and response.json()["fields"] == {"note": "otter"}
    first_write = next(i for i, s in enumerate(statements) if s.startswith("update observations"))
    reads = [s for s in statements[:first_write] if s.startswith("select") and "from observations" in s
             and "where observations.id =" in s]
    assert len(reads) == 1, reads
