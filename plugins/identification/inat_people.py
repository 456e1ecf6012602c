"""How the iNaturalist-compatible API (``/inat/v1``) shows people: a pseudonymous, stable handle,
never an account id, an e-mail or a display name.

A handle is ``{"id": N, "login": "observer-<base36 of N>"}`` where N is the account id encrypted
with a secret key (a 52-bit Feistel permutation whose rounds are keyed BLAKE2): stable across
requests and restarts, unique per account, safe as a JSON number in JavaScript, and reversible by
the server alone, so that ``user_id=N`` and ``user_login=observer-...`` filters need no table.

Observers and identifiers get handles of two separate spaces (two keys): the same person is
``observer-...`` on their observations and ``identifier-...`` on their identifications. Identifiers
are shown by display name in the engine's own identification API; if one handle served both,
matching an identification's handle to that display name would name the observer of every
observation under the same handle, which the engine never shows the public.

The key: ``services.identification.config.pseudonym_key`` in registry.yaml when set (``env:NAME``
reads the variable NAME), else a random key made once in ``<data_dir>/inat-pseudonym.key`` (0600).
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from core.engine import Engine
from core.errors import EngineError
from core.secret_keys import secret_key

KEY_FILE = "inat-pseudonym.key"
ROLES = ("observer", "identifier")
_HALF_BITS = 26
_HALF_MASK = (1 << _HALF_BITS) - 1
_ROUNDS = 4
MAX_ACCOUNT_ID = 2_147_483_647
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _DIGITS[rest] + out
        if not number:
            return out


class Handles:
    """Pseudonymous handles of accounts, one space per role (``ROLES``)."""

    def __init__(self, key: bytes):
        base = hashlib.sha256(key).digest()
        self._keys = {role: hashlib.blake2b(role.encode(), key=base, digest_size=32).digest() for role in ROLES}
        self.namespace = uuid.UUID(bytes=hashlib.blake2b(b"uuid", key=base, digest_size=16).digest())
        """Of the uuids this installation gives observations (stable, its own)."""
        self._cache: dict[tuple[str, int], dict[str, Any]] = {}
        self._uuids: dict[int, str] = {}

    def _round(self, role: str, number: int, value: int) -> int:
        digest = hashlib.blake2b(value.to_bytes(4, "big"), key=self._keys[role], digest_size=4,
                                 person=number.to_bytes(1, "big") * 16).digest()
        return int.from_bytes(digest, "big") & _HALF_MASK

    def observation_uuid(self, obs_id: int) -> str:
        """A stable uuid of an observation, this installation's own (a name-based uuid, RFC 4122 version 5)."""
        found = self._uuids.get(obs_id)
        if found is None:
            found = str(uuid.uuid5(self.namespace, f"observation:{obs_id}"))
            if len(self._uuids) < 1_000_000:
                self._uuids[obs_id] = found
        return found

    def public_id(self, role: str, account_id: int) -> int:
        """The handle's number of ``account_id`` (0 <= N < 2**52)."""
        left, right = account_id >> _HALF_BITS, account_id & _HALF_MASK
        for number in range(_ROUNDS):
            left, right = right, left ^ self._round(role, number, right)
        return (left << _HALF_BITS) | right

    def account_id(self, role: str, public_id: int) -> int | None:
        """The account behind a handle's number; None for a number no account can have."""
        if not 0 <= public_id < 1 << (2 * _HALF_BITS):
            return None
        left, right = public_id >> _HALF_BITS, public_id & _HALF_MASK
        for number in reversed(range(_ROUNDS)):
            left, right = right ^ self._round(role, number, left), left
        account = (left << _HALF_BITS) | right
        return account if 1 <= account <= MAX_ACCOUNT_ID else None

    def user(self, role: str, account_id: int | None) -> dict[str, Any] | None:
        """``{"id", "login"}`` of ``account_id`` as ``role``; None without an account (anonymous, erased)."""
        if account_id is None:
            return None
        key = (role, account_id)
        found = self._cache.get(key)
        if found is None:
            number = self.public_id(role, account_id)
            found = {"id": number, "login": f"{role}-{_base36(number)}"}
            if len(self._cache) < 100_000:
                self._cache[key] = found
        return dict(found)

    def account_of(self, role: str, value: str) -> int | None:
        """The account a ``user_id`` (a handle's number) or ``user_login`` value of ``role`` names;
        None when it names none."""
        text = value.strip().lower()
        prefix = f"{role}-"
        try:
            number = int(text[len(prefix):], 36) if text.startswith(prefix) else int(text, 10)
        except ValueError:
            return None
        return self.account_id(role, number)


def handles(engine: Engine) -> Handles:
    """The engine's handles (its key read or made once)."""
    return engine.state("identification.inat_handles", lambda: Handles(_key(engine)))


def _key(engine: Engine) -> bytes:
    spec = engine.registry.services.get("identification")
    configured = str((spec.config.get("pseudonym_key") if spec else "") or "")
    return secret_key(configured, Path(engine.settings.data_dir) / KEY_FILE,
                      setting="services.identification.config.pseudonym_key", error=EngineError,
                      code="inat_key_missing")
