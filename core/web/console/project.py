"""The console's project page: the services registry.yaml enables (read-only, with each one's
summary and version), the contributors with their counts and last activity, and, for the
project's administrators, the consents export and the erasure of a person on request.

Erasure asks for a confirmation page that says what ``core.gdpr.erase`` will do under the
project's ``erasure`` policy. A project administrator may erase only a person whose part in the
engine is in this project alone (no other project's membership, observation or comment, not an
operator, not themselves): an erasure removes the whole account, which other projects are not
this administrator's to decide. Anyone else is for an operator (``observatory gdpr erase``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, literal, select, union_all
from starlette.requests import Request
from starlette.responses import Response

from core import consent, gdpr
from core.db.models import Account, Comment, Membership, Observation, ObservationMedia
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, Forbidden, NotFound
from core.project_switches import comments_on
from core.tokens import Principal
from core.types import ProjectContext
from core.web.console.comments import engine_refusal
from core.web.guards import admin_project, require_csrf, staff_project
from core.web.templating import gettext_of, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@dataclass(frozen=True)
class Service:
    name: str
    summary: str
    version: str
    settings: str
    """The project's settings of the service as JSON text (registry.yaml's, with the defaults)."""


@dataclass(frozen=True)
class Contributor:
    account_id: int
    name: str
    role: str | None
    observations: int
    last_activity: datetime | None


@dataclass(frozen=True)
class ErasurePlan:
    """What erasing an account would do here, and whether this caller may do it."""

    account_id: int
    name: str
    policy: str
    observations: int
    media: int
    comments: int
    elsewhere: bool
    """The person has a part in another project (or is an operator): only an operator may erase them."""
    yourself: bool

    @property
    def allowed(self) -> bool:
        return not self.elsewhere and not self.yourself


def services_of(engine: Engine, project: ProjectContext) -> list[Service]:
    """The services ``project`` enables, as registry.yaml describes them."""
    offered = engine.registry.services
    return [Service(name, offered[name].summary if name in offered else "",
                    offered[name].version if name in offered else "",
                    json.dumps(settings, indent=2, sort_keys=True, ensure_ascii=False, default=str))
            for name, settings in sorted(project.services.items())]


def _activity(slug: str) -> Any:
    """Per account: observations here, the last one stored, the last comment written here."""
    observed = (select(Observation.contributor_id.label("account_id"), func.count().label("n"),
                       func.max(Observation.created_at).label("last"))
                .where(Observation.project == slug, Observation.contributor_id.is_not(None))
                .group_by(Observation.contributor_id))
    commented = (select(Comment.account_id.label("account_id"), literal(0).label("n"),
                        func.max(Comment.created_at).label("last"))
                 .where(Comment.project == slug, Comment.account_id.is_not(None)).group_by(Comment.account_id))
    joined = (select(Membership.account_id.label("account_id"), literal(0).label("n"),
                     func.max(Membership.created_at).label("last"))
              .where(Membership.project == slug).group_by(Membership.account_id))
    rows = union_all(observed, commented, joined).subquery()
    return (select(rows.c.account_id, func.sum(rows.c.n).label("n"), func.max(rows.c.last).label("last"))
            .group_by(rows.c.account_id).subquery())


def contributors(engine: Engine, slug: str, page: int = 1) -> tuple[list[Contributor], int]:
    """The project's people (members, and accounts with observations or comments here), most
    observations first, ``PAGE_SIZE`` a page; and how many there are."""
    activity = _activity(slug)
    role = (select(Membership.role).where(Membership.account_id == Account.id, Membership.project == slug)
            .scalar_subquery())
    query = (select(Account.id, Account.display_name, role, activity.c.n, activity.c.last)
             .join(activity, activity.c.account_id == Account.id)
             .order_by(activity.c.n.desc(), Account.id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    with transaction(engine.readers) as session:
        total = int(session.scalar(select(func.count()).select_from(activity)) or 0)
        rows = session.execute(query).all()
    return [Contributor(r[0], r[1], r[2], int(r[3] or 0), r[4]) for r in rows], total


def erasure_plan(engine: Engine, principal: Principal, project: ProjectContext, account_id: int) -> ErasurePlan:
    """What erasing ``account_id`` does under ``project``'s policy; NotFound when the account has
    no part in the project."""
    slug = project.slug
    with transaction(engine.readers) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account {account_id} in project {slug!r}", code="account_not_found")
        ties = set(session.scalars(select(Membership.project).where(Membership.account_id == account_id)))
        ties |= set(session.scalars(select(Observation.project).where(Observation.contributor_id == account_id)
                                    .distinct()))
        ties |= set(session.scalars(select(Comment.project).where(Comment.account_id == account_id).distinct()))
        if slug not in ties:
            raise NotFound(f"no account {account_id} in project {slug!r}", code="account_not_found")
        observations = session.scalar(select(func.count()).where(Observation.contributor_id == account_id,
                                                                 Observation.project == slug)) or 0
        media = session.scalar(select(func.count()).select_from(ObservationMedia).join(
            Observation, Observation.id == ObservationMedia.observation_id).where(
            Observation.contributor_id == account_id, Observation.project == slug)) or 0
        comments = session.scalar(select(func.count()).where(Comment.account_id == account_id,
                                                             Comment.project == slug)) or 0
        elsewhere = bool(ties - {slug}) or account.is_operator
        name = account.display_name
    if principal.operator:
        elsewhere = False
    return ErasurePlan(account_id, name, project.erasure, int(observations), int(media), int(comments), elsewhere,
                       principal.account_id == account_id)


def erase(engine: Engine, principal: Principal, project: ProjectContext, account_id: int) -> gdpr.Erasure:
    """Erase the account after checking again that this caller may (see the module's docstring)."""
    plan = erasure_plan(engine, principal, project, account_id)
    if not plan.allowed:
        raise Forbidden(f"account {account_id} cannot be erased from this page: "
                          + ("that is your own account; erase it from your account's page" if plan.yourself else
                             "it has a part in other projects or runs the engine; ask an operator "
                             f"(observatory gdpr erase {account_id})"), code="erasure_not_allowed")
    return gdpr.erase(engine, account_id, actor=principal.actor)


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and 0 < int(text) < 1_000_000 else 1


@router.get("/console/projects/{slug}/project")
async def project_page(request: Request, slug: str) -> Response:
    principal, project = await staff_project(request, slug)
    engine = request.app.state.engine
    page = _page_number(request.query_params.get("page"))
    people, total = await run_in_threadpool(contributors, engine, slug, page)
    context = {
        "project": project, "section": "project", "services": services_of(engine, project),
        "people": people, "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
        "is_admin": principal.is_admin_of(slug), "choices": list(consent.choices(project).values()),
        "comments_on": await run_in_threadpool(comments_on, engine, project),
    }
    return await render(request, "console/project.html", context)


@router.post("/console/projects/{slug}/project/consents")
async def consents_export(request: Request, slug: str) -> Response:
    await require_csrf(request)
    principal, project = await admin_project(request, slug)
    choice = str((await request.form()).get("choice") or "")
    try:
        rows = await run_in_threadpool(consent.accounts_agreed, request.app.state.engine, project, choice,
                                       principal.actor)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return Response(consent.as_csv(rows), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{slug}-{choice}-agreed.csv"', "Cache-Control": "no-store"})


async def _erasure_page(request: Request, slug: str, account_id: int, *, status_code: int = 200,
                        problem: str | None = None) -> Response:
    principal, project = await admin_project(request, slug)
    try:
        plan = await run_in_threadpool(erasure_plan, request.app.state.engine, principal, project, account_id)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return await render(request, "console/project.html", {
        "project": project, "section": "project", "erasure": plan, "problem": problem}, status_code=status_code)


@router.get("/console/projects/{slug}/project/erase/{account_id}")
async def erasure_confirmation(request: Request, slug: str, account_id: int) -> Response:
    return await _erasure_page(request, slug, account_id)


@router.post("/console/projects/{slug}/project/erase/{account_id}")
async def erasure(request: Request, slug: str, account_id: int) -> Response:
    await require_csrf(request)
    principal, project = await admin_project(request, slug)
    if (await request.form()).get("confirm") != "yes":
        _ = gettext_of(request)
        return await _erasure_page(request, slug, account_id, status_code=422,
                                   problem=_("Tick the box to confirm that the erasure cannot be undone."))
    engine = request.app.state.engine
    try:
        plan = await run_in_threadpool(erasure_plan, engine, principal, project, account_id)
        result = await run_in_threadpool(erase, engine, principal, project, account_id)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return await render(request, "console/project.html", {
        "project": project, "section": "project", "erased": plan, "result": result.as_dict()})
