"""A person who used the app is erased: the bridge forgets them too (devices, queued items,
uploads, feed, follows, webhooks, their name in others' feeds), and their personal-data export
carries what the bridge kept of them."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from sqlalchemy import func, select

from plugins.mobile_bridge.db import metadata
from tests.plugins.mobile_bridge.bridge_kit import API, bearer, bridge_registry, item, sign_up


@pytest.fixture
def registry() -> str:
    return bridge_registry()




def rows_of(engine: Any, account_id: int) -> dict[str, int]:
    """How many rows of each of the bridge's tables with an account_id name this account."""
    counts = {}
    with engine.db.connect() as conn:
        for table in metadata.sorted_tables:
            if "account_id" in table.c:
                counts[table.name] = conn.scalar(select(func.count()).select_from(table)
                                                 .where(table.c.account_id == account_id))
    return counts


def test_erasing_a_person_erases_what_the_bridge_kept_and_their_name_in_others_feeds(client, engine, photos,
                                                                                    make_token):
    ana, ben = sign_up(client, name="Ana"), sign_up(client, name="Ben")
    photo = photos["chelsea.jpg"]
    waiting = client.post(f"{API}/projects/field/sync", json={"items": [item("queued offline", media=[photo])]},
                          headers=bearer(ben["token"]))
    assert waiting.json()["items"][0]["status"] == "awaiting_media"
    created = client.post(f"{API}/projects/field/sync", json={"items": [item("a fox")]}, headers=bearer(ana["token"]))
    obs_id = created.json()["items"][0]["observation_id"]
    published = client.post(f"/api/v1/observations/{obs_id}/moderation", json={"action": "publish"},
                            headers=bearer(make_token("admin", "field")))
    assert published.status_code == 200, published.text
    assert client.post(f"{API}/observations/{obs_id}/follow", headers=bearer(ben["token"])).status_code in (200, 201, 204)
    said = client.post(f"/api/v1/observations/{obs_id}/comments", json={"body": "lovely"}, headers=bearer(ben["token"]))
    assert said.status_code == 201, said.text
    feed = client.get(f"{API}/feed", headers=bearer(ana["token"])).json()["items"]
    assert [e["data"]["author"] for e in feed if e["type"] == "comment"] == ["Ben"]
    assert sum(rows_of(engine, ben["account_id"]).values()) > 0

    export = client.get("/api/v1/me/data", headers=bearer(ben["token"]))
    assert export.status_code == 200, export.text
    kept = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("plugins/mobile_bridge.json"))
    assert [i["account_id"] for i in kept["items"]] == [ben["account_id"]]
    assert kept["follows"][0]["observation_id"] == obs_id

    erased = client.request("DELETE", "/api/v1/me", json={"confirm": "erase my account"}, headers=bearer(ben["token"]))
    assert erased.status_code in (200, 204), erased.text
    assert rows_of(engine, ben["account_id"]) == {name: 0 for name in rows_of(engine, ben["account_id"])}
    feed = client.get(f"{API}/feed", headers=bearer(ana["token"])).json()["items"]
    assert [e["data"]["author"] for e in feed if e["type"] == "comment"] == [None], "Ben's name is gone"
    assert sum(rows_of(engine, ana["account_id"]).values()) > 0, "nobody else's rows were touched"
