"""Edits from the phone with versions: the current version applies, an older one merges when
nobody changed the same fields since, and otherwise a 409 shows both versions."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

from core.tokens import authenticate
from plugins.mobile_bridge import edits
from tests.plugins.mobile_bridge.bridge_kit import API, bearer, bridge_registry, item, sign_up


@pytest.fixture
def registry() -> str:
    return bridge_registry()




@pytest.fixture
def synced(client: Any) -> dict[str, Any]:
    """An observation synced from a phone: its id, the phone's token and headers."""
    person = sign_up(client)
    headers = bearer(person["token"])
    [answer] = client.post(f"{API}/projects/field/sync", headers=headers,
                           json={"items": [item(fields={"note": "a fox", "count": 1})]}).json()["items"]
    assert answer["status"] == "created", answer
    return {"id": answer["observation_id"], "token": person["token"], "headers": headers}


def version(client: Any, synced: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"{API}/observations/{synced['id']}/version", headers=synced["headers"])
    assert response.status_code == 200, response.text
    return response.json()


def patch(client: Any, synced: dict[str, Any], base: int, fields: dict[str, Any],
          headers: dict[str, str] | None = None) -> Any:
    return client.patch(f"{API}/observations/{synced['id']}", json={"base_version": base, "fields": fields},
                        headers=headers or synced["headers"])


def test_an_edit_of_the_current_version_applies(client: Any, synced: dict[str, Any]) -> None:
    assert version(client, synced) == {"observation_id": synced["id"], "version": 1,
                                       "fields": {"note": "a fox", "count": 1}}
    response = patch(client, synced, 1, {"note": "a vixen"})
    assert response.status_code == 200, response.text
    assert response.json() == {"observation_id": synced["id"], "version": 2, "merged": False,
                               "fields": {"note": "a vixen", "count": 1}}
    assert version(client, synced)["version"] == 2


def test_an_edit_of_an_older_version_merges_when_it_touches_other_fields(
        client: Any, synced: dict[str, Any], make_token: Callable[..., str]) -> None:
    staff = bearer(make_token("moderator", "field"))
    # the project's moderator changes the count with core's own PATCH: the version counts it too
    assert client.patch(f"/api/v1/observations/{synced['id']}", json={"fields": {"count": 2}},
                        headers=staff).status_code == 200
    assert version(client, synced)["version"] == 2
    response = patch(client, synced, 1, {"note": "two foxes"})
    assert response.status_code == 200, response.text
    assert response.json() == {"observation_id": synced["id"], "version": 3, "merged": True,
                               "fields": {"note": "two foxes", "count": 2}}


def test_an_edit_of_an_older_version_that_touches_a_changed_field_is_a_conflict_showing_both(
        client: Any, synced: dict[str, Any]) -> None:
    assert patch(client, synced, 1, {"count": 3}).status_code == 200  # from another device, say
    conflict = patch(client, synced, 1, {"count": 4, "note": "four foxes"})
    assert conflict.status_code == 409, conflict.text
    body = conflict.json()
    assert body["error"]["code"] == "edit_conflict"
    assert body["mine"] == {"base_version": 1, "fields": {"count": 4, "note": "four foxes"}}
    assert body["theirs"] == {"version": 2, "fields": {"note": "a fox", "count": 3}, "changed_fields": ["count"]}
    assert body["conflicting_fields"] == ["count"]
    assert version(client, synced) == {"observation_id": synced["id"], "version": 2,
                                       "fields": {"note": "a fox", "count": 3}}
    ahead = patch(client, synced, 7, {"note": "?"})
    assert ahead.status_code == 409 and ahead.json()["error"]["code"] == "version_unknown"
    assert ahead.json()["theirs"]["version"] == 2


def test_only_the_contributor_or_staff_may_edit(client: Any, synced: dict[str, Any],
                                                make_token: Callable[..., str]) -> None:
    other = bearer(sign_up(client, name="Ben")["token"])
    assert patch(client, synced, 1, {"note": "mine now"}, headers=other).status_code == 404  # not published: unseen
    assert client.patch(f"{API}/observations/{synced['id']}", json={"base_version": 1, "fields": {}}).status_code == 401
    assert client.get(f"{API}/observations/{synced['id']}/version", headers=other).status_code == 404
    admin = bearer(make_token("admin", "field"))
    assert patch(client, synced, 1, {"note": "checked"}, headers=admin).status_code == 200
    assert client.patch(f"{API}/observations/999999", json={"base_version": 1, "fields": {}},
                        headers=synced["headers"]).status_code == 404


def test_an_invalid_edit_is_refused_and_changes_no_version(client: Any, synced: dict[str, Any]) -> None:
    refused = patch(client, synced, 1, {"note": "\x00"})
    assert refused.status_code == 422, refused.text
    assert version(client, synced)["version"] == 1


def test_two_edits_from_one_version_at_once_never_both_apply(engine: Any, client: Any, synced: dict[str, Any]) -> None:
    principal = authenticate(engine, synced["token"])
    barrier = threading.Barrier(4)
    outcomes: list[Any] = []

    def send(value: int) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes.append(edits.edit(engine, principal, synced["id"], 1, {"count": value}))
        except edits.EditConflict as conflict:
            outcomes.append(conflict)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(10, 14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    applied = [o for o in outcomes if isinstance(o, dict)]
    assert len(outcomes) == 4 and len(applied) == 1
    assert version(client, synced) == {"observation_id": synced["id"], "version": 2,
                                       "fields": {"note": "a fox", "count": applied[0]["fields"]["count"]}}
