"""Sign-up from a phone, the devices of an account, and a second device added with a one-time code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from core import consent
from core.db.models import ApiToken, utcnow
from plugins.mobile_bridge import devices
from tests.plugins.mobile_bridge.bridge_kit import API, bearer, bridge_registry, item, sign_up

EXTRA = """  - slug: strict
    name: Strict
    services: {mobile_bridge: {require_email: true}}
  - slug: named
    name: Named
    services: {mobile_bridge: {allow_pseudonymous: false}}
"""


@pytest.fixture
def registry() -> str:
    return bridge_registry(extra_projects=EXTRA)




def test_sign_up_makes_an_account_with_its_consents_licence_and_a_device_token(client: Any, engine: Any) -> None:
    person = sign_up(client, email="Ana@Example.org", licence="CC0-1.0",
                     consents=[{"choice": "newsletter", "version": "2", "agreed": True}])
    assert person["token"].startswith("obs_") and person["email"] == "ana@example.org"
    assert person["licence"] == "CC0-1.0" and person["project"] == "field"
    me = client.get("/api/v1/me", headers=bearer(person["token"])).json()
    assert me["id"] == person["account_id"] and me["memberships"] == {"field": "contributor"}
    answers = consent.answers_of(engine, person["account_id"], "field")["current"]
    assert {(a["choice"], a["version"], a["agreed"]) for a in answers} == {("licence", "1", True),
                                                                          ("newsletter", "2", True)}
    # the token is stored only as a hash
    with engine.readers() as session:
        stored = session.get(ApiToken, person["device_id"])
        assert stored.kind == "device" and person["token"] not in (stored.token_hash, stored.prefix)
    # the licence chosen is the one the person's synced observations carry
    [answer] = client.post(f"{API}/projects/field/sync", json={"items": [item()]},
                           headers=bearer(person["token"])).json()["items"]
    obs = client.get(f"/api/v1/observations/{answer['observation_id']}", headers=bearer(person["token"])).json()
    assert obs["licence"] == "CC0-1.0"


@pytest.mark.parametrize(("slug", "body", "status", "code"), [
    ("strict", {}, 422, "email_required"),
    ("named", {}, 422, "email_required"),
    ("field", {"licence": "CC-BY-NC-4.0"}, 422, "unknown_licence"),
    ("field", {"consents": [{"choice": "newsletter", "version": "1", "agreed": True}]}, 422,
     "consent_version_outdated"),
    ("field", {"consents": [{"choice": "lottery", "version": "1", "agreed": True}]}, 422, "unknown_choice"),
    ("closed", {}, 404, "mobile_bridge_not_enabled"),
])
def test_sign_up_is_refused_before_anything_is_stored(client: Any, engine: Any, slug: str, body: dict[str, Any],
                                                       status: int, code: str) -> None:
    response = client.post(f"{API}/projects/{slug}/signup", json={"display_name": "Ana", "device_name": "phone",
                                                                  **body})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    from core.accounts import list_accounts

    assert list_accounts(engine) == []


def test_sign_up_with_an_e_mail_where_one_is_required_and_an_e_mail_used_twice(client: Any) -> None:
    assert sign_up(client, "strict", email="ana@example.org")["email"] == "ana@example.org"
    again = client.post(f"{API}/projects/named/signup", json={"display_name": "Ana", "device_name": "tablet",
                                                              "email": "ANA@example.org"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "email_taken"


def test_devices_are_listed_per_account_and_a_revoked_one_stops_at_once(client: Any) -> None:
    ana, ben = sign_up(client), sign_up(client, name="Ben")
    listed = client.get(f"{API}/devices", headers=bearer(ana["token"])).json()["items"]
    assert [(d["id"], d["name"], d["current"], d["revoked"]) for d in listed] == [
        (ana["device_id"], "Ana's phone", True, False)]
    assert client.delete(f"{API}/devices/{ana['device_id']}", headers=bearer(ben["token"])).status_code == 404
    assert client.delete(f"{API}/devices/{ana['device_id']}", headers=bearer(ana["token"])).status_code == 204
    assert client.get(f"{API}/devices", headers=bearer(ana["token"])).status_code == 401
    assert client.get(f"{API}/devices").status_code == 401


def test_a_second_device_pairs_with_a_one_time_code(client: Any) -> None:
    ana = sign_up(client)
    made = client.post(f"{API}/pairing-codes", headers=bearer(ana["token"]))
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    assert len(code) == 8 and set(code) <= set(devices.CODE_ALPHABET)
    typed = f"{code[:4].lower()}-{code[4:]}"  # as a person may type it
    paired = client.post(f"{API}/projects/field/pair", json={"code": typed, "device_name": "Ana's tablet"})
    assert paired.status_code == 201, paired.text
    tablet = paired.json()
    assert tablet["account_id"] == ana["account_id"] and tablet["token"] != ana["token"]
    names = [d["name"] for d in client.get(f"{API}/devices", headers=bearer(tablet["token"])).json()["items"]]
    assert names == ["Ana's phone", "Ana's tablet"]
    again = client.post(f"{API}/projects/field/pair", json={"code": code, "device_name": "a third"})
    assert again.status_code == 404 and again.json()["error"]["code"] == "invalid_pairing_code"


def test_a_pairing_code_expires_and_needs_a_device_token(client: Any, engine: Any, make_token: Any) -> None:
    ana = sign_up(client)
    code = client.post(f"{API}/pairing-codes", headers=bearer(ana["token"])).json()["code"]
    with engine.db.begin() as conn:  # as it stands eleven minutes later
        conn.execute(update(devices.PAIRING_CODES).values(expires_at=utcnow() - timedelta(minutes=1)))
    late = client.post(f"{API}/projects/field/pair", json={"code": code, "device_name": "tablet"})
    assert late.status_code == 404
    assert client.post(f"{API}/pairing-codes", headers=bearer(make_token("admin", "field"))).status_code == 403
    assert client.post(f"{API}/pairing-codes").status_code == 401


def test_a_code_pairs_only_in_a_project_its_person_joined(client: Any) -> None:
    ana = sign_up(client)
    code = client.post(f"{API}/pairing-codes", headers=bearer(ana["token"])).json()["code"]
    refused = client.post(f"{API}/projects/strict/pair", json={"code": code, "device_name": "tablet"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_member"
    assert client.post(f"{API}/projects/field/pair", json={"code": code, "device_name": "tablet"}).status_code == 201


def test_guessing_codes_is_cut_off_per_address(client: Any) -> None:
    ana = sign_up(client)
    code = client.post(f"{API}/pairing-codes", headers=bearer(ana["token"])).json()["code"]
    for _ in range(devices.PAIR_MAX_FAILURES):
        wrong = client.post(f"{API}/projects/field/pair", json={"code": "ZZZZZZZZ", "device_name": "x"})
        assert wrong.status_code == 404
    blocked = client.post(f"{API}/projects/field/pair", json={"code": code, "device_name": "tablet"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


def test_forgetting_an_account_removes_its_choice_and_codes(client: Any, engine: Any) -> None:
    ana = sign_up(client, licence="CC0-1.0")
    code = client.post(f"{API}/pairing-codes", headers=bearer(ana["token"])).json()["code"]
    devices.forget_account(engine, ana["account_id"])
    assert devices.chosen_licence(engine, ana["account_id"], "field") is None
    assert client.post(f"{API}/projects/field/pair", json={"code": code, "device_name": "tablet"}).status_code == 404
