"""Push sync of the mobile bridge: batches of observations made offline, each item answered on its
own; media that come later; retries and concurrent connections that never store twice; device
times and a device clock far off."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from core.db.session import transaction
from core.read_model import read_view
from plugins.mobile_bridge import sync, sync_store, tus
from plugins.mobile_bridge.projects import bridge_project
from tests.plugins.mobile_bridge.bridge_kit import API, bearer, bridge_registry, item, media_ref, multipart, now, sign_up

SYNC = f"{API}/projects/field/sync"


@pytest.fixture
def registry() -> str:
    return bridge_registry("{clock_skew_s: 600}")




@pytest.fixture
def phone(client: Any) -> dict[str, Any]:
    """A person signed up from an app: the sign-up answer, with ``headers`` to send."""
    person = sign_up(client)
    return {**person, "headers": bearer(person["token"])}


@pytest.fixture
def staff(make_token: Callable[..., str]) -> dict[str, str]:
    return bearer(make_token("admin", "field"))


def stored(client: Any, staff: dict[str, str]) -> list[dict[str, Any]]:
    """Every observation of the project, as its staff lists them."""
    response = client.get("/api/v1/projects/field/observations", params={"limit": 200}, headers=staff)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_each_item_gets_its_own_answer_and_a_bad_one_sinks_nothing(client: Any, phone: dict[str, Any],
                                                                     staff: dict[str, str]) -> None:
    good, bad_time, no_uuid = item("a fox"), item("bad", observed_at="yesterday"), item("no uuid")
    del no_uuid["uuid"]
    wrong_kind = item("odd", kind="starship")
    response = client.post(SYNC, json={"items": [good, bad_time, no_uuid, wrong_kind]}, headers=phone["headers"])
    assert response.status_code == 200, response.text
    answers = response.json()["items"]
    assert [a["status"] for a in answers] == ["created", "rejected", "rejected", "rejected"]
    assert [a["index"] for a in answers] == [0, 1, 2, 3]
    assert answers[0]["uuid"] == good["uuid"]
    assert answers[1]["problems"][0]["path"] == ["observed_at"]
    assert "uuid" not in answers[2] and answers[2]["problems"][0]["path"] == ["uuid"]
    assert answers[3]["problems"][0]["code"] == "unknown_kind"
    [obs] = stored(client, staff)
    assert obs["id"] == answers[0]["observation_id"]
    assert obs["client_id"] == good["uuid"] and obs["fields"] == {"note": "a fox"}
    assert obs["contributor_id"] == phone["account_id"]


def test_retrying_a_batch_whole_in_part_or_reordered_stores_nothing_twice(client: Any, phone: dict[str, Any],
                                                                          staff: dict[str, str]) -> None:
    batch = [item(f"bird {i}") for i in range(6)]
    first = client.post(SYNC, json={"items": batch}, headers=phone["headers"]).json()["items"]
    assert {a["status"] for a in first} == {"created"}
    ids = {a["uuid"]: a["observation_id"] for a in first}
    for retry in (batch, list(reversed(batch)), batch[2:4], [batch[5], batch[0], batch[5]]):
        answers = client.post(SYNC, json={"items": retry}, headers=phone["headers"]).json()["items"]
        assert {a["status"] for a in answers} == {"duplicate"}
        assert [a["observation_id"] for a in answers] == [ids[i["uuid"]] for i in retry]
    assert sorted(o["id"] for o in stored(client, staff)) == sorted(ids.values())


def test_the_same_uuid_with_other_content_is_refused_and_the_first_kept(client: Any, phone: dict[str, Any],
                                                                         staff: dict[str, str]) -> None:
    first = item("one heron")
    client.post(SYNC, json={"items": [first]}, headers=phone["headers"])
    changed = {**first, "fields": {"note": "two herons"}}
    [answer] = client.post(SYNC, json={"items": [changed]}, headers=phone["headers"]).json()["items"]
    assert answer["status"] == "rejected" and answer["problems"][0]["code"] == "client_id_conflict"
    assert [o["fields"] for o in stored(client, staff)] == [{"note": "one heron"}]


def test_media_sent_with_the_batch_are_stored_with_their_observation(client: Any, phone: dict[str, Any],
                                                                     photos: dict[str, bytes]) -> None:
    cat, coffee = photos["chelsea.jpg"], photos["coffee.jpg"]
    items = [item("a cat", media=[cat]), item("coffee and a cat", media=[coffee, cat])]
    response = client.post(SYNC, headers=phone["headers"], **multipart(items, [("cat.jpg", cat), ("c.jpg", coffee)]))
    assert response.status_code == 200, response.text
    answers = response.json()["items"]
    assert [a["status"] for a in answers] == ["created", "created"]
    obs = client.get(f"/api/v1/observations/{answers[1]['observation_id']}", headers=phone["headers"]).json()
    assert [m["sha256"] for m in obs["media"]] == [media_ref(coffee)["sha256"], media_ref(cat)["sha256"]]
    photo = client.get(obs["media"][1]["url"], headers=phone["headers"])
    assert photo.status_code == 200 and photo.content == cat


def test_an_item_waits_for_its_media_unseen_and_is_stored_when_the_last_one_comes(
        client: Any, phone: dict[str, Any], staff: dict[str, str], photos: dict[str, bytes]) -> None:
    cat, rocket = photos["chelsea.jpg"], photos["rocket.jpg"]
    waiting = item("a cat by a rocket", media=[cat, rocket])
    [answer] = client.post(SYNC, headers=phone["headers"],
                           **multipart([waiting], [("cat.jpg", cat)])).json()["items"]
    assert answer["status"] == "awaiting_media"
    assert answer["missing"] == [media_ref(rocket)["sha256"]]
    assert stored(client, staff) == []  # not an observation yet: nothing to publish or enrich
    state = client.get(f"{SYNC}/{waiting['uuid']}", headers=phone["headers"]).json()
    assert state["status"] == "awaiting_media" and state["missing"] == [media_ref(rocket)["sha256"]]
    # a retry without the files changes nothing; the last file, sent with a retry, completes it
    [again] = client.post(SYNC, json={"items": [waiting]}, headers=phone["headers"]).json()["items"]
    assert again["status"] == "awaiting_media" and again["missing"] == [media_ref(rocket)["sha256"]]
    [done] = client.post(SYNC, headers=phone["headers"],
                         **multipart([waiting], [("rocket.jpg", rocket)])).json()["items"]
    assert done["status"] == "created"
    [obs] = stored(client, staff)
    assert [m["sha256"] for m in obs["media"]] == [media_ref(cat)["sha256"], media_ref(rocket)["sha256"]]
    state = client.get(f"{SYNC}/{waiting['uuid']}", headers=phone["headers"]).json()
    assert state["status"] == "created" and state["observation_id"] == obs["id"] and state["missing"] is None


def _tus_delivers(monkeypatch: pytest.MonkeyPatch, engine: Any, account_id: int, data: bytes) -> str:
    """What a finished tus upload leaves (the file in the media store, found by ``uploaded_media``),
    without its call of ``media_arrived``: the test makes that call itself, racing syncs."""
    sha = engine.media.put(data)
    delivered = {(account_id, sha)}
    original = tus.uploaded_media

    def uploaded_media(engine_: Any, account: int, sha256: str) -> Path | None:
        if (account, sha256) in delivered:
            return engine_.media.path_for(sha256)
        return original(engine_, account, sha256)

    monkeypatch.setattr(tus, "uploaded_media", uploaded_media)
    return sha


def tus_upload(client: Any, headers: dict[str, str], data: bytes) -> None:
    """A whole file in one tus creation-with-upload request, as a tus client sends a small one."""
    sha = hashlib.sha256(data).hexdigest()
    response = client.post(tus.BASE, content=data, headers={
        **headers, "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
        "Content-Type": "application/offset+octet-stream",
        "Upload-Metadata": f"sha256 {base64.b64encode(sha.encode()).decode()},filetype "
                           f"{base64.b64encode(b'image/jpeg').decode()}"})
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == str(len(data))


def test_a_tus_upload_that_lands_stores_the_items_waiting_for_it(
        client: Any, engine: Any, phone: dict[str, Any], staff: dict[str, str], photos: dict[str, bytes]) -> None:
    cat = photos["chelsea.jpg"]
    waiting = [item("cat, morning", media=[cat]), item("cat, evening", media=[cat])]
    answers = client.post(SYNC, json={"items": waiting}, headers=phone["headers"]).json()["items"]
    assert [a["status"] for a in answers] == ["awaiting_media", "awaiting_media"]
    tus_upload(client, bearer(sign_up(client, name="Ben")["token"]), cat)  # someone else's upload: not Ana's
    assert stored(client, staff) == []
    tus_upload(client, phone["headers"], cat)
    sync.media_arrived(engine, media_ref(cat)["sha256"], phone["account_id"])  # told twice: stored once
    observations = stored(client, staff)
    assert sorted(o["fields"]["note"] for o in observations) == ["cat, evening", "cat, morning"]
    assert all([m["sha256"] for m in o["media"]] == [media_ref(cat)["sha256"]] for o in observations)
    retry = client.post(SYNC, json={"items": waiting}, headers=phone["headers"]).json()["items"]
    assert sorted(a["observation_id"] for a in retry) == sorted(o["id"] for o in observations)
    assert {a["status"] for a in retry} == {"duplicate"}
    # an item synced after its photo was uploaded is stored at once
    [later] = client.post(SYNC, json={"items": [item("cat, night", media=[cat])]},
                          headers=phone["headers"]).json()["items"]
    assert later["status"] == "created"


def test_media_that_arrive_but_do_not_match_the_announced_size_reject_the_item_with_a_reason(
        client: Any, phone: dict[str, Any], staff: dict[str, str], photos: dict[str, bytes]) -> None:
    cat = photos["chelsea.jpg"]
    waiting = item("a cat", media=[cat])
    waiting["media"][0]["size"] = 1234
    client.post(SYNC, json={"items": [waiting]}, headers=phone["headers"])
    tus_upload(client, phone["headers"], cat)
    state = client.get(f"{SYNC}/{waiting['uuid']}", headers=phone["headers"]).json()
    assert state["status"] == "rejected"
    assert state["problems"][0]["code"] == "media_size_mismatch" and "1234" in state["problems"][0]["message"]
    assert stored(client, staff) == []


def test_device_times_and_the_receipt_time_are_kept_and_a_far_off_clock_is_flagged(
        client: Any, engine: Any, phone: dict[str, Any]) -> None:
    on_time = item("on time")
    ahead = item("clock two hours ahead", device_sent_at=(now() + timedelta(hours=2)).isoformat())
    before = now()
    answers = client.post(SYNC, json={"items": [on_time, ahead]}, headers=phone["headers"]).json()["items"]
    state = client.get(f"{SYNC}/{ahead['uuid']}", headers=phone["headers"]).json()
    assert before - timedelta(seconds=1) <= _time(state["received_at"]) <= now()
    assert _time(state["device_created_at"]) == _time(ahead["device_created_at"])
    assert 7100 < state["clock_offset_s"] < 7300
    project = bridge_project(engine, "field")
    flags = {a["uuid"]: sync.device_clock_flags(_view(engine, a["observation_id"]), project, engine) for a in answers}
    assert flags[on_time["uuid"]] == []
    [flag] = flags[ahead["uuid"]]
    assert flag.code == "device_clock_off" and "ahead" in flag.message and 7100 < flag.value < 7300
    # and the engine stored it with the observation's other quality flags (the plugin's quality_check)
    shown = client.get(f"/api/v1/observations/{answers[1]['observation_id']}", headers=phone["headers"]).json()
    assert [(f["plugin"], f["code"]) for f in shown["flags"] if f["code"] == "device_clock_off"] == \
        [("mobile_bridge", "device_clock_off")]
    on_time_shown = client.get(f"/api/v1/observations/{answers[0]['observation_id']}", headers=phone["headers"]).json()
    assert "device_clock_off" not in [f["code"] for f in on_time_shown["flags"]]


def _time(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def _view(engine: Any, obs_id: int) -> Any:
    with transaction(engine.readers) as session:
        return read_view(session, obs_id, engine.media)


def test_an_item_is_its_senders_alone(client: Any, phone: dict[str, Any], staff: dict[str, str]) -> None:
    mine = item("mine")
    client.post(SYNC, json={"items": [mine]}, headers=phone["headers"])
    other = bearer(sign_up(client, name="Ben")["token"])
    assert client.get(f"{SYNC}/{mine['uuid']}", headers=other).status_code == 404
    [taken] = client.post(SYNC, json={"items": [{**mine, "fields": {"note": "stolen"}}]},
                          headers=other).json()["items"]
    assert taken["status"] == "rejected" and taken["problems"][0]["code"] == "client_id_conflict"
    [same] = client.post(SYNC, json={"items": [mine]}, headers=other).json()["items"]
    assert same["status"] == "rejected" and "observation_id" not in same  # says nothing of whose it is
    assert [o["fields"]["note"] for o in stored(client, staff)] == ["mine"]


def test_forgetting_an_account_removes_its_items_and_leaves_others(client: Any, engine: Any, phone: dict[str, Any],
                                                                  photos: dict[str, bytes]) -> None:
    waiting = item("where I live", media=[photos["rocket.jpg"]])
    client.post(SYNC, json={"items": [waiting, item("stored")]}, headers=phone["headers"])
    ben = sign_up(client, name="Ben")
    kept = item("Ben's")
    client.post(SYNC, json={"items": [kept]}, headers=bearer(ben["token"]))
    assert sync_store.forget_account(engine, phone["account_id"]) == 2
    assert client.get(f"{SYNC}/{waiting['uuid']}", headers=phone["headers"]).status_code == 404
    assert client.get(f"{SYNC}/{kept['uuid']}", headers=bearer(ben["token"])).json()["status"] == "created"


def test_who_may_sync(client: Any, phone: dict[str, Any], make_token: Callable[..., str]) -> None:
    batch = {"items": [item()]}
    assert client.post(SYNC, json=batch).status_code == 401
    assert client.post(f"{API}/projects/closed/sync", json=batch, headers=phone["headers"]).status_code == 404
    assert client.post(f"{API}/projects/nowhere/sync", json=batch, headers=phone["headers"]).status_code == 404
    outsider = bearer(make_token("contributor", "closed"))
    assert client.post(SYNC, json=batch, headers=outsider).status_code == 403
    assert client.post(SYNC, content=b"items", headers={**phone["headers"], "Content-Type": "text/plain"}
                       ).status_code == 415
    assert client.post(SYNC, json={"items": "all"}, headers=phone["headers"]).status_code == 422
    assert client.post(SYNC, json={"items": [item()] * 501}, headers=phone["headers"]).status_code == 422


def test_concurrent_syncs_of_overlapping_batches_store_each_item_once(
        engine: Any, client: Any, phone: dict[str, Any], staff: dict[str, str], photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Four connections send overlapping parts of one queue at once, in their own orders, while
    the photo some items wait for lands twice: every item is stored exactly once."""
    cat = photos["chelsea.jpg"]
    plain = [item(f"note {i}") for i in range(24)]
    with_photo = [item(f"photo {i}", media=[cat]) for i in range(6)]
    queue = plain + with_photo
    project = bridge_project(engine, "field")
    account = phone["account_id"]
    client.post(SYNC, json={"items": with_photo}, headers=phone["headers"])  # they wait for the photo
    sha = _tus_delivers(monkeypatch, engine, account, cat)
    barrier = threading.Barrier(6)
    answers: list[list[Any]] = []
    errors: list[BaseException] = []

    def send(seed: int) -> None:
        part = random.Random(seed).sample(queue, 20)
        try:
            barrier.wait(timeout=30)
            answers.append(sync.sync_items(engine, project, account, part))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    def land() -> None:
        try:
            barrier.wait(timeout=30)
            sync.media_arrived(engine, sha, account)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(seed,)) for seed in range(4)]
    threads += [threading.Thread(target=land) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    final = sync.sync_items(engine, project, account, queue)  # whatever is left, settled
    assert {a.status for a in final} == {"duplicate"}
    ids = {a.uuid: a.observation_id for a in final}
    for batch in answers:
        for answer in batch:
            assert answer.status in ("created", "duplicate"), answer
            assert answer.observation_id == ids[answer.uuid]
    observations = stored(client, staff)
    assert len(observations) == len(queue)
    assert sorted(o["client_id"] for o in observations) == sorted(i["uuid"] for i in queue)
