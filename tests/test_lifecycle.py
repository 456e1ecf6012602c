"""Submit -> validate -> store -> enrich -> quality -> grade, on a real database."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core import lifecycle
from core.db.models import MediaBlob, Observation, ObservationMedia
from core.db.session import transaction
from core.errors import Conflict, NotFound, ValidationFailed
from core.lifecycle import Upload
from core.views import load_observation, observation_dict
from tests.conftest import draft


def count(engine, model=Observation) -> int:
    with transaction(engine.sessions) as s:
        return s.scalar(select(func.count()).select_from(model))


def show(engine, obs_id):
    with transaction(engine.sessions) as s:
        return observation_dict(load_observation(s, obs_id))


def test_submit_runs_the_whole_lifecycle(engine, photos):
    result = lifecycle.submit(engine, "alpha", draft(), [Upload(photos["chelsea.jpg"], "cat.jpg", "image/jpeg")])
    assert result.created
    obs = show(engine, result.observation_id)
    assert obs["status"] == "pending"
    assert obs["media"][0]["content_type"] == "image/jpeg"
    assert (obs["media"][0]["width"], obs["media"][0]["height"]) == (451, 300)
    assert obs["enrichments"]["recorder"] == {
        "status": "done", "attempts": 1, "result": {"seen": obs["id"], "media": 1}, "error": None,
        "finished_at": obs["enrichments"]["recorder"]["finished_at"],
    }
    assert [f["code"] for f in obs["flags"]] == ["recorded"]
    assert obs["flags"][0]["value"] == {"seen": obs["id"], "media": 1}, "quality runs after enrichment"
    assert obs["grade"] == "needs_id"
    assert obs["observed_at"] == "2026-05-01T07:30:00+00:00"


def test_local_time_without_offset_is_read_in_the_project_time_zone(engine):
    obs_id = lifecycle.submit(engine, "alpha", draft(observed_at="2026-07-01T12:00:00")).observation_id
    assert show(engine, obs_id)["observed_at"] == "2026-07-01T10:00:00+00:00"  # Madrid is UTC+2 in July


def test_same_client_id_same_content_returns_the_first(engine, photos):
    media = [Upload(photos["coffee.jpg"], "c.jpg", None)]
    first = lifecycle.submit(engine, "alpha", draft(client_id="phone-1"), media)
    again = lifecycle.submit(engine, "alpha", draft(client_id="phone-1"), media)
    assert again.observation_id == first.observation_id and not again.created
    assert count(engine) == 1


def test_same_client_id_other_content_is_a_conflict_unless_an_edit(engine):
    first = lifecycle.submit(engine, "alpha", draft(client_id="phone-2"))
    with pytest.raises(Conflict, match="other content"):
        lifecycle.submit(engine, "alpha", draft(client_id="phone-2", fields={"note": "changed"}))
    edited = lifecycle.submit(engine, "alpha", draft(client_id="phone-2", fields={"note": "changed"}), edit=True)
    assert edited.observation_id == first.observation_id
    obs = show(engine, first.observation_id)
    assert obs["fields"] == {"note": "changed"}
    assert obs["enrichments"]["recorder"]["status"] == "done"
    assert count(engine) == 1


def test_same_client_id_in_another_project_is_another_observation(engine):
    a = lifecycle.submit(engine, "alpha", draft(client_id="x"))
    b = lifecycle.submit(engine, "beta", draft(client_id="x"))
    assert a.observation_id != b.observation_id


def test_concurrent_retries_store_one_observation(engine):
    results, errors = [], []
    barrier = threading.Barrier(8)

    def send():
        barrier.wait()
        try:
            results.append(lifecycle.submit(engine, "beta", draft(client_id="race")))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.observation_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert count(engine) == 1


def test_same_bytes_are_stored_once(engine, photos):
    jpeg = photos["chelsea.jpg"]
    lifecycle.submit(engine, "beta", draft(), [Upload(jpeg, "a.jpg", None)])
    lifecycle.submit(engine, "beta", draft(fields={"n": 2}), [Upload(jpeg, "b.jpg", None)])
    assert count(engine, MediaBlob) == 1
    assert count(engine, ObservationMedia) == 2
    files = [p for p in engine.media.root.rglob("*") if p.is_file()]
    assert len(files) == 1


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"location": {"lat": 1, "lon": 1}}, ("observed_at",), "Field required"),
        (draft(location={"lat": 91, "lon": 2}), ("location", "lat"), "less than or equal to 90"),
        (draft(location={"lat": 1, "lon": -180.5}), ("location", "lon"), "greater than or equal to -180"),
        (draft(observed_at="not a date"), ("observed_at",), "valid datetime"),
        (draft(kind="unicorn"), ("kind",), "unknown observation kind 'unicorn'"),
        (draft(fields={"reject_me": True}), ("fields", "reject_me"), "recorder refuses"),
        (draft(extra=1), ("extra",), "Extra inputs"),
        ([1, 2], (), "JSON object"),
    ],
)
def test_bad_drafts_are_refused_with_the_field_and_nothing_is_stored(engine, data, path, words):
    with pytest.raises(ValidationFailed) as info:
        lifecycle.submit(engine, "alpha", data)
    problem = info.value.problems[0]
    assert problem.path == path
    assert words in problem.message
    assert count(engine) == 0


def test_a_time_far_in_the_future_is_refused(engine):
    future = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    with pytest.raises(ValidationFailed, match="in the future"):
        lifecycle.submit(engine, "alpha", draft(observed_at=future))
    assert count(engine) == 0


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: Upload(b"", "empty.jpg", "image/jpeg"), "media_empty"),
        (lambda p: Upload(b"hello, not an image", "fake.jpg", "image/jpeg"), "media_unknown_type"),
        (lambda p: Upload(p["camera.png"], "photo.jpg", "image/jpeg"), "media_type_mismatch"),
        (lambda p: Upload(p["chelsea.jpg"][: len(p["chelsea.jpg"]) // 2], "cut.jpg", None), "media_corrupt"),
    ],
)
def test_bad_media_is_refused_and_nothing_is_stored(engine, photos, make, code):
    with pytest.raises(ValidationFailed) as info:
        lifecycle.submit(engine, "alpha", draft(), [make(photos)])
    assert info.value.problems[0].code == code
    assert info.value.problems[0].path == ("media", 0)
    assert count(engine) == 0 and count(engine, MediaBlob) == 0


def test_a_decompression_bomb_is_refused_from_its_header(engine):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    with pytest.raises(ValidationFailed, match="50000×50000 pixels is over the limit"):
        lifecycle.submit(engine, "alpha", draft(), [Upload(bomb, "bomb.png", "image/png")])


def test_unknown_project_is_named(engine):
    with pytest.raises(NotFound, match="unknown project 'gamma'.*alpha, beta"):
        lifecycle.submit(engine, "gamma", draft())


def test_update_fields_validates_again_and_requeues(engine):
    obs_id = lifecycle.submit(engine, "alpha", draft()).observation_id
    lifecycle.update_fields(engine, obs_id, {"note": "an otter"}, actor="tester")
    obs = show(engine, obs_id)
    assert obs["fields"]["note"] == "an otter"
    assert obs["enrichments"]["recorder"]["status"] == "done"
    with pytest.raises(ValidationFailed):
        lifecycle.update_fields(engine, obs_id, {"reject_me": True}, actor="tester")
    assert show(engine, obs_id)["fields"] == {"note": "an otter"}


def test_an_iphone_heic_photo_gets_a_clear_message_not_video(engine):
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
    with pytest.raises(ValidationFailed) as info:
        lifecycle.submit(engine, "alpha", draft(), [Upload(heic, "IMG_0001.HEIC", "image/heic")])
    problem = info.value.problems[0]
    assert problem.code == "media_unsupported_type"
    assert "image/heic photos are not supported yet; send JPEG or PNG" in problem.message
