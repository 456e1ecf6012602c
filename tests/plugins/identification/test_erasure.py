"""A person who identified and voted is erased: their identifications, votes and expert
subscriptions go, the observations they touched are decided and graded again; their export
holds what the service kept of them, and only that."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from sqlalchemy import func, insert, select

from core.db.models import AuditEntry, utcnow
from core.db.session import transaction
from plugins.identification import erasure
from plugins.identification.db import expert_subscriptions, identifications, quality_votes
from tests.plugins.identification.conftest import API, identify, listing, observe


def rows_of(engine: Any, account_id: int) -> dict[str, int]:
    with transaction(engine.readers) as session:
        return {table.name: session.scalar(select(func.count()).select_from(table)
                                           .where(table.c.account_id == account_id))
                for table in (identifications, quality_votes, expert_subscriptions)}


def subscribe(engine: Any, account_id: int, taxon_id: int) -> None:
    with transaction(engine.sessions) as session:
        session.execute(insert(expert_subscriptions).values(account_id=account_id, taxon_id=taxon_id,
                                                            created_at=utcnow()))


def test_erasing_an_identifier_recomputes_what_they_touched_and_their_export_holds_their_own(client, engine, people,
                                                                                             taxa, photos):
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    obs = observe(client, ana, photo=photos["chelsea.jpg"])
    identify(client, ana, obs, taxa["Vulpes vulpes"])
    identify(client, ben, obs, taxa["Vulpes vulpes"], body="white tail tip")
    client.put(f"{API}/observations/{obs}/quality/date", json={"agree": True}, headers=ben.headers)
    other = observe(client, eva, photo=photos["coffee.jpg"])
    identify(client, ben, other, taxa["Felis catus"])
    identify(client, eva, other, taxa["Felis catus"])
    subscribe(engine, ben.account_id, taxa["Carnivora"])
    subscribe(engine, eva.account_id, taxa["Aves"])
    assert listing(client, obs)["summary"]["grade"] == "research"

    export = client.get(f"{API}/me/data", headers=ben.headers)
    assert export.status_code == 200, export.text
    kept = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("plugins/identification.json"))
    assert [(i["observation_id"], i["taxon"], i["body"]) for i in kept["identifications"]] == [
        (obs, "Vulpes vulpes", "white tail tip"), (other, "Felis catus", None)]
    assert [(v["observation_id"], v["metric"], v["agree"]) for v in kept["quality_votes"]] == [(obs, "date", True)]
    assert [s["taxon_id"] for s in kept["expert_subscriptions"]] == [taxa["Carnivora"]]
    assert "Ana" not in json.dumps(kept) and "Eva" not in json.dumps(kept)

    erased = client.request("DELETE", f"{API}/me", json={"confirm": "erase my account"}, headers=ben.headers)
    assert erased.status_code in (200, 204), erased.text
    assert rows_of(engine, ben.account_id) == {"identifications": 0, "quality_votes": 0, "expert_subscriptions": 0}
    assert rows_of(engine, eva.account_id) == {"identifications": 1, "quality_votes": 0, "expert_subscriptions": 1}
    summary = listing(client, obs)["summary"]
    assert summary["community_taxon"] is None and summary["grade"] == "needs_id"
    assert summary["quality"]["date"] == {"agree": 0, "disagree": 0, "passes": True}
    assert [i["author"] for i in listing(client, obs, ana)["items"]] == ["Ana"]  # the observer reads her own
    assert listing(client, other)["summary"]["community_taxon"] is None
    with transaction(engine.readers) as session:
        actions = session.execute(select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.observation_id == obs)
                                  .order_by(AuditEntry.id)).all()
    assert ("erase_identifications", "erasure") in actions and ("community_taxon", "erasure") in actions
    assert ("grade", "erasure") in actions

    erasure.erase_account(engine, ben.account_id)  # again: nothing left to do, nothing breaks
    assert len(listing(client, obs)["items"]) == 1


def test_erasing_the_observer_keeps_others_identifications_of_their_observation(client, engine, people, taxa, photos):
    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    obs = observe(client, ana, photo=photos["chelsea.jpg"])
    for person in (ana, ben, eva):
        identify(client, person, obs, taxa["Vulpes vulpes"])
    erased = client.request("DELETE", f"{API}/me", json={"confirm": "erase my account"}, headers=ana.headers)
    assert erased.status_code in (200, 204), erased.text
    page = listing(client, obs)
    assert [i["author"] for i in page["items"]] == ["Ben", "Eva"]
    assert page["summary"]["community_taxon"]["name"] == "Vulpes vulpes" and page["summary"]["grade"] == "research"
