"""The console's comments page: a project's comment feed for its staff, hide and unhide a comment,
lock an observation's comments, and (administrators) switch comments off for the whole project.

Every change goes through ``core.comments`` or ``core.project_switches`` (checked and audited
there, with the signed-in person as the actor) and comes back to the feed with a notice.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import comments as core_comments
from core.db.models import Comment, Observation
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, NotFound
from core.project_switches import COMMENTS, comments_on, registry_allows, set_switch
from core.tokens import Principal
from core.web.guards import admin_project, require_csrf, staff_project
from core.web.templating import error_page, gettext_of, render

router = APIRouter(include_in_schema=False)
STATES = core_comments.STATES
NOTICES = ("hidden", "shown", "locked", "unlocked", "switched_on", "switched_off")


async def engine_refusal(request: Request, exc: EngineError) -> Response:
    """An engine's refusal (bad input, a conflict, a missing thing) as a page with its status and
    message: never a 500 for a request the engine refused."""
    _ = gettext_of(request)
    return await error_page(request, exc.http_status, _("This could not be done"), exc.message)


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _cursor(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 12 else None


def locked_of(engine: Engine, observation_ids: set[int]) -> dict[int, bool]:
    """Whether each observation's comments are locked."""
    if not observation_ids:
        return {}
    with transaction(engine.readers) as session:
        rows = session.execute(select(Observation.id, Observation.comments_locked)
                               .where(Observation.id.in_(sorted(observation_ids)))).all()
    return {obs_id: bool(locked) for obs_id, locked in rows}


def feed_url(slug: str, state: str = "all", cursor: str | None = None, **more: str) -> str:
    query = {"state": state, **({"cursor": cursor} if cursor else {}), **more}
    return f"/console/projects/{slug}/comments?{urlencode(query)}"


@router.get("/console/projects/{slug}/comments")
async def comments_page(request: Request, slug: str) -> Response:
    principal, project = await staff_project(request, slug)
    engine = _engine(request)
    state = request.query_params.get("state", "all")
    if state not in STATES:
        state = "all"
    cursor = request.query_params.get("cursor")
    feed = await run_in_threadpool(core_comments.feed, engine, principal, slug, state=state, cursor=_cursor(cursor))
    locked = await run_in_threadpool(locked_of, engine, {item["observation_id"] for item in feed["items"]})
    on = await run_in_threadpool(comments_on, engine, project)
    notice = request.query_params.get("done")
    context: dict[str, Any] = {
        "project": project, "section": "comments", "items": feed["items"], "locked": locked, "state": state,
        "states": STATES, "cursor": cursor or "", "next_url": feed_url(slug, state, feed["next_cursor"])
        if feed["next_cursor"] else None, "first_url": feed_url(slug, state) if cursor else None,
        "comments_on": on, "registry_allows": registry_allows(project, COMMENTS),
        "is_admin": principal.is_admin_of(slug), "notice": notice if notice in NOTICES else None,
        "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    return await render(request, "console/comments.html", context)


def _back(request: Request, slug: str, form: Any, done: str) -> RedirectResponse:
    """Back to the feed page the form came from, with a notice of what was done."""
    state = str(form.get("state") or "all")
    cursor = str(form.get("cursor") or "")
    return RedirectResponse(feed_url(slug, state if state in STATES else "all", cursor or None, done=done),
                            status_code=303)


@router.post("/console/projects/{slug}/comments/{comment_id}/visibility")
async def change_visibility(request: Request, slug: str, comment_id: int) -> Response:
    await require_csrf(request)
    principal, _project = await staff_project(request, slug)
    form = await request.form()
    hidden = form.get("hidden") == "1"
    try:
        await run_in_threadpool(_hide_in_project, _engine(request), principal, slug, comment_id, hidden)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return _back(request, slug, form, "hidden" if hidden else "shown")


def _hide_in_project(engine: Engine, principal: Principal, slug: str, comment_id: int, hidden: bool) -> None:
    """Hide or unhide a comment of project ``slug`` (a comment of another project is not found here)."""
    with transaction(engine.readers) as session:
        project = session.scalar(select(Comment.project).where(Comment.id == comment_id))
    if project != slug:
        raise NotFound(f"no comment {comment_id} in project {slug!r}", code="comment_not_found")
    core_comments.set_hidden(engine, principal, comment_id, hidden)


@router.post("/console/projects/{slug}/comments/lock/{obs_id}")
async def change_lock(request: Request, slug: str, obs_id: int) -> Response:
    await require_csrf(request)
    principal, _project = await staff_project(request, slug)
    form = await request.form()
    locked = form.get("locked") == "1"
    try:
        await run_in_threadpool(_lock_in_project, _engine(request), principal, slug, obs_id, locked)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return _back(request, slug, form, "locked" if locked else "unlocked")


def _lock_in_project(engine: Engine, principal: Principal, slug: str, obs_id: int, locked: bool) -> None:
    """Lock or unlock the comments of an observation of project ``slug``."""
    with transaction(engine.readers) as session:
        project = session.scalar(select(Observation.project).where(Observation.id == obs_id))
    if project != slug:
        raise NotFound(f"no observation {obs_id} in project {slug!r}", code="observation_not_found")
    core_comments.set_locked(engine, principal, obs_id, locked)


@router.post("/console/projects/{slug}/comments/switch")
async def change_switch(request: Request, slug: str) -> Response:
    await require_csrf(request)
    principal, project = await admin_project(request, slug)
    form = await request.form()
    on = form.get("on") == "1"
    try:
        await run_in_threadpool(set_switch, _engine(request), project, COMMENTS, on, principal.actor)
    except EngineError as exc:
        return await engine_refusal(request, exc)
    return _back(request, slug, form, "switched_on" if on else "switched_off")
