"""Consent: what each person agreed to (or declined) per project, when, and to which version.

A person's newest answer per (project, choice) holds; older ones stay as history. Choices:
``licence`` (the project's data licence, versioned by ``licence_version``), ``attribution``
(name me as the recorder in open data: Darwin Core ``recordedBy``) and the project's own
``consent_choices`` from registry.yaml (a project may also define ``attribution`` there, to give
it its own text and version).

Administrators of a project export the accounts whose newest answer to a choice is yes
(:func:`accounts_agreed`): id, display name, e-mail, when and to which version; nothing else.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Select, func, select

from core.audit import audit
from core.db.models import Account, Consent
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, NotFound
from core.types import ProjectContext

LICENCE = "licence"
"""The project's data licence; its version is the project's ``licence_version``."""
ATTRIBUTION = "attribution"
"""Built-in choice: "name me as the recorder in open data" (Darwin Core recordedBy)."""
ATTRIBUTION_TEXT = "Name me as the recorder of my observations in open data (exports, GBIF)."
ATTRIBUTION_VERSION = "1"
EXPORT_FIELDS = ("account_id", "display_name", "email", "agreed_at", "version")
EXPORT_FORMATS = ("csv", "json")


class UnknownChoice(EngineError):
    code = "unknown_choice"
    http_status = 422


class OutdatedVersion(EngineError):
    code = "consent_version_outdated"
    http_status = 422


@dataclass(frozen=True)
class Choice:
    """A choice a project asks its contributors: its name, the text and the current version."""

    name: str
    text: str
    version: str


def choices(project: ProjectContext) -> dict[str, Choice]:
    """Every choice ``project`` asks, by name: licence, attribution, then the project's own."""
    out = {
        LICENCE: Choice(LICENCE, f"Publish my observations under the project's licence ({project.licence}).",
                        project.licence_version),
        ATTRIBUTION: Choice(ATTRIBUTION, ATTRIBUTION_TEXT, ATTRIBUTION_VERSION),
    }
    for own in project.consent_choices:
        out[own.name] = Choice(own.name, own.text, own.version)
    return out


def choice_of(project: ProjectContext, name: str) -> Choice:
    """The choice ``name`` of ``project``; UnknownChoice (422) naming the known ones otherwise."""
    known = choices(project)
    if name not in known:
        raise UnknownChoice(f"project {project.slug!r} asks no choice {name!r}; its choices: {', '.join(known)}")
    return known[name]


def _row(c: Consent, current: Choice | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"project": c.project, "choice": c.choice, "version": c.version, "agreed": c.agreed,
                           "at": c.at.isoformat()}
    if current is not None:
        out["current_version"] = current.version
        out["outdated"] = c.version != current.version
    return out


def record(engine: Engine, account_id: int, project: ProjectContext, choice: str, version: str,
           agreed: bool) -> dict[str, Any]:
    """Store a person's answer. ``version`` must be the choice's current one (OutdatedVersion, 422,
    naming it, otherwise): an answer to a text the person was not shown would not hold."""
    current = choice_of(project, choice)
    if version != current.version:
        raise OutdatedVersion(f"the current version of {choice!r} in {project.slug!r} is {current.version!r}, "
                              f"not {version!r}: show the person the current text and send its version")
    with transaction(engine.sessions) as session:
        if session.get(Account, account_id) is None:
            raise NotFound(f"no account {account_id}", code="account_not_found")
        row = Consent(account_id=account_id, project=project.slug, choice=choice, version=version, agreed=agreed)
        session.add(row)
        session.flush()
        return _row(row, current)


def answers_of(engine: Engine, account_id: int, project: str | None = None) -> dict[str, Any]:
    """A person's answers: ``current`` (the newest per project and choice, with whether its
    version is still the current one) and ``history`` (every answer, newest first)."""
    query = select(Consent).where(Consent.account_id == account_id)
    if project is not None:
        query = query.where(Consent.project == project)
    with transaction(engine.readers) as session:
        rows = list(session.scalars(query.order_by(Consent.id.desc())))
    current: dict[tuple[str, str], dict[str, Any]] = {}
    contexts = engine.registry.contexts()
    for c in rows:
        if (c.project, c.choice) not in current:
            known = choices(contexts[c.project]).get(c.choice) if c.project in contexts else None
            current[(c.project, c.choice)] = _row(c, known)
    return {"current": sorted(current.values(), key=lambda r: (r["project"], r["choice"])),
            "history": [_row(c) for c in rows]}


def _newest_ids(project: str, choice: str) -> Select[Any]:
    """The id of each account's newest Consent row for (project, choice)."""
    return (select(func.max(Consent.id)).where(Consent.project == project, Consent.choice == choice)
            .group_by(Consent.account_id))


def agreed(engine: Engine, project: str, choice: str) -> set[int]:
    """Account ids whose newest answer to ``choice`` in ``project`` is yes."""
    with engine.readers() as session:
        rows = session.scalars(select(Consent.account_id).where(
            Consent.id.in_(_newest_ids(project, choice)), Consent.agreed.is_(True)))
        return set(rows)


def accounts_agreed(engine: Engine, project: ProjectContext, choice: str, actor: str) -> list[dict[str, Any]]:
    """Those whose newest answer to ``choice`` is yes: account id, display name, e-mail, when they
    agreed and to which version, by account id; nothing else about anyone. The export is audited
    (who, which choice, how many), without the people it lists."""
    choice_of(project, choice)
    query = (select(Account.id, Account.display_name, Account.email, Consent.at, Consent.version)
             .join(Account, Account.id == Consent.account_id)
             .where(Consent.id.in_(_newest_ids(project.slug, choice)), Consent.agreed.is_(True))
             .order_by(Account.id))
    with transaction(engine.sessions) as session:
        rows = [{"account_id": r.id, "display_name": r.display_name, "email": r.email,
                 "agreed_at": r.at.isoformat(), "version": r.version} for r in session.execute(query)]
        audit(session, project.slug, None, actor, "export_consents", None, {"choice": choice, "accounts": len(rows)})
    return rows


def as_csv(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in EXPORT_FIELDS})
    return buffer.getvalue()


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=1)
