"""Accounts: people with a role in each project (memberships), an optional e-mail, and for staff a
password (argon2id) to sign in to the web.

Sign-in is limited: after ``sign_in_max_failures`` wrong passwords for one account, or
``sign_in_max_failures_per_address`` from one address, within ``sign_in_window_s``, further
attempts are refused (429) until the window has passed, whether the password is right or not.
Failures are kept only for that window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from core.db.models import Account, ApiToken, Membership, SignInFailure, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.errors import Conflict, EngineError, NotFound
from core.tokens import PROJECT_ROLES, NewToken, create_account_token, forget_tokens

_NOT_IN_EMAIL = r"@\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# no \s: Python's and JSON Schema's (ECMA's) differ (Python's takes \x1c-\x1f and \x85), and the
# document must say exactly what the server accepts
EMAIL_PATTERN = rf"^[^{_NOT_IN_EMAIL}]{{1,64}}@[^{_NOT_IN_EMAIL}]{{1,255}}$"
EMAIL = re.compile(EMAIL_PATTERN)
DISPLAY_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 hashes any length; a megabyte "password" would only cost CPU
_hasher = PasswordHasher()  # argon2id, with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AccountInputError(EngineError):
    """A value an account cannot take (an e-mail, a name, a role, a password)."""

    http_status = 422


class SignInRefused(EngineError):
    """Wrong e-mail or password: the same words for both, so that no answer tells which."""

    code = "invalid_credentials"
    http_status = 401


class TooManyAttempts(EngineError):
    code = "too_many_attempts"
    http_status = 429

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class AccountInfo:
    id: int
    display_name: str
    email: str | None
    is_operator: bool
    has_password: bool
    created_at: datetime
    last_seen_at: datetime | None
    memberships: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "display_name": self.display_name, "email": self.email,
                "is_operator": self.is_operator, "has_password": self.has_password,
                "created_at": self.created_at.isoformat(),
                "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
                "memberships": self.memberships}


def _info(account: Account) -> AccountInfo:
    return AccountInfo(account.id, account.display_name, account.email, account.is_operator,
                       account.password_hash is not None, account.created_at, account.last_seen_at,
                       {m.project: m.role for m in account.memberships})


def normalise_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    if not EMAIL.match(email):  # before lower(), which may lengthen it ("İ"), as the schema checks it
        raise AccountInputError(f"{email!r} is not an e-mail address", code="invalid_email")
    return email.lower()


def _display_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise AccountInputError("a display name has 1 to 200 characters and no control characters",
                          code="invalid_display_name")
    return name


def _check_role(engine: Engine, project: str, role: str) -> None:
    if role not in PROJECT_ROLES:
        raise AccountInputError(f"unknown role {role!r}; one of {', '.join(PROJECT_ROLES)}", code="unknown_role")
    if project not in engine.registry.contexts():
        raise NotFound(f"unknown project {project!r}", code="unknown_project")


def _load(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id, options=[selectinload(Account.memberships)])
    if account is None:
        raise NotFound(f"no account {account_id}", code="account_not_found")
    return account


def _token_ids(session: Session, account_id: int) -> list[int]:
    return list(session.scalars(select(ApiToken.id).where(ApiToken.account_id == account_id)))


def create_account(engine: Engine, display_name: str, *, email: str | None = None, operator: bool = False,
                   memberships: dict[str, str] | None = None) -> AccountInfo:
    """A new account, with roles in projects (``{"demo": "admin"}``)."""
    email = normalise_email(email)
    for project, role in (memberships or {}).items():
        _check_role(engine, project, role)
    with transaction(engine.sessions) as session:
        if email is not None and session.scalar(select(Account.id).where(Account.email == email)) is not None:
            raise Conflict(f"an account with the e-mail {email} exists", code="email_taken")
        account = Account(display_name=_display_name(display_name), email=email, is_operator=operator)
        session.add(account)
        session.flush()
        for project, role in (memberships or {}).items():
            session.add(Membership(account_id=account.id, project=project, role=role))
        session.flush()
        session.refresh(account, ["memberships"])
        return _info(account)


def get_account(engine: Engine, account_id: int) -> AccountInfo:
    with transaction(engine.readers) as session:
        return _info(_load(session, account_id))


def list_accounts(engine: Engine, project: str | None = None) -> list[AccountInfo]:
    """Every account, or the members of ``project``, by id."""
    query = select(Account).options(selectinload(Account.memberships)).order_by(Account.id)
    if project is not None:
        query = query.where(Account.id.in_(select(Membership.account_id).where(Membership.project == project)))
    with transaction(engine.readers) as session:
        return [_info(a) for a in session.scalars(query)]


def grant(engine: Engine, account_id: int, project: str, role: str) -> AccountInfo:
    """Give the account ``role`` in ``project`` (replacing the role it had there)."""
    _check_role(engine, project, role)
    with transaction(engine.sessions) as session:
        account = _load(session, account_id)
        current = next((m for m in account.memberships if m.project == project), None)
        if current is None:
            account.memberships.append(Membership(project=project, role=role))
        else:
            current.role = role
        session.flush()
        info, tokens = _info(account), _token_ids(session, account_id)
    forget_tokens(tokens)  # the new role holds at once in this process; in others within token_cache_s
    return info


def revoke(engine: Engine, account_id: int, project: str) -> AccountInfo:
    """Take away the account's role in ``project``; its tokens narrowed to it stop working there."""
    with transaction(engine.sessions) as session:
        account = _load(session, account_id)
        current = next((m for m in account.memberships if m.project == project), None)
        if current is None:
            raise NotFound(f"account {account_id} has no role in {project!r}", code="membership_not_found")
        account.memberships.remove(current)
        session.flush()
        info, tokens = _info(account), _token_ids(session, account_id)
    forget_tokens(tokens)  # this process at once; others within token_cache_s
    return info


def set_operator(engine: Engine, account_id: int, operator: bool) -> AccountInfo:
    with transaction(engine.sessions) as session:
        account = _load(session, account_id)
        account.is_operator = operator
        info, tokens = _info(account), _token_ids(session, account_id)
    forget_tokens(tokens)
    return info


def check_password_strength(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountInputError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters", code="weak_password")
    if password.strip() == "" or len(set(password)) < 4:
        raise AccountInputError("this password is too easy to guess", code="weak_password")


def set_password(engine: Engine, account_id: int, password: str) -> None:
    """Store the argon2id hash of ``password``; the account needs an e-mail to sign in with."""
    check_password_strength(password)
    with transaction(engine.sessions) as session:
        account = _load(session, account_id)
        if account.email is None:
            raise AccountInputError(f"account {account_id} has no e-mail to sign in with: set one first "
                              "(observatory accounts create --email, or set-email)", code="email_required")
        account.password_hash = _hasher.hash(password)


def set_email(engine: Engine, account_id: int, email: str | None) -> AccountInfo:
    email = normalise_email(email)
    with transaction(engine.sessions) as session:
        account = _load(session, account_id)
        if email is not None and session.scalar(
                select(Account.id).where(Account.email == email, Account.id != account_id)) is not None:
            raise Conflict(f"an account with the e-mail {email} exists", code="email_taken")
        account.email = email
        if email is None:
            account.password_hash = None
        return _info(account)


def _failures_since(session: Session, since: datetime, *, account_id: int | None = None,
                    address: str | None = None) -> tuple[int, datetime | None]:
    query = select(func.count(), func.min(SignInFailure.at)).where(SignInFailure.at >= since)
    if account_id is not None:
        query = query.where(SignInFailure.account_id == account_id)
    if address is not None:
        query = query.where(SignInFailure.address == address)
    count, oldest = session.execute(query).one()
    return int(count), oldest


def _refuse_if_limited(engine: Engine, session: Session, account_id: int | None, address: str) -> None:
    settings = engine.settings
    window = timedelta(seconds=settings.sign_in_window_s)
    now = utcnow()
    checks = [(dict(address=address), settings.sign_in_max_failures_per_address, "from this address")]
    if account_id is not None:
        checks.append((dict(account_id=account_id), settings.sign_in_max_failures, "for this account"))
    for where, limit, who in checks:
        count, oldest = _failures_since(session, now - window, **where)
        if count >= limit and oldest is not None:
            wait = max(1, int((oldest + window - now).total_seconds()) + 1)
            raise TooManyAttempts(f"too many failed sign-ins {who}; try again in {wait} s", wait)


def sign_in(engine: Engine, email: str, password: str, address: str) -> tuple[AccountInfo, NewToken, datetime]:
    """Check an e-mail and password; a session token (``kind`` session) for the account and when
    it expires (after ``session_hours``), or SignInRefused / TooManyAttempts. The account's
    sessions that have expired are deleted on the way."""
    address = (address or "?")[:64]
    try:
        email_key = normalise_email(email)
    except EngineError:
        email_key = None
    now = utcnow()
    with transaction(engine.sessions) as session:
        session.execute(delete(SignInFailure).where(
            SignInFailure.at < now - timedelta(seconds=engine.settings.sign_in_window_s)))
        account = None if email_key is None else session.scalars(
            select(Account).where(Account.email == email_key).options(selectinload(Account.memberships))).first()
        account_id = account.id if account is not None else None
        _refuse_if_limited(engine, session, account_id, address)
    stored = account.password_hash if account is not None else None
    ok = False
    try:
        # a verify even without an account, so that the time taken does not tell which e-mails exist
        ok = _hasher.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD]) and stored is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        with transaction(engine.sessions) as session:
            session.add(SignInFailure(account_id=account_id, address=address, at=utcnow()))
        raise SignInRefused("wrong e-mail or password")
    assert account is not None and stored is not None
    if _hasher.check_needs_rehash(stored):
        with transaction(engine.sessions) as session:
            _load(session, account.id).password_hash = _hasher.hash(password)
    with transaction(engine.sessions) as session:
        session.execute(delete(ApiToken).where(ApiToken.account_id == account.id, ApiToken.kind == "session",
                                               ApiToken.expires_at < utcnow()))
    expires_at = utcnow() + timedelta(hours=engine.settings.session_hours)
    token = create_account_token(engine, account.id, name="web sign-in", kind="session", expires_at=expires_at)
    return _info(account), token, expires_at


def sign_out(engine: Engine, token_id: int) -> None:
    """End a session: its token stops working at once."""
    from core.tokens import revoke_token

    revoke_token(engine, token_id)
