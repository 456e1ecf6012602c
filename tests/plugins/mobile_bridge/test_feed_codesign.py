"""Co-design news in the mobile feed (plugins/mobile_bridge/feed_codesign.py): a download with a
purpose shows in the contributor's feed and profile ("your observations were used in 3 downloads
this month: 2 research, 1 education"), once; the state a maintainer gives a person's feedback
shows in that person's feed only; nothing says who downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.data_use import record_download
from core.testing import API, bearer, draft, submit
from core.tokens import create_token

ROOT = Path(__file__).resolve().parents[3]
MOBILE = "/api/v1/mobile"


@pytest.fixture
def registry() -> str:
    services = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]
    return yaml.safe_dump({
        "services": {"mobile_bridge": services["mobile_bridge"],
                     "suggester": {"summary": "suggests a species", "settings": {"type": "object"}}},
        "projects": [{"slug": "wild", "name": "Wild", "auto_publish": True,
                      "services": {"mobile_bridge": {}, "suggester": {}}}]})


@pytest.fixture
def plugins() -> str:
    return "suggester=tests.test_feedback"


def feed(client, token: str, cursor: int = 0) -> list[dict]:  # noqa: ANN001
    page = client.get(f"{MOBILE}/feed", params={"cursor": cursor}, headers=bearer(token))
    assert page.status_code == 200, page.text
    return [e for e in page.json()["items"] if e["type"] in ("feedback", "data_use")]


def download(client, purpose: str) -> None:  # noqa: ANN001
    """An anonymous visitor downloads the project's CSV, saying why; read to the end."""
    with client.stream("GET", f"{API}/projects/wild/export", params={"purpose": purpose}) as response:
        assert response.status_code == 200
        body = b"".join(response.iter_bytes())
    assert body.count(b"\n") >= 3


def test_downloads_and_feedback_states_reach_the_feed(client, engine):
    ana = create_token(engine, "contributor", "wild", "Ana")
    ben = create_token(engine, "contributor", "wild", "Ben")
    operator = create_token(engine, "operator", None, "Olga")
    ana_obs = [submit(client, "wild", draft(), token=ana.token)["id"] for _ in range(2)]
    submit(client, "wild", draft(), token=ben.token)

    download(client, "research")
    download(client, "research")
    record_download(engine, "wild", ana_obs[:1], "education", "a school class", channel="open_data")

    [entry] = feed(client, ana.token)
    assert entry["type"] == "data_use" and entry["observation_id"] == 0
    assert entry["data"]["text"] == "your observations were used in 3 downloads this month: 2 research, 1 education"
    assert entry["data"]["purposes"] == {"research": 2, "education": 1}
    assert set(entry["data"]) == {"month", "downloads", "purposes", "text"}  # nothing about who downloaded
    profile = client.get(f"{API}/me/data-use", headers=bearer(ana.token)).json()
    assert profile["text"] == entry["data"]["text"] and profile["downloads"] == 3
    [bens] = feed(client, ben.token)
    assert bens["data"]["text"] == "your observations were used in 2 downloads this month: 2 research"

    assert feed(client, ana.token, entry["id"]) == []  # read again: told once
    download(client, "policy")
    [newer] = feed(client, ana.token, entry["id"])
    assert newer["data"]["downloads"] == 4 and newer["data"]["purposes"]["policy"] == 1

    sent = client.post(f"{API}/services/suggester/feedback", headers=bearer(ana.token),
                       json={"kind": "feature_request", "body": "Suggest the genus when unsure", "project": "wild"})
    assert sent.status_code == 201
    assert feed(client, ana.token, newer["id"]) == []  # nothing to tell before a maintainer decides
    marked = client.put(f"{API}/feedback/{sent.json()['id']}/state", headers=bearer(operator.token),
                        json={"state": "planned", "note": "in the spring release"})
    assert marked.status_code == 200
    [told] = feed(client, ana.token, newer["id"])
    assert told["type"] == "feedback" and told["project"] == "wild"
    assert told["data"]["text"] == "your feature request to suggester is planned: in the spring release"
    assert "Olga" not in str(told)
    assert [e["type"] for e in feed(client, ben.token, bens["id"])] == ["data_use"]  # Ben: the policy download only


def test_erasing_a_person_forgets_what_their_feed_was_told(client, engine):
    import sqlalchemy as sa

    from core.gdpr import erase
    from plugins.mobile_bridge.feed_codesign import told_codesign

    ana = create_token(engine, "contributor", "wild", "Ana")
    for _ in range(2):
        submit(client, "wild", draft(), token=ana.token)
    download(client, "research")
    assert len(feed(client, ana.token)) == 1
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(told_codesign)
                            .where(told_codesign.c.account_id == ana.account_id)).scalar() == 1
    erase(engine, ana.account_id)
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(told_codesign)
                            .where(told_codesign.c.account_id == ana.account_id)).scalar() == 0
