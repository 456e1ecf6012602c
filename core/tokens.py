"""Bearer tokens: random, shown once, stored only as a sha256 hash."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import select

from core.db.models import ApiToken, Contributor, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, NotFound

ROLES = ("operator", "admin", "moderator", "contributor")
PROJECT_ROLES = ("admin", "moderator")
TOKEN_PREFIX = "obs_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, the project it is bound to, and its contributor."""

    role: str  # operator, admin, moderator, contributor, or anonymous
    project: str | None = None
    contributor_id: int | None = None
    token_id: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.role == "anonymous"

    @property
    def actor(self) -> str:
        return "anonymous" if self.anonymous else f"token:{self.token_id} ({self.role})"

    def is_staff_of(self, project: str) -> bool:
        """Operator, or admin or moderator of ``project``."""
        return self.role == "operator" or (self.role in PROJECT_ROLES and self.project == project)

    def may_submit_to(self, project: str) -> bool:
        """Operators submit anywhere; every other token only to the project it was made for
        (a token without a project, from before tokens were bound, submits nowhere)."""
        return self.role == "operator" or (not self.anonymous and self.project == project)


ANONYMOUS = Principal("anonymous")


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str
    role: str
    project: str | None
    contributor_id: int


def create_token(engine: Engine, role: str, project: str | None = None, name: str = "") -> NewToken:
    """Make a token; the clear text is returned here once and never stored."""
    if role not in ROLES:
        raise EngineError(f"unknown role {role!r}; one of {', '.join(ROLES)}", code="unknown_role")
    if role != "operator" and not project:
        raise EngineError(f"a {role} token is for one project: name it with --project", code="project_required")
    if project is not None and project not in engine.registry.contexts():
        raise NotFound(f"unknown project {project!r}", code="unknown_project")
    if role == "operator" and project:
        raise EngineError("an operator token is for every project; leave out --project", code="invalid_token_scope")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(engine.sessions) as session:
        contributor = Contributor(name=name or f"{role} token")
        session.add(contributor)
        session.flush()
        row = ApiToken(token_hash=hash_token(token), prefix=token[: len(TOKEN_PREFIX) + 6], name=name, role=role,
                       project=project, contributor_id=contributor.id)
        session.add(row)
        session.flush()
        return NewToken(row.id, token, role, project, contributor.id)


def revoke_token(engine: Engine, token_id: int) -> None:
    with transaction(engine.sessions) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no token {token_id}", code="token_not_found")
        row.revoked_at = row.revoked_at or utcnow()
    for cache in list(_caches):  # this process forgets it at once; others within their ttl
        cache.forget(token_id)


def list_tokens(engine: Engine) -> list[dict[str, object]]:
    with transaction(engine.sessions) as session:
        return [
            {"id": t.id, "prefix": t.prefix, "name": t.name, "role": t.role, "project": t.project,
             "created_at": t.created_at.isoformat(), "revoked": t.revoked_at is not None}
            for t in session.scalars(select(ApiToken).order_by(ApiToken.id))
        ]


def authenticate(engine: Engine, token: str) -> Principal | None:
    """The principal of a presented token, or None if it is unknown or revoked."""
    with transaction(engine.readers) as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        return Principal(row.role, row.project, row.contributor_id, row.id)


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
