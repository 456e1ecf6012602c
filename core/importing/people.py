"""The people behind imported observations.

A person gets an account (found, or made as a contributor of the project) only where the source
says they consented (the mapping's ``consent`` column is yes); their licence consent is recorded
(``core.db.models.Consent``, the project's ``licence_version``). Every imported observation of a
person the source names carries ``source_contributor``: an HMAC-SHA256 of the source's user id
(with the source's name), keyed with a secret of this installation, so that per-person analyses
work without an account and without a name. The name of someone who did not consent is never
stored.

The key: ``OBSERVATORY_IMPORT_PSEUDONYM_KEY`` (or ``--pseudonym-key``) when set, where
``env:NAME`` reads the variable NAME; otherwise a random key made once in
``<data_dir>/import-pseudonym.key`` (mode 0600). Keep it: with another key the same person gets
another pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from sqlalchemy import select

from core.consent import LICENCE
from core.db.models import Account, Consent, Membership, Observation, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.importing.mapping import SourceError
from core.importing.rows import SourceRow
from core.secret_keys import secret_key
from core.types import ProjectContext

KEY_FILE = "import-pseudonym.key"
KEY_ENV = "OBSERVATORY_IMPORT_PSEUDONYM_KEY"
IMPORTED_NAME = "Imported contributor"


def pseudonym_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The secret behind ``source_contributor`` (see the module's docstring)."""
    configured = os.environ.get(KEY_ENV, "") if configured is None else configured
    return secret_key(configured, Path(data_dir) / KEY_FILE, setting="the import pseudonym key",
                      error=SourceError, code="import_key_missing")


def source_contributor(key: bytes, source: str, user_id: str) -> str:
    """The pseudonym of a source's user: 64 hex characters, the same on every run with one key."""
    return hmac.new(key, f"{source}\x1f{user_id}".encode("utf-8"), hashlib.sha256).hexdigest()


class People:
    """Accounts and pseudonyms of one import run (each person is looked up once)."""

    def __init__(self, engine: Engine, project: ProjectContext, source: str, key: bytes):
        self.engine = engine
        self.project = project
        self.source = source
        self.key = key
        self.accounts: dict[str, int] = {}
        self.made = 0
        self._pseudonyms: dict[str, str] = {}

    def pseudonym(self, row: SourceRow) -> str | None:
        if not row.user_id:
            return None
        found = self._pseudonyms.get(row.user_id)
        if found is None:  # each person's once: a source has far fewer people than rows
            if len(self._pseudonyms) >= 100_000:
                self._pseudonyms.clear()
            found = self._pseudonyms[row.user_id] = source_contributor(self.key, self.source, row.user_id)
        return found

    def contributors(self, rows: list[SourceRow]) -> list[int | None]:
        """The account of each row's person where they consented (found or made), else None."""
        wanted = {self._person(row): row for row in rows if row.consent and self._person(row)}
        missing = {person: row for person, row in wanted.items() if person not in self.accounts}
        if missing:
            with transaction(self.engine.sessions) as session:
                for person, row in missing.items():
                    self.accounts[person] = self._account(session, row)
        return [self.accounts[self._person(row)] if row.consent and self._person(row) else None for row in rows]

    @staticmethod
    def _person(row: SourceRow) -> str:
        return f"id:{row.user_id}" if row.user_id else (f"email:{row.email}" if row.email else "")

    def _account(self, session, row: SourceRow) -> int:  # type: ignore[no-untyped-def]
        account_id = None
        if row.email:
            account_id = session.scalar(select(Account.id).where(Account.email == row.email))
        pseudonym = self.pseudonym(row)
        if account_id is None and pseudonym:  # imported before: the same person of the same source
            account_id = session.scalar(select(Observation.contributor_id).where(
                Observation.project == self.project.slug, Observation.source_contributor == pseudonym,
                Observation.contributor_id.is_not(None)).limit(1))
        if account_id is None:
            account = Account(display_name=(row.user_name or IMPORTED_NAME)[:200], email=row.email)
            session.add(account)
            session.flush()
            account_id = account.id
            self.made += 1
        if session.scalar(select(Membership.id).where(Membership.account_id == account_id,
                                                      Membership.project == self.project.slug)) is None:
            session.add(Membership(account_id=account_id, project=self.project.slug, role="contributor"))
        answered = session.scalar(select(Consent.id).where(
            Consent.account_id == account_id, Consent.project == self.project.slug, Consent.choice == LICENCE).limit(1))
        if answered is None:  # an answer the person gave here since is theirs: the source's does not replace it
            session.add(Consent(account_id=account_id, project=self.project.slug, choice=LICENCE,
                                version=self.project.licence_version, agreed=True, at=utcnow()))
        return account_id
