"""Feedback from the people who use the services (issue 17): verdicts on results, and ratings,
comments and feature requests sent to a service's maintainers.

**On results.** Where a service shows a result (its enrichment of an observation: a species
suggestion, an odour report's analysis; or an observation the service made itself, of a kind it
registers: a video event), a signed-in person who may read the observation says
``agree`` or ``disagree``, with an optional correction (a taxon of ``core.taxonomy`` or a free
label) and a reason. One current verdict per person and result: a later one replaces it. The
model that gave the result (``result["model"]``) is kept with it, so acceptance is counted per
service and per model version (``acceptance_by_month``, ``acceptance_by_model``).

**On services.** A signed-in person sends a rating (1-5), a comment or a feature request, tagged
with their role as their memberships say (operator, moderator for a project's admins and
moderators, contributor for everyone else). Maintainers list, filter and export it, and mark it
planned, done or declined (audited); the sender reads its state (``mine``).

Who sees the author: operators only. Project admins see the items of their projects for the
services those projects enable, with the role and never the account; nobody else sees any.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Select, and_, case, extract, func, or_, select
from sqlalchemy.orm import Session

from core.api.access import can_read
from core.audit import audit
from core.db.models import Account, Enrichment, Observation, Taxon, utcnow
from core.db.models_codesign import ResultFeedback, ServiceFeedback
from core.db.session import transaction
from core.engine import Engine
from core.errors import Forbidden, NotFound, ValidationFailed
from core.export import _excel_cell
from core.tokens import Principal
from core.types import Problem
from core.views import observation_not_found

VERDICTS = ("agree", "disagree")
KINDS = ("rating", "comment", "feature_request")
STATES = ("new", "planned", "done", "declined")
MARKS = ("planned", "done", "declined")
SENDER_ROLES = ("contributor", "moderator", "operator")
MAX_TEXT = 4000
MAX_LABEL = 300
NO_PROJECT = "*"
"""The audit log's project for an item sent without one (no slug holds ``*``)."""


def _invalid(path: str, message: str, code: str) -> ValidationFailed:
    """A 422 whose message is the problem's own (not a draft's "the observation was refused")."""
    error = ValidationFailed([Problem((path,), message, code)])
    error.message, error.args = message, (message,)
    return error


def known_services(engine: Engine) -> list[str]:
    """Services this engine knows: declared in registry.yaml or installed as plugins (not the
    engine's own built-in plugins)."""
    return sorted(set(engine.registry.services) | {name for name in engine.host.info if not engine.host.is_default(name)})


def check_service(engine: Engine, service: str, *, in_path: bool = False) -> str:
    """``service`` if the engine knows it; if not, ValidationFailed (422, ``unknown_service``), or
    NotFound (404) where a URL's path names it."""
    known = known_services(engine)
    if service not in known:
        message = f"unknown service {service!r}; one of {', '.join(known)}"
        if in_path:
            raise NotFound(message, code="unknown_service")
        raise _invalid("service", message, "unknown_service")
    return service


def _text(value: str | None, path: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    text = value.replace("\r\n", "\n").strip()
    if len(text) > limit:
        raise _invalid(path, f"{path} has at most {limit} characters, this one {len(text)}", f"{path}_too_long")
    return text or None


def model_of(result: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The model name and version a service's result names (``{"model": {"name", "version"}}``,
    or a plain ``model`` and ``version``); None where it names none."""
    if not isinstance(result, dict):
        return None, None
    model = result.get("model")
    if isinstance(model, dict):
        name, version = model.get("name"), model.get("version")
    else:
        name, version = model, result.get("version")
    return (str(name)[:200] if name is not None else None, str(version)[:100] if version is not None else None)


# -- feedback on results ------------------------------------------------------------------------


def _check_correction(session: Session, verdict: str, taxon_id: int | None, label: str | None) -> str | None:
    if verdict not in VERDICTS:
        raise _invalid("verdict", f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}", "unknown_verdict")
    label = _text(label, "correction_label", MAX_LABEL)
    if verdict == "agree" and (taxon_id is not None or label):
        raise _invalid("correction", "a correction goes with verdict disagree", "correction_with_agree")
    if taxon_id is not None:
        taxon = session.get(Taxon, taxon_id)
        if taxon is None or not taxon.is_active:
            raise _invalid("correction_taxon_id", f"there is no taxon {taxon_id} in the engine's taxonomy",
                           "unknown_taxon")
    return label


def _result_item(row: ResultFeedback, *, author: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "observation_id": row.observation_id, "project": row.project, "service": row.service,
        "model": {"name": row.model_name, "version": row.model_version}, "verdict": row.verdict,
        "correction_taxon_id": row.correction_taxon_id, "correction_label": row.correction_label,
        "reason": row.reason, "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
    }
    if author:
        out["account_id"] = row.account_id
    return out


def _result(engine: Engine, session: Session, obs: Observation, service: str) -> dict[str, Any] | None:
    """What ``service`` showed for the observation: the observation itself where the service made
    it (its kind is the service's: a video event), else the service's finished enrichment of it;
    NotFound (``no_result``) where there is neither."""
    kind = engine.host.observation_types.get(obs.kind or "")
    if kind is not None and kind.plugin == service:
        return obs.fields
    enrichment = session.scalar(select(Enrichment).where(Enrichment.observation_id == obs.id,
                                                         Enrichment.plugin == service))
    if enrichment is None or enrichment.status != "done":
        raise NotFound(f"observation {obs.id} has no result of {service} to give feedback on", code="no_result")
    return enrichment.result


def give_result_feedback(engine: Engine, principal: Principal, observation_id: int, service: str, verdict: str, *,
                         correction_taxon_id: int | None = None, correction_label: str | None = None,
                         reason: str | None = None) -> dict[str, Any]:
    """Store ``principal``'s verdict on ``service``'s result for the observation (replacing their
    earlier one). 401-style Forbidden for an anonymous caller, 404 for an observation they may
    not read or a result the service has not given, 422 for bad input."""
    if principal.account_id is None:
        raise Forbidden("sign in to give feedback on a result", code="sign_in_required")
    check_service(engine, service)
    reason = _text(reason, "reason")
    with transaction(engine.sessions) as session:
        obs = session.get(Observation, observation_id)
        if obs is None or not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(observation_id)
        label = _check_correction(session, verdict, correction_taxon_id, correction_label)
        name, version = model_of(_result(engine, session, obs, service))
        row = session.scalar(select(ResultFeedback).where(
            ResultFeedback.observation_id == obs.id, ResultFeedback.service == service,
            ResultFeedback.account_id == principal.account_id))
        if row is None:
            row = ResultFeedback(observation_id=obs.id, project=obs.project, service=service,
                                 account_id=principal.account_id)
            session.add(row)
        row.model_name, row.model_version = name, version
        row.verdict, row.correction_taxon_id, row.correction_label, row.reason = (
            verdict, correction_taxon_id, label, reason)
        row.updated_at = utcnow()
        session.flush()
        return _result_item(row, author=False)


def result_feedback_of(engine: Engine, principal: Principal, observation_id: int) -> dict[str, Any]:
    """What a reader of the observation sees of its result feedback: their own verdicts, and the
    agree/disagree counts per service (never who)."""
    with transaction(engine.readers) as session:
        obs = session.get(Observation, observation_id)
        if obs is None or not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(observation_id)
        counts: dict[str, dict[str, int]] = {}
        for service, verdict, n in session.execute(
                select(ResultFeedback.service, ResultFeedback.verdict, func.count())
                .where(ResultFeedback.observation_id == observation_id)
                .group_by(ResultFeedback.service, ResultFeedback.verdict)):
            counts.setdefault(service, {"agree": 0, "disagree": 0})[verdict] = n
        mine = [] if principal.account_id is None else [
            _result_item(r, author=False) for r in session.scalars(select(ResultFeedback).where(
                ResultFeedback.observation_id == observation_id, ResultFeedback.account_id == principal.account_id)
                .order_by(ResultFeedback.service))]
    return {"observation_id": observation_id, "counts": counts, "mine": mine}


def list_result_feedback(engine: Engine, principal: Principal, project: str, *, service: str | None = None,
                         verdict: str | None = None, model_version: str | None = None, cursor: int | None = None,
                         limit: int = 100) -> dict[str, Any]:
    """A project's result feedback, newest first, for its staff (the account only for operators)."""
    if project not in engine.registry.contexts():
        raise NotFound(f"unknown project {project!r}", code="unknown_project")
    if not principal.is_staff_of(project):
        raise Forbidden("only the project's staff list the feedback on results", code="forbidden")
    if service is not None:
        check_service(engine, service)
    if verdict is not None and verdict not in VERDICTS:
        raise _invalid("verdict", f"verdict must be one of {', '.join(VERDICTS)}", "unknown_verdict")
    query = select(ResultFeedback).where(ResultFeedback.project == project)
    for column, value in ((ResultFeedback.service, service), (ResultFeedback.verdict, verdict),
                          (ResultFeedback.model_version, model_version)):
        if value is not None:
            query = query.where(column == value)
    if cursor is not None:
        query = query.where(ResultFeedback.id < cursor)
    with transaction(engine.readers) as session:
        rows = list(session.scalars(query.order_by(ResultFeedback.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"results": [_result_item(r, author=principal.operator) for r in rows],
            "next_cursor": rows[-1].id if more else None}


def _acceptance(engine: Engine, service: str, project: str | None, keys: list[Any]) -> list[Any]:
    agree = func.sum(case((ResultFeedback.verdict == "agree", 1), else_=0))
    disagree = func.sum(case((ResultFeedback.verdict == "disagree", 1), else_=0))
    query = select(*keys, agree, disagree).where(ResultFeedback.service == service)
    if project is not None:
        query = query.where(ResultFeedback.project == project)
    with transaction(engine.readers) as session:
        return list(session.execute(query.group_by(*keys).order_by(*keys)))


def _rate(agree: int, disagree: int) -> float | None:
    return round(agree / (agree + disagree), 4) if agree + disagree else None


def acceptance_by_month(engine: Engine, service: str, project: str | None = None) -> list[dict[str, Any]]:
    """Current verdicts on ``service``'s results by the (UTC) month they were given, oldest first:
    ``{"month": "2026-11", "agree": 9, "disagree": 3, "rate": 0.75}`` (rate None for no verdict).
    ``project`` narrows to one project's observations."""
    year = extract("year", ResultFeedback.updated_at)
    month = extract("month", ResultFeedback.updated_at)
    return [{"month": f"{int(y):04d}-{int(m):02d}", "agree": int(a), "disagree": int(d), "rate": _rate(int(a), int(d))}
            for y, m, a, d in _acceptance(engine, service, project, [year, month])]


def acceptance_by_model(engine: Engine, service: str, project: str | None = None) -> list[dict[str, Any]]:
    """Current verdicts on ``service``'s results per model that gave them: ``{"model": name,
    "version": version, "agree", "disagree", "rate"}`` (name and version None where the result
    named no model)."""
    return [{"model": n, "version": v, "agree": int(a), "disagree": int(d), "rate": _rate(int(a), int(d))}
            for n, v, a, d in _acceptance(engine, service, project,
                                          [ResultFeedback.model_name, ResultFeedback.model_version])]


# -- feedback on services -----------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceFeedbackFilter:
    """What a maintainer's list or export keeps (None: any)."""

    service: str | None = None
    kind: str | None = None
    state: str | None = None
    role: str | None = None
    project: str | None = None
    since: datetime | None = None


def sender_role(principal: Principal, project: str | None) -> str:
    """The sender's role as their memberships say: operator; moderator for an admin or moderator
    (of ``project``, or of any project when None); contributor otherwise."""
    if principal.operator:
        return "operator"
    held = [principal.role_in(project)] if project is not None else [r for _, r in principal.roles]
    return "moderator" if any(r in ("admin", "moderator") for r in held) else "contributor"


def _enabled(engine: Engine, project: str, service: str) -> bool:
    return engine.registry.project(project).enables(service)


def _service_item(row: ServiceFeedback, *, author: str | None | bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "service": row.service, "project": row.project, "role": row.role, "kind": row.kind,
        "rating": row.rating, "body": row.body, "state": row.state, "state_note": row.state_note,
        "created_at": row.created_at.isoformat(),
        "state_changed_at": row.state_changed_at.isoformat() if row.state_changed_at else None,
    }
    if author is not False:
        out["account_id"] = row.account_id
        out["author"] = author
    return out


def send_service_feedback(engine: Engine, principal: Principal, service: str, kind: str, *,
                          rating: int | None = None, body: str | None = None,
                          project: str | None = None) -> dict[str, Any]:
    """Store a rating (1-5, with an optional comment), a comment or a feature request for
    ``service``'s maintainers, tagged with the sender's role; ``project``: the project it is
    about (one the sender belongs to, enabling the service)."""
    if principal.account_id is None:
        raise Forbidden("sign in to send feedback on a service", code="sign_in_required")
    check_service(engine, service)
    if kind not in KINDS:
        raise _invalid("kind", f"kind must be one of {', '.join(KINDS)}, not {kind!r}", "unknown_kind")
    body = _text(body, "body")
    if kind == "rating":
        if rating is None or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise _invalid("rating", "a rating is a whole number from 1 to 5", "rating_out_of_range")
    elif rating is not None:
        raise _invalid("rating", f"a {kind} has no rating; send kind rating", "rating_not_expected")
    elif not body:
        raise _invalid("body", f"a {kind.replace('_', ' ')} needs some text", "body_empty")
    if project is not None:
        if project not in engine.registry.contexts() or not principal.is_member_of(project):
            raise NotFound(f"unknown project {project!r}", code="unknown_project")
        if not _enabled(engine, project, service):
            raise _invalid("project", f"project {project!r} does not use {service}", "service_not_enabled")
    with transaction(engine.sessions) as session:
        row = ServiceFeedback(service=service, project=project, account_id=principal.account_id,
                              role=sender_role(principal, project), kind=kind, rating=rating, body=body, state="new")
        session.add(row)
        session.flush()
        return _service_item(row)


def _maintained(engine: Engine, principal: Principal) -> Any:
    """The condition on service feedback that ``principal`` maintains: everything for an
    operator; for a project's admin, its items about services it enables; else Forbidden."""
    if principal.operator:
        return None
    pairs = [(p, s) for p, role in principal.roles if role == "admin" and p in engine.registry.contexts()
             for s in known_services(engine) if _enabled(engine, p, s)]
    if not pairs:
        raise Forbidden("only operators and project admins read the feedback on services", code="forbidden")
    return or_(*(and_(ServiceFeedback.project == p, ServiceFeedback.service == s) for p, s in pairs))


def _check_filter(engine: Engine, wanted: ServiceFeedbackFilter) -> None:
    if wanted.service is not None:
        check_service(engine, wanted.service)
    for path, value, allowed in (("kind", wanted.kind, KINDS), ("state", wanted.state, STATES),
                                 ("role", wanted.role, SENDER_ROLES)):
        if value is not None and value not in allowed:
            raise _invalid(path, f"{path} must be one of {', '.join(allowed)}, not {value!r}", f"unknown_{path}")


def _service_query(engine: Engine, principal: Principal, wanted: ServiceFeedbackFilter) -> Select[Any]:
    _check_filter(engine, wanted)
    query = select(ServiceFeedback, Account.display_name).outerjoin(Account, Account.id == ServiceFeedback.account_id)
    scope = _maintained(engine, principal)
    if scope is not None:
        query = query.where(scope)
    for column, value in ((ServiceFeedback.service, wanted.service), (ServiceFeedback.kind, wanted.kind),
                          (ServiceFeedback.state, wanted.state), (ServiceFeedback.role, wanted.role),
                          (ServiceFeedback.project, wanted.project)):
        if value is not None:
            query = query.where(column == value)
    if wanted.since is not None:
        query = query.where(ServiceFeedback.created_at >= wanted.since)
    return query


def list_service_feedback(engine: Engine, principal: Principal, wanted: ServiceFeedbackFilter = ServiceFeedbackFilter(),
                          *, cursor: int | None = None, limit: int = 100) -> dict[str, Any]:
    """The feedback ``principal`` maintains, newest first, filtered; the author (account id and
    name) for operators only."""
    query = _service_query(engine, principal, wanted)
    if cursor is not None:
        query = query.where(ServiceFeedback.id < cursor)
    with transaction(engine.readers) as session:
        rows = list(session.execute(query.order_by(ServiceFeedback.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"results": [_service_item(r, author=name if principal.operator else False) for r, name in rows],
            "next_cursor": rows[-1][0].id if more else None}


EXPORT_COLUMNS = ["id", "service", "project", "kind", "rating", "body", "role", "state", "state_note", "created_at",
                  "state_changed_at"]


def export_service_feedback(engine: Engine, principal: Principal,
                            wanted: ServiceFeedbackFilter = ServiceFeedbackFilter(), *,
                            authors: bool | None = None) -> str:
    """The feedback ``principal`` maintains as CSV for a co-design session, oldest first: roles,
    never names or ids (operators also get ``account_id`` and ``author``, unless ``authors`` is
    False). Cells a spreadsheet would run as formulas are quoted (``core.export``'s rule)."""
    authors = principal.operator if authors is None else authors and principal.operator
    columns = EXPORT_COLUMNS + (["account_id", "author"] if authors else [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    with transaction(engine.readers) as session:
        for row, name in session.execute(_service_query(engine, principal, wanted).order_by(ServiceFeedback.id)):
            item = _service_item(row, author=name if authors else False)
            writer.writerow([_excel_cell(item[c]) for c in columns])
    return out.getvalue()


def mark(engine: Engine, principal: Principal, feedback_id: int, state: str, note: str | None = None,
         *, actor: str | None = None) -> dict[str, Any]:
    """Mark an item planned, done or declined (or back to new), with a note the sender reads;
    audited. Forbidden for anyone who does not maintain it; NotFound for one they cannot see."""
    if state not in STATES:
        raise _invalid("state", f"state must be one of {', '.join(STATES)}, not {state!r}", "unknown_state")
    note = _text(note, "note")
    scope = _maintained(engine, principal)
    with transaction(engine.sessions) as session:
        query = select(ServiceFeedback).where(ServiceFeedback.id == feedback_id)
        row = session.scalar(query if scope is None else query.where(scope))
        if row is None:
            raise NotFound(f"no feedback {feedback_id}", code="feedback_not_found")
        before = {"state": row.state, "state_note": row.state_note}
        row.state, row.state_note, row.state_changed_at = state, note, utcnow()
        audit(session, row.project or NO_PROJECT, None, actor or principal.actor, "feedback_state", before,
              {"feedback_id": row.id, "service": row.service, "state": state, "state_note": note})
        session.flush()
        return _service_item(row)


def mine(engine: Engine, principal: Principal) -> list[dict[str, Any]]:
    """The caller's own feedback on services with its state, newest first."""
    if principal.account_id is None:
        return []
    with transaction(engine.readers) as session:
        rows = session.scalars(select(ServiceFeedback).where(ServiceFeedback.account_id == principal.account_id)
                               .order_by(ServiceFeedback.id.desc()))
        return [_service_item(r) for r in rows]


def state_changes_for(engine: Engine, account_id: int, *, since: datetime | None = None,
                      limit: int = 50) -> list[dict[str, Any]]:
    """A person's feedback whose state maintainers changed (newest change first): what their feed
    tells them ("your feedback is planned")."""
    query = select(ServiceFeedback).where(ServiceFeedback.account_id == account_id,
                                          ServiceFeedback.state_changed_at.is_not(None))
    if since is not None:
        query = query.where(ServiceFeedback.state_changed_at > since)
    with transaction(engine.readers) as session:
        rows = session.scalars(query.order_by(ServiceFeedback.state_changed_at.desc()).limit(limit))
        return [_service_item(r) for r in rows]


def iter_corrections(engine: Engine, service: str, project: str | None = None) -> Iterable[dict[str, Any]]:
    """Disagreements with a correction taxon on ``service``'s results (oldest first): the
    labelled data ``observatory feedback dataset`` writes. Each: observation id, project, taxon
    id, the model that was corrected."""
    query = (select(ResultFeedback).where(ResultFeedback.service == service, ResultFeedback.verdict == "disagree",
                                          ResultFeedback.correction_taxon_id.is_not(None))
             .order_by(ResultFeedback.id))
    if project is not None:
        query = query.where(ResultFeedback.project == project)
    with transaction(engine.readers) as session:
        return [{"observation_id": r.observation_id, "project": r.project, "taxon_id": r.correction_taxon_id,
                 "model": r.model_name, "version": r.model_version} for r in session.scalars(query)]


def my_verdicts(engine: Engine, principal: Principal, limit: int = 200) -> list[dict[str, Any]]:
    """The caller's own verdicts on results, newest first."""
    if principal.account_id is None:
        return []
    with transaction(engine.readers) as session:
        rows = session.scalars(select(ResultFeedback).where(ResultFeedback.account_id == principal.account_id)
                               .order_by(ResultFeedback.updated_at.desc(), ResultFeedback.id.desc()).limit(limit))
        return [_result_item(r, author=False) for r in rows]
