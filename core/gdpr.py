"""A person's data: download everything the engine holds about them, or erase them.

Download (:func:`write_export`): a zip with

- ``account.json``: display name, e-mail, created, last seen, operator flag, memberships, tokens'
  metadata (never their hashes) and recent failed sign-ins;
- ``consents.json``: every answer they gave, newest first;
- ``observations.csv`` and ``observations.json``: their observations with exact places, and their
  media files under ``media/`` (``file`` in the JSON, ``media`` in the CSV, name them);
- ``comments.json``: their comments, hidden ones too;
- ``feedback.json``: their feedback on services (with its state) and their verdicts on results;
- ``audit.json``: entries of their own actions, and entries about their observations (other
  people acting there are named "another account", never by id).

Erasure (:func:`erase`), irreversible, follows each project's ``erasure`` policy for the person's
observations there: ``anonymise`` keeps observations and media with no link to the person
(contributor, client id and source link emptied); ``delete`` removes them with their media links,
and a media file goes once no other observation refers to its bytes. In both: the account, its
e-mail and password hash, tokens, memberships, consents and failed sign-ins are deleted; comments
stay without an author; audit entries are rewritten so that no actor, value or id names the
person; the erasure itself is audited (``erase_account``) without any of it.
"""

from __future__ import annotations

import csv
import io
import json
import mimetypes
import re
import zipfile
from dataclasses import asdict, dataclass
from typing import IO, Any, Iterator

from sqlalchemy import Text, cast, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from core.audit import audit
from core.db.models import (Account, ApiToken, AuditEntry, Comment, Consent, MediaBlob, Membership, Observation,
                            ObservationMedia, SignInFailure)
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, NotFound
from core.tokens import forget_tokens
from core.views import observation_dict

ERASED = "erased account"
"""What audit entries say where they named an erased person."""
OTHER = "another account"
"""How a person's download names other people who acted on their observations."""
PERSON_KEYS = frozenset({"account_id", "contributor_id", "author_id", "actor_id"})
"""Keys of audit values that hold an account id: nulled where they hold the erased person's."""
CSV_COLUMNS = ("id", "project", "kind", "observed_at", "lat", "lon", "accuracy_m", "location_privacy", "licence",
               "status", "grade", "created_at", "updated_at", "fields", "media")
BATCH = 200


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _load_account(session: Session, account_id: int, *, lock: bool = False) -> Account:
    # locked for an erasure: on PostgreSQL a submit naming the account waits, then fails, instead
    # of storing an observation that still points at the person
    account = session.get(Account, account_id, options=[selectinload(Account.memberships)], with_for_update=lock)
    if account is None:
        raise NotFound(f"no account {account_id}", code="account_not_found")
    return account


def _actor_pattern(account_id: int) -> re.Pattern[str]:
    """``account:<id>`` as ``core.tokens.Principal.actor`` writes it, with its ``(role, token:n)``."""
    return re.compile(rf"account:{account_id}(?![0-9])(\s*\([^)]*\))?")


def _is_actor(actor: str, account_id: int) -> bool:
    return _actor_pattern(account_id).match(actor) is not None


# --- download -----------------------------------------------------------------------------------


def _account_json(session: Session, account: Account) -> dict[str, Any]:
    tokens = session.scalars(select(ApiToken).where(ApiToken.account_id == account.id).order_by(ApiToken.id))
    failures = session.scalars(select(SignInFailure).where(SignInFailure.account_id == account.id)
                               .order_by(SignInFailure.id))
    return {
        "id": account.id, "display_name": account.display_name, "email": account.email,
        "is_operator": account.is_operator, "has_password": account.password_hash is not None,
        "created_at": _iso(account.created_at), "last_seen_at": _iso(account.last_seen_at),
        "memberships": [{"project": m.project, "role": m.role, "since": _iso(m.created_at)}
                        for m in account.memberships],
        "tokens": [{"id": t.id, "name": t.name, "kind": t.kind, "project": t.project, "role": t.role,
                    "created_at": _iso(t.created_at), "expires_at": _iso(t.expires_at),
                    "revoked_at": _iso(t.revoked_at)} for t in tokens],
        "failed_sign_ins": [{"at": _iso(f.at), "address": f.address} for f in failures],
    }


def _media_name(sha256: str, content_type: str) -> str:
    ext = mimetypes.guess_extension(content_type) or ""
    return f"media/{sha256}{'.jpg' if ext == '.jpe' else ext}"


def _observations(engine: Engine, account_id: int) -> Iterator[tuple[Observation, dict[str, Any]]]:
    """The person's observations, in id order, a batch at a time, each with its dict."""
    last = 0
    while True:
        with transaction(engine.readers) as session:
            chunk = list(session.scalars(
                select(Observation).where(Observation.contributor_id == account_id, Observation.id > last)
                .order_by(Observation.id).limit(BATCH)
                .options(selectinload(Observation.media), selectinload(Observation.enrichments),
                         selectinload(Observation.flags))))
            for obs in chunk:
                data = observation_dict(obs)
                data["comments_locked"] = obs.comments_locked
                for m in data["media"]:
                    m["file"] = _media_name(m["sha256"], m["content_type"])
                yield obs, data
        if len(chunk) < BATCH:
            return
        last = chunk[-1].id


def _csv_row(data: dict[str, Any]) -> dict[str, Any]:
    location = data["location"]
    row = {k: data.get(k) for k in CSV_COLUMNS}
    row.update(lat=location["lat"], lon=location["lon"], accuracy_m=location["accuracy_m"],
               fields=json.dumps(data["fields"], ensure_ascii=False, sort_keys=True),
               media=" ".join(m["file"] for m in data["media"]))
    return {k: "" if v is None else v for k, v in row.items()}


def _audit_json(session: Session, account_id: int) -> list[dict[str, Any]]:
    own = or_(AuditEntry.actor == f"account:{account_id}", AuditEntry.actor.like(f"account:{account_id} %"))
    theirs = select(Observation.id).where(Observation.contributor_id == account_id)
    rows = session.scalars(select(AuditEntry).where(or_(own, AuditEntry.observation_id.in_(theirs)))
                           .order_by(AuditEntry.id))
    out = []
    for r in rows:
        actor = r.actor
        if _is_actor(actor, account_id):
            actor = "you: " + actor
        elif actor.startswith("account:"):
            actor = OTHER
        out.append({"id": r.id, "project": r.project, "observation_id": r.observation_id, "actor": actor,
                    "action": r.action, "before": r.before, "after": r.after, "at": _iso(r.at)})
    return out


def _feedback_json(engine: Engine, account_id: int) -> dict[str, Any]:
    """The person's feedback: on services (with the state maintainers gave it) and on results."""
    from core import feedback
    from core.tokens import Principal

    person = Principal(account_id=account_id)
    return {"on_services": feedback.mine(engine, person),
            "on_results": feedback.my_verdicts(engine, person, limit=1_000_000)}


def write_export(engine: Engine, account_id: int, out: IO[bytes]) -> None:
    """Write the person's zip (see the module's docstring) to ``out``; NotFound for no such account."""
    with transaction(engine.readers) as session:
        account = _load_account(session, account_id)
        account_json = _account_json(session, account)
        consents = [{"project": c.project, "choice": c.choice, "version": c.version, "agreed": c.agreed,
                     "at": _iso(c.at)}
                    for c in session.scalars(select(Consent).where(Consent.account_id == account_id)
                                             .order_by(Consent.id.desc()))]
        comments = [{"id": c.id, "project": c.project, "observation_id": c.observation_id, "body": c.body,
                     "created_at": _iso(c.created_at), "hidden": c.hidden_at is not None}
                    for c in session.scalars(select(Comment).where(Comment.account_id == account_id)
                                             .order_by(Comment.id))]
        audit_entries = _audit_json(session, account_id)
    dump = lambda value: json.dumps(value, ensure_ascii=False, indent=1, default=str)  # noqa: E731
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("account.json", dump(account_json))
        archive.writestr("consents.json", dump(consents))
        archive.writestr("comments.json", dump(comments))
        archive.writestr("audit.json", dump(audit_entries))
        archive.writestr("feedback.json", dump(_feedback_json(engine, account_id)))
        for plugin, data in _plugins_personal_data(engine, account_id).items():
            archive.writestr(f"plugins/{plugin}.json", dump(data))
        with archive.open("observations.json", "w") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            text.write("[")
            for i, (_, data) in enumerate(_observations(engine, account_id)):
                text.write(("," if i else "") + "\n" + json.dumps(data, ensure_ascii=False, default=str))
            text.write("\n]\n")
            text.flush()
            text.detach()
        media: dict[str, str] = {}
        with archive.open("observations.csv", "w") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for _, data in _observations(engine, account_id):
                writer.writerow(_csv_row(data))
                media.update({m["sha256"]: m["file"] for m in data["media"]})
            text.flush()
            text.detach()
        for sha256, name in media.items():
            path = engine.media.path_for(sha256)
            if path.exists():  # a file lost from the store is listed in the JSON, not fatal here
                archive.write(path, name, zipfile.ZIP_STORED)


# --- erasure ------------------------------------------------------------------------------------


class PluginErasureFailed(EngineError):
    """A plugin could not erase what it keeps of the person: nothing of the engine's was erased."""

    http_status = 503
    code = "plugin_erasure_failed"


def _erase_in_plugins(engine: Engine, account_id: int) -> None:
    """Every installed plugin's ``erase_account``, before the engine's own erasure; the first
    failure stops the erasure (it can be asked again)."""
    for called in engine.host.call_each("erase_account", None, None, account_id=account_id, engine=engine):
        if called.error is not None:
            raise PluginErasureFailed(
                f"plugin {called.plugin!r} could not erase account {account_id}'s data "
                f"({type(called.error).__name__}); nothing was erased; try again or ask the operator") \
                from called.error


def _plugins_personal_data(engine: Engine, account_id: int) -> dict[str, Any]:
    """{plugin: data} of every installed plugin's ``personal_data`` that gave any."""
    found: dict[str, Any] = {}
    for called in engine.host.call_each("personal_data", None, None, account_id=account_id, engine=engine):
        if called.error is not None:
            raise called.error  # an export that silently lacks a plugin's part would mislead the person
        answers = [a for a in called.result if a]
        if answers:
            found[called.plugin] = answers[0] if len(answers) == 1 else answers
    return found


@dataclass(frozen=True)
class Erasure:
    """What an erasure did, in numbers only (it is what the audit entry holds)."""

    observations_anonymised: int
    observations_deleted: int
    media_files_deleted: int
    comments_kept_without_author: int
    audit_entries_rewritten: int
    tokens_deleted: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Person:
    id: int
    name: str
    email: str | None

    def scrub(self, value: Any, key: str | None = None) -> Any:
        """``value`` with every mention of the person replaced (ids nulled, texts replaced)."""
        if isinstance(value, dict):
            return {k: self.scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool):
            return None if key in PERSON_KEYS and value == self.id else value
        if isinstance(value, str):
            return self.scrub_text(value)
        return value

    def scrub_text(self, text: str) -> str:
        if text == self.name or (self.email and text.lower() == self.email.lower()):
            return ERASED
        text = _actor_pattern(self.id).sub(ERASED, text)
        if self.email:
            text = re.sub(re.escape(self.email), ERASED, text, flags=re.IGNORECASE)
        return text


def _rewrite_audit(session: Session, person: _Person, observation_ids: list[int]) -> int:
    """Rewrite every audit entry that may name the person; return how many changed."""
    needles = {str(person.id), person.name, json.dumps(person.name)[1:-1]}
    if person.email:
        needles |= {person.email, json.dumps(person.email)[1:-1]}
    may_name = [AuditEntry.actor.like(f"account:{person.id}%")]
    for column in (AuditEntry.before, AuditEntry.after):
        may_name += [cast(column, Text).contains(n, autoescape=True) for n in needles if n]
    if observation_ids:
        may_name.append(AuditEntry.observation_id.in_(observation_ids))
    changed = 0
    last = 0
    while True:
        chunk = list(session.scalars(select(AuditEntry).where(or_(*may_name), AuditEntry.id > last)
                                     .order_by(AuditEntry.id).limit(1000)))
        for entry in chunk:
            actor = ERASED if _is_actor(entry.actor, person.id) else person.scrub_text(entry.actor)
            before, after = person.scrub(entry.before), person.scrub(entry.after)
            if (actor, before, after) != (entry.actor, entry.before, entry.after):
                entry.actor, entry.before, entry.after = actor[:200], before, after
                changed += 1
        session.flush()
        if len(chunk) < 1000:
            return changed
        last = chunk[-1].id


def erase(engine: Engine, account_id: int, actor: str = ERASED) -> Erasure:
    """Erase the person (see the module's docstring); irreversible. ``actor`` is who asked, as the
    erasure's own audit entries name it (``erased account`` when the person asked themselves).

    One audit entry ``erase_account`` per project the person had a part in, with that project's
    numbers only."""
    if _is_actor(actor, account_id):
        actor = ERASED
    with transaction(engine.readers) as session:
        _load_account(session, account_id)  # NotFound before any plugin is asked
    _erase_in_plugins(engine, account_id)
    with transaction(engine.sessions) as session:
        account = _load_account(session, account_id, lock=True)
        person = _Person(account.id, account.display_name, account.email)
        contexts = engine.registry.contexts()
        owned = session.execute(select(Observation.id, Observation.project)
                                .where(Observation.contributor_id == account_id)).all()
        policy = {p: (contexts[p].erasure if p in contexts else "anonymise") for _, p in owned}
        to_delete = [i for i, p in owned if policy[p] == "delete"]
        to_anonymise = [i for i, p in owned if policy[p] != "delete"]
        commented = session.execute(select(Comment.project, func.count()).where(Comment.account_id == account_id)
                                    .group_by(Comment.project)).all()
        per_project: dict[str, dict[str, int]] = {}
        for project in [p for _, p in owned] + [m.project for m in account.memberships]:
            per_project.setdefault(project, {"observations_anonymised": 0, "observations_deleted": 0,
                                             "comments_kept_without_author": 0})
        for _, project in owned:
            per_project[project]["observations_deleted" if policy[project] == "delete"
                                 else "observations_anonymised"] += 1
        for project, count in commented:
            per_project.setdefault(project, {"observations_anonymised": 0, "observations_deleted": 0,
                                             "comments_kept_without_author": 0})
            per_project[project]["comments_kept_without_author"] = count
        rewritten = _rewrite_audit(session, person, [i for i, _ in owned])

        unused: list[str] = []
        if to_delete:
            shas = set(session.scalars(select(ObservationMedia.sha256)
                                       .where(ObservationMedia.observation_id.in_(to_delete))))
            session.execute(delete(Observation).where(Observation.id.in_(to_delete)))
            if shas:  # bytes no other observation refers to: the row goes here, the file after the commit
                unused = sorted(session.scalars(
                    delete(MediaBlob).where(MediaBlob.sha256.in_(shas),
                                            ~exists().where(ObservationMedia.sha256 == MediaBlob.sha256))
                    .returning(MediaBlob.sha256)))
        if to_anonymise:
            session.execute(update(Observation).where(Observation.id.in_(to_anonymise))
                            .values(contributor_id=None, client_id=None, source_contributor=None))
        session.execute(update(Comment).where(Comment.account_id == account_id).values(account_id=None))
        token_ids = list(session.scalars(select(ApiToken.id).where(ApiToken.account_id == account_id)))
        session.execute(delete(ApiToken).where(ApiToken.account_id == account_id))
        for model in (Membership, Consent, SignInFailure):
            session.execute(delete(model).where(model.account_id == account_id))
        session.expunge(account)
        session.execute(delete(Account).where(Account.id == account_id))
        for project, numbers in sorted(per_project.items()) or [("*", {})]:
            audit(session, project, None, actor, "erase_account", None, numbers)
    forget_tokens(token_ids)
    for sha256 in unused:  # the file, its cleaned public copy, and a kept "cannot be cleaned" decision
        public = engine.media.public_path_for(sha256)
        for path in (engine.media.path_for(sha256), public, public.with_name(sha256 + ".refused")):
            path.unlink(missing_ok=True)
    return Erasure(len(to_anonymise), len(to_delete), len(unused), sum(c for _, c in commented), rewritten,
                   len(token_ids))
