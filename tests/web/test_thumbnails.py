"""Thumbnails in the console: made once with OpenCV (at most 240 px a side, JPEG), kept under the
data folder, shown to whoever may read the observation (as the API's media route decides), and a
placeholder, never an error, for a file that cannot be decoded."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.engine import Engine
from core.moderation import moderate
from core.testing import submit
from core.web.thumbnails import MAX_SIDE, PLACEHOLDER, make_thumbnail, thumbnail_path
from tests.web.conftest import PASSWORD, make_staff
from tests.web.test_signin import sign_in_with


@pytest.fixture
def web(app: FastAPI) -> Any:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def thumb_url(obs: dict[str, Any]) -> str:
    return f"/console/observations/{obs['id']}/media/{obs['media'][0]['id']}/thumb"


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_a_thumbnail_is_a_small_jpeg_of_the_photo_made_once(engine: Engine, web: TestClient,
                                                          photos: dict[str, bytes]) -> None:
    staff = make_staff(engine, "Mo", "mo@example.org", project="alpha", role="moderator")
    obs = submit(engine, "alpha", media={"astronaut.jpg": photos["astronaut.jpg"]})  # 512 x 512
    assert sign_in_with(web, staff.email, PASSWORD).status_code == 303
    answer = web.get(thumb_url(obs))
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["cache-control"].startswith("private")  # staff: a pending photo, exact data
    image = decoded(answer.content)
    assert image.shape[:2] == (MAX_SIDE, MAX_SIDE)
    original = cv2.resize(decoded(photos["astronaut.jpg"]), (MAX_SIDE, MAX_SIDE), interpolation=cv2.INTER_AREA)
    assert float(np.abs(image.astype(int) - original.astype(int)).mean()) < 12  # the same picture
    assert b"Exif" not in answer.content[:200]
    kept = thumbnail_path(engine, obs["media"][0]["sha256"])
    assert kept.read_bytes() == answer.content
    engine.media.path_for(obs["media"][0]["sha256"]).unlink()  # read from the kept file from now on
    assert web.get(thumb_url(obs)).content == answer.content


def test_a_wide_photo_keeps_its_shape(photos: dict[str, bytes]) -> None:
    made = make_thumbnail(photos["chelsea.jpg"], "image/jpeg", 451, 300)
    assert made is not None and decoded(made).shape[:2] == (160, MAX_SIDE)
    small = np.full((40, 30, 3), 200, np.uint8)
    ok, png = cv2.imencode(".png", small)
    assert decoded(make_thumbnail(png.tobytes(), "image/png") or b"").shape[:2] == (40, 30)  # never enlarged


def test_a_corrupt_photo_gives_a_placeholder_not_an_error(engine: Engine, web: TestClient,
                                                          photos: dict[str, bytes]) -> None:
    obs = submit(engine, "alpha", media={"coffee.jpg": photos["coffee.jpg"]})
    moderate(engine, obs["id"], "publish", "test")
    path = engine.media.path_for(obs["media"][0]["sha256"])
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 200)  # damaged on disk
    answer = web.get(thumb_url(obs))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.content == PLACEHOLDER
    assert thumbnail_path(engine, obs["media"][0]["sha256"]).with_suffix(".failed").exists()  # not tried again


def test_who_may_see_a_thumbnail_is_who_may_read_the_observation(engine: Engine, web: TestClient,
                                                                 photos: dict[str, bytes]) -> None:
    pending = submit(engine, "alpha", media={"rocket.jpg": photos["rocket.jpg"]})
    published = submit(engine, "alpha", media={"rocket.jpg": photos["rocket.jpg"]})
    private = submit(engine, "beta", media={"rocket.jpg": photos["rocket.jpg"]})
    for obs in (published, private):
        moderate(engine, obs["id"], "publish", "test")
    assert web.get(thumb_url(pending)).status_code == 404  # a visitor: not published yet
    assert web.get(thumb_url(private)).status_code == 404  # published, but in a private project
    public = web.get(thumb_url(published))
    assert public.status_code == 200 and public.headers["cache-control"] == "public, max-age=300"
    missing = web.get(f"/console/observations/{published['id']}/media/999999/thumb")
    assert missing.status_code == 404 and "There is no such photo." in missing.text
    assert web.get(f"/console/observations/{published['id']}/media/99999999999/thumb").status_code == 404
