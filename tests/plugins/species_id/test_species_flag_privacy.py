"""What species_id's flags and results tell whoever may see an observation: nothing about an
observation they may not see (a duplicate flag names another observation only when anyone may
see it), and never a photo's file name as sent (photos are named by position)."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.engine import Engine
from core.moderation import moderate
from core.tokens import create_token
from tests.conftest import draft
from tests.plugins.species_id.conftest import species_registry

API = "/api/v1"


@pytest.fixture
def engine(species_engine: Callable[..., Engine]) -> Engine:
    return species_engine(species_registry({"wildlife": {}}), rate_limit_per_minute=0)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(engine: Engine, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(engine, 'contributor', 'wildlife', name).token}"}


def submit(client: TestClient, headers: dict[str, str], *photos: tuple[str, bytes], **parts: Any) -> dict[str, Any]:
    response = client.post(f"{API}/projects/wildlife/observations", data={"draft": json.dumps(draft(**parts))},
                           files=[("media", (name, data, "application/octet-stream")) for name, data in photos], headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def read(client: TestClient, obs_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.get(f"{API}/observations/{obs_id}", headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def duplicate_flag(obs: dict[str, Any]) -> dict[str, Any]:
    (flag,) = [f for f in obs["flags"] if f["code"] == "photo_duplicate"]
    return flag


def test_a_duplicate_flag_does_not_name_another_persons_pending_observation(
        engine: Engine, client: TestClient, shots: dict[str, bytes]) -> None:
    alice, bob = bearer(engine, "alice"), bearer(engine, "bob")
    hidden = submit(client, alice, ("cat.jpg", shots["cat"]))  # pending: only Alice and staff see it
    shown = submit(client, bob, ("again.jpg", shots["cat_again"]), fields={"n": 2})
    moderate(engine, shown["id"], "publish", actor="test")

    for viewer in (None, bob):  # the public, and Bob himself
        obs = read(client, shown["id"], viewer)
        flag = duplicate_flag(obs)
        assert flag["value"]["media"] == 0 and flag["value"]["value"] <= 2  # the warning itself stays
        assert "observation_id" not in flag["value"] and "other_media" not in flag["value"]
        assert f"observation {hidden['id']}" not in flag["message"], flag["message"]
        assert flag["message"] == ("photo 1 is a near-duplicate of a photo of an earlier observation in this "
                                   f"project ({flag['value']['value']} of 64 bits differ)")
    assert client.get(f"{API}/observations/{hidden['id']}").status_code in (401, 404)  # and it stays unseen


def test_a_duplicate_flag_names_a_published_observation(engine: Engine, client: TestClient,
                                                       shots: dict[str, bytes]) -> None:
    alice, bob = bearer(engine, "alice"), bearer(engine, "bob")
    first = submit(client, alice, ("cat.jpg", shots["cat"]))
    moderate(engine, first["id"], "publish", actor="test")
    second = submit(client, bob, ("coffee.jpg", shots["coffee"]), ("again.jpg", shots["cat_again"]), fields={"n": 2})
    flag = duplicate_flag(read(client, second["id"], bob))
    assert flag["value"]["observation_id"] == first["id"] and flag["value"]["other_media"] == 0
    assert f"photo 2 is a near-duplicate of photo 1 of observation {first['id']}" in flag["message"]


def test_a_duplicate_of_a_trashed_observation_is_not_named_either(engine: Engine, client: TestClient,
                                                                shots: dict[str, bytes]) -> None:
    alice = bearer(engine, "alice")
    first = submit(client, alice, ("cat.jpg", shots["cat"]))
    moderate(engine, first["id"], "trash", actor="test")
    again = submit(client, alice, ("again.jpg", shots["cat_again"]), fields={"n": 2})
    assert not [f for f in read(client, again["id"], alice)["flags"] if f["code"] == "photo_duplicate"]


PATH_NAME = "../../../../tmp/pwn.jpg"


def test_photo_flags_and_results_name_photos_by_position(engine: Engine, client: TestClient,
                                                       shots: dict[str, bytes]) -> None:
    alice = bearer(engine, "alice")
    obs = submit(client, alice, ("cat.jpg", shots["cat"]), ("../evil/small.png", shots["cat_small"]),
                 (PATH_NAME, shots["damaged"]), ("IMG_home_garden.jpg", shots["cat_dark"]))
    moderate(engine, obs["id"], "publish", actor="test")
    for viewer in (alice, None):
        seen = read(client, obs["id"], viewer)
        found = {f["code"]: f for f in seen["flags"] if f["plugin"] == "species_id"}
        assert {"photo_too_small", "photo_unreadable", "photo_too_dark"} <= set(found)
        assert found["photo_too_small"]["message"].startswith("photo 2 is 64×43 pixels")
        assert found["photo_unreadable"]["message"].startswith("photo 3: ")
        assert found["photo_too_dark"]["message"].startswith("photo 4 is too dark")
        words = json.dumps({"flags": seen["flags"], "species_id": seen["enrichments"]["species_id"]})
        for sent in ("pwn", "../", "small.png", "evil", "home_garden", "cat.jpg"):
            assert sent not in words, f"{sent!r} is in the flags or the species_id result"


def test_flags_of_results_stored_with_file_names_do_not_repeat_them() -> None:
    """Results stored before photos went by position still carry ``filename``; their flags do not."""
    from plugins.species_id.service import photo_flags

    old = {"images": [{"media": 0, "filename": PATH_NAME,
                       "error": {"code": "media_corrupt", "message": f"{PATH_NAME}: the image data cannot be decoded"}},
                      {"media": 1, "filename": PATH_NAME, "quality": {"width": 64, "height": 43, "min_side": 43,
                                                                      "luminance": 120.0, "sharpness": 300.0}}]}
    flags = photo_flags(old, {})
    assert [f.code for f in flags] == ["photo_unreadable", "photo_too_small"]
    assert flags[0].message == "photo 1: the image data cannot be decoded"
    assert all("pwn" not in f.message for f in flags), [f.message for f in flags]
