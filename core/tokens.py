"""Bearer tokens of accounts: random, shown once, stored only as a sha256 hash; and the caller
(``Principal``) a token stands for."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import weakref
from dataclasses import dataclass

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from core.db.models import Account, ApiToken, Membership, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, Forbidden, NotFound

ROLES = ("operator", "admin", "moderator", "expert", "contributor")
"""Roles a token can be made with: the operator flag, or a role in one project."""
PROJECT_ROLES = ("admin", "moderator", "expert", "contributor")
ROLE_RANK = {"contributor": 1, "expert": 2, "moderator": 3, "admin": 4}
STAFF_ROLES = ("admin", "moderator")
TOKEN_PREFIX = "obs_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lower_role(a: str, b: str | None) -> str:
    """The lower of two project roles (``b`` None: no narrowing)."""
    return a if b is None or b == "operator" or ROLE_RANK[a] <= ROLE_RANK.get(b, 0) else b


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, through one of its tokens, with its roles per project.

    ``roles`` are the account's memberships as the token narrows them (one project, at most one
    role); ``operator`` is the account's operator flag, kept only by a token not narrowed."""

    account_id: int | None = None
    token_id: int | None = None
    operator: bool = False
    roles: tuple[tuple[str, str], ...] = ()
    """(project, role) pairs, sorted by project."""

    @property
    def anonymous(self) -> bool:
        return self.account_id is None

    @property
    def contributor_id(self) -> int | None:
        """The account, as observations name their contributor."""
        return self.account_id

    @property
    def actor(self) -> str:
        """How the audit log names the caller (an erased account's entries are rewritten)."""
        if self.anonymous:
            return "anonymous"
        return f"account:{self.account_id} ({self.role}, token:{self.token_id})"

    def role_in(self, project: str) -> str | None:
        """The caller's role in ``project`` ("admin", ...), "operator" for an operator, or None."""
        if self.operator:
            return "operator"
        return dict(self.roles).get(project)

    @property
    def role(self) -> str:
        """A word for messages: operator, the one role held, or member."""
        if self.anonymous:
            return "anonymous"
        if self.operator:
            return "operator"
        held = {r for _, r in self.roles}
        return held.pop() if len(held) == 1 else ("member" if held else "no role")

    @property
    def projects(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.roles)

    def is_member_of(self, project: str) -> bool:
        return self.role_in(project) is not None

    def is_staff_of(self, project: str) -> bool:
        """Operator, or admin or moderator of ``project``."""
        return self.role_in(project) in ("operator", *STAFF_ROLES)

    def is_admin_of(self, project: str) -> bool:
        return self.role_in(project) in ("operator", "admin")

    def is_expert_of(self, project: str) -> bool:
        """Expert, moderator or admin of ``project`` (or an operator)."""
        return self.role_in(project) in ("operator", "admin", "moderator", "expert")

    def may_submit_to(self, project: str) -> bool:
        """Operators submit anywhere; every other account to the projects it is a member of."""
        return self.is_member_of(project)


ANONYMOUS = Principal()


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str
    role: str | None
    project: str | None
    account_id: int

    @property
    def contributor_id(self) -> int:
        return self.account_id


def _check_scope(engine: Engine, role: str | None, project: str | None) -> None:
    if role is not None and role not in ROLES:
        raise EngineError(f"unknown role {role!r}; one of {', '.join(ROLES)}", code="unknown_role")
    if project is not None and project not in engine.registry.contexts():
        raise NotFound(f"unknown project {project!r}", code="unknown_project")
    if role == "operator" and project:
        raise EngineError("an operator token is for every project; leave out --project", code="invalid_token_scope")


def _new_token(session: Session, account_id: int, role: str | None, project: str | None, name: str,
               kind: str = "api", expires_at: datetime | None = None) -> NewToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(token_hash=hash_token(token), prefix=token[: len(TOKEN_PREFIX) + 6], name=name, role=role,
                   project=project, account_id=account_id, kind=kind, expires_at=expires_at)
    session.add(row)
    session.flush()
    return NewToken(row.id, token, role, project, account_id)


def create_token(engine: Engine, role: str, project: str | None = None, name: str = "") -> NewToken:
    """A new account with ``role`` in ``project`` (or the operator flag), and a token for it.

    The quick way to give a device or a script access; for a person, make an account
    (``core.accounts``) and give it tokens with :func:`create_account_token`. The clear text is
    returned here once and never stored."""
    _check_scope(engine, role, project)
    if role != "operator" and not project:
        raise EngineError(f"a {role} token is for one project: name it with --project", code="project_required")
    with transaction(engine.sessions) as session:
        account = Account(display_name=name or f"{role} token", is_operator=role == "operator")
        session.add(account)
        session.flush()
        if role != "operator":
            session.add(Membership(account_id=account.id, project=project, role=role))
        return _new_token(session, account.id, role, project, name)


def create_account_token(engine: Engine, account_id: int, *, project: str | None = None, role: str | None = None,
                         name: str = "", kind: str = "api", expires_at: datetime | None = None) -> NewToken:
    """A token of an existing account, narrowed to ``project`` and to at most ``role``.

    A role higher than the account holds in the project is refused (``role_too_high``)."""
    _check_scope(engine, role, project)
    with transaction(engine.sessions) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account {account_id}", code="account_not_found")
        if role == "operator" and not account.is_operator:
            raise Forbidden(f"account {account_id} is not an operator", code="role_too_high")
        if role not in (None, "operator") and not account.is_operator:
            held = {m.project: m.role for m in account.memberships}
            if project is None:
                raise EngineError("a token narrowed to a role is for one project: name it", code="project_required")
            if project not in held or ROLE_RANK[held[project]] < ROLE_RANK[role]:
                raise Forbidden(f"account {account_id} is not {role} of {project!r}", code="role_too_high")
        return _new_token(session, account_id, role, project, name, kind, expires_at)


def revoke_token(engine: Engine, token_id: int) -> None:
    with transaction(engine.sessions) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no token {token_id}", code="token_not_found")
        row.revoked_at = row.revoked_at or utcnow()
    forget_tokens([token_id])


def forget_tokens(token_ids: list[int]) -> None:
    """This process stops trusting these tokens at once; others within their cache's ttl."""
    for cache in list(_caches):
        for token_id in token_ids:
            cache.forget(token_id)


def list_tokens(engine: Engine, account_id: int | None = None) -> list[dict[str, object]]:
    query = select(ApiToken).order_by(ApiToken.id)
    if account_id is not None:
        query = query.where(ApiToken.account_id == account_id)
    with transaction(engine.sessions) as session:
        return [
            {"id": t.id, "prefix": t.prefix, "name": t.name, "role": t.role, "project": t.project,
             "account_id": t.account_id, "kind": t.kind, "created_at": t.created_at.isoformat(),
             "expires_at": t.expires_at.isoformat() if t.expires_at else None, "revoked": t.revoked_at is not None}
            for t in session.scalars(query)
        ]


def principal_of(account: Account, token: ApiToken | None) -> Principal:
    """What ``account`` may do through ``token`` (None: the account's full rights)."""
    narrow_role = token.role if token is not None else None
    narrow_project = token.project if token is not None else None
    operator = account.is_operator and narrow_role in (None, "operator") and narrow_project is None
    roles = tuple(sorted(
        (m.project, lower_role(m.role, narrow_role)) for m in account.memberships
        if narrow_project is None or m.project == narrow_project))
    return Principal(account.id, token.id if token is not None else None, operator, roles)


LAST_SEEN_STEP = timedelta(minutes=10)


def authenticate(engine: Engine, token: str) -> Principal | None:
    """The principal of a presented token, or None if it is unknown, revoked or expired."""
    now = utcnow()
    with transaction(engine.readers) as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
        if row is None or row.revoked_at is not None or row.account_id is None:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        account = session.get(Account, row.account_id, options=[selectinload(Account.memberships)])
        if account is None:
            return None
        principal = principal_of(account, row)
        stale = account.last_seen_at is None or account.last_seen_at < now - LAST_SEEN_STEP
    if stale:  # "last seen" to within LAST_SEEN_STEP: one write per account per step, not per request
        with transaction(engine.sessions) as session:
            session.execute(update(Account).where(Account.id == principal.account_id).values(last_seen_at=now))
    return principal


_caches: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


class PrincipalCache:
    """Principals of tokens checked in the last ``ttl_s`` seconds, by token hash.

    Saves a database read per API request. Only valid tokens are kept (an unknown one is looked
    up every time, so guessing fills nothing), at most ``max_size``. ``revoke_token`` in this
    process drops its entry at once; a revocation by another process takes effect here within
    ``ttl_s``.
    """

    def __init__(self, ttl_s: float, max_size: int = 10_000):
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        _caches.add(self)

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token_hash: str, principal: Principal) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_size:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
                if len(self._entries) >= self.max_size:
                    self._entries.clear()
            self._entries[token_hash] = (time.monotonic() + self.ttl_s, principal)

    def forget(self, token_id: int) -> None:
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if v[1].token_id != token_id}
