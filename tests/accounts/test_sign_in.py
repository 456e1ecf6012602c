"""Staff sign in with an e-mail and a password (argon2id), within limits on failed attempts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.accounts import create_account, set_password
from core.db.models import Account
from core.db.session import transaction
from core.errors import EngineError

API = "/api/v1"
PASSWORD = "kestrel-over-the-marsh-42"


@pytest.fixture
def admin(engine):
    info = create_account(engine, "Grace", email="Grace@Example.org", memberships={"alpha": "admin"})
    set_password(engine, info.id, PASSWORD)
    return info


def sign_in(client, email, password):
    return client.post(f"{API}/sign-in", json={"email": email, "password": password})


def test_an_admin_signs_in_acts_and_signs_out(admin, client, auth):
    r = sign_in(client, "grace@example.org", PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["account"]["memberships"] == {"alpha": "admin"}
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=11) < expires - datetime.now(timezone.utc) <= timedelta(hours=12)
    token = body["token"]
    assert client.get(f"{API}/projects/alpha/members", headers=auth(token)).status_code == 200
    assert client.post(f"{API}/sign-out", headers=auth(token)).status_code == 204
    assert client.get(f"{API}/me", headers=auth(token)).status_code == 401


def test_the_password_is_stored_as_an_argon2id_hash(admin, engine):
    with transaction(engine.sessions) as session:
        stored = session.scalar(select(Account.password_hash).where(Account.id == admin.id))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(admin, client):
    wrong = sign_in(client, "grace@example.org", "not-her-password-at-all")
    unknown = sign_in(client, "nobody@example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


def test_too_many_failures_for_an_account_lock_it_for_the_window(admin, engine, client):
    for _ in range(engine.settings.sign_in_max_failures):
        assert sign_in(client, "grace@example.org", "guess-guess-guess").status_code == 401
    locked = sign_in(client, "grace@example.org", PASSWORD)  # even the right password, within the window
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(locked.headers["retry-after"]) <= engine.settings.sign_in_window_s + 1
    # another account from the same address is not locked by Grace's failures
    other = create_account(engine, "Lin", email="lin@example.org")
    set_password(engine, other.id, "another-long-passphrase")
    assert sign_in(client, "lin@example.org", "another-long-passphrase").status_code == 200


def test_too_many_failures_from_one_address_lock_that_address(admin, engine, client):
    engine.settings.sign_in_max_failures_per_address = 3
    for i in range(3):
        assert sign_in(client, f"nobody{i}@example.org", "whatever-it-is").status_code == 401
    assert sign_in(client, "grace@example.org", PASSWORD).status_code == 429


def test_the_window_passes(admin, engine, client):
    engine.settings.sign_in_window_s = 3
    for _ in range(engine.settings.sign_in_max_failures):
        sign_in(client, "grace@example.org", "guess-guess-guess")
    assert sign_in(client, "grace@example.org", PASSWORD).status_code == 429
    import time
    time.sleep(3.1)
    assert sign_in(client, "grace@example.org", PASSWORD).status_code == 200


def test_an_expired_session_stops_working(admin, engine, client, auth):
    engine.settings.session_hours = 0.0003  # about a second
    token = sign_in(client, "grace@example.org", PASSWORD).json()["token"]
    import time
    time.sleep(1.5)
    client.app.state.principals.ttl_s = 0
    assert client.get(f"{API}/me", headers=auth(token)).status_code == 401


@pytest.mark.parametrize("password", ["short", "aaaaaaaaaaaaaaaa", " " * 12])
def test_weak_passwords_are_refused(admin, engine, password):
    with pytest.raises(EngineError) as caught:
        set_password(engine, admin.id, password)
    assert caught.value.code == "weak_password"


def test_an_account_without_an_email_cannot_have_a_password(engine):
    info = create_account(engine, "No mail")
    with pytest.raises(EngineError, match="no e-mail"):
        set_password(engine, info.id, PASSWORD)


def test_expired_sessions_are_deleted_at_the_next_sign_in(admin, engine, client):
    from core.db.models import ApiToken

    engine.settings.session_hours = 0.0002  # under a second
    sign_in(client, "grace@example.org", PASSWORD)
    import time
    time.sleep(1.0)
    engine.settings.session_hours = 12
    assert sign_in(client, "grace@example.org", PASSWORD).status_code == 200
    with transaction(engine.sessions) as session:
        sessions = session.scalars(select(ApiToken).where(ApiToken.account_id == admin.id,
                                                          ApiToken.kind == "session")).all()
    assert len(sessions) == 1, "the expired session is gone; the new one stays"
