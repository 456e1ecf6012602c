"""Identifications in the mobile feed (``plugins/mobile_bridge/feed.py``: ``on_identification``):
someone else's identification and a new community taxon reach the observer and the followers
who may read the observation, naming the taxon and the identification's category, never who
identified it (no e-mail, no name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.plugins.identification.conftest import SERVICE as IDENTIFICATION, Person, make_person, make_taxa

ROOT = Path(__file__).resolve().parents[3]
API = "/api/v1"
MOBILE = "/api/v1/mobile"


def _registry() -> str:
    services = yaml.safe_load(IDENTIFICATION)
    services["mobile_bridge"] = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]["mobile_bridge"]
    services.pop("listener")
    return yaml.safe_dump({"services": services, "projects": [
        {"slug": "wild", "name": "Wild", "public": True, "auto_publish": True, "timezone": "Europe/Madrid",
         "services": {"mobile_bridge": {}, "identification": {}}},
        {"slug": "quiet", "name": "Quiet", "public": True, "auto_publish": True, "timezone": "Europe/Madrid",
         "services": {"identification": {}}},
    ]}, sort_keys=False)


@pytest.fixture
def registry() -> str:
    return _registry()


@pytest.fixture
def taxa(engine: Any) -> dict[str, int]:
    return make_taxa(engine)


@pytest.fixture
def people(engine: Any) -> dict[str, Person]:
    from core.accounts import create_account
    from core.tokens import create_account_token

    made = {}
    for name, role in (("ana", "contributor"), ("ben", "contributor"), ("eva", "expert")):
        info = create_account(engine, name.title(), email=f"{name}@example.org",
                              memberships={"wild": role, "quiet": role})
        made[name] = Person(info.id, create_account_token(engine, info.id, name=f"{name}'s phone").token, name)
    return made


def _observe(client: Any, person: Person, photo: bytes, project: str = "wild") -> int:
    from core.testing import draft, submit

    return int(submit(client, project, draft(), media={"photo.jpg": photo}, token=person.token)["id"])


def _identify(client: Any, person: Person, obs_id: int, taxon_id: int) -> dict[str, Any]:
    response = client.post(f"{API}/observations/{obs_id}/identifications", json={"taxon_id": taxon_id},
                           headers=person.headers)
    assert response.status_code == 201, response.text
    return response.json()


def _entries(client: Any, person: Person) -> list[dict[str, Any]]:
    response = client.get(f"{MOBILE}/feed", headers=person.headers)
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["type"] == "identification"]


def test_others_identifications_and_the_community_taxon_reach_the_observer_and_followers(client, engine, taxa,
                                                                                       people, photos):
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    obs = _observe(client, ana, photos["chelsea.jpg"])
    assert client.post(f"{MOBILE}/observations/{obs}/follow", headers=ben.headers).status_code == 200

    _identify(client, eva, obs, taxa["Felis catus"])
    [told_ana] = _entries(client, ana)
    assert (told_ana["observation_id"], told_ana["project"], told_ana["seen"]) == (obs, "wild", False)
    data = told_ana["data"]
    assert data["kind"] == "added" and isinstance(data["identification_id"], int)
    assert data["taxon"] == {"id": taxa["Felis catus"], "name": "Felis catus", "rank": "species", "common_name": None}
    assert data["category"] in ("leading", "improving", "supporting", "maverick")
    assert [e["data"] for e in _entries(client, ben)] == [data]
    assert _entries(client, eva) == []  # your own identification is not told to you

    # ana agrees: a community taxon; ben and eva's identifications made it, ana's is not told to her
    _identify(client, ana, obs, taxa["Felis catus"])
    kinds = [(e["data"]["kind"], e["data"]["taxon"]["name"]) for e in _entries(client, ana)]
    assert kinds == [("added", "Felis catus"), ("community_taxon", "Felis catus")]
    community = _entries(client, ana)[-1]["data"]
    assert community["previous"] is None and community["category"] is None
    assert [e["data"]["kind"] for e in _entries(client, ben)] == ["added", "added", "community_taxon"]
    assert _entries(client, eva) == []  # she does not follow it

    # ben disagrees (a fox): the community taxon moves up to what all three share, the order
    _identify(client, ben, obs, taxa["Vulpes vulpes"])
    added, moved = _entries(client, ana)[-2:]
    assert (added["data"]["kind"], added["data"]["taxon"]["name"], added["data"]["category"]) == \
        ("added", "Vulpes vulpes", "leading")  # below the new community taxon
    assert moved["data"]["kind"] == "community_taxon"
    assert (moved["data"]["taxon"]["name"], moved["data"]["previous"]["name"]) == ("Carnivora", "Felis catus")
    assert [e["data"]["kind"] for e in _entries(client, ben)][-1] == "community_taxon"  # not his own

    # nobody's e-mail or name in any entry
    text = json.dumps(_entries(client, ana) + _entries(client, ben))
    for person in people.values():
        assert f"{person.name}@example.org" not in text and person.name.title() not in text


def test_a_project_without_the_mobile_bridge_writes_no_entries(client, engine, taxa, people, photos):
    obs = _observe(client, people["ana"], photos["chelsea.jpg"], project="quiet")
    _identify(client, people["eva"], obs, taxa["Felis catus"])
    _identify(client, people["ben"], obs, taxa["Felis catus"])
    assert _entries(client, people["ana"]) == []
