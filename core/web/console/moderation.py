"""The moderation queue: ``/console/projects/{slug}/observations``, and moderating from it.

The queue lists a project's observations (any status) with a thumbnail, kind, times in the
project's zone, status, grade, quality flags, the contributor's display name (staff may see it)
and a short summary of each service's result. It sorts by any of its plain columns, and filters
with the API's own filters (``core.filters``: the same names, values and 422 messages), so a
link to a filtered queue reads like the API's query. Pages are ``limit``/``offset`` on an indexed
order; the count stops at :data:`COUNT_CAP` so that a large project costs no full count.

Moderating: ``POST /console/observations/{id}/moderate`` (one observation: from the queue's
keyboard shortcuts through ``fetch``, answered in JSON, or from a plain form, answered with a
redirect) and ``POST /console/projects/{slug}/observations/bulk`` (the checked rows). Both call
``core.moderation.moderate``, which audits each change with the signed-in account as actor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.api.access import can_read
from core.db.models import Account, Observation
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, InvalidTransition, NotFound
from core.filters import FilterError, filter_conditions, filter_params, parse_filters, query_filters
from core.moderation import moderate
from core.projects import project_kinds
from core.read_model import StoredObservation, observation_rows, read_observations
from core.tokens import Principal
from core.types import GRADES, MODERATION_STATUSES, ProjectContext
from core.web.guards import PageRefused, require_csrf, signed_in, staff_project
from core.web.site import local_path
from core.web.templating import error_page, gettext_of, render

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
COUNT_CAP = 1000
MAX_PAGE = 10_000
MAX_BULK = 200
QUEUE_ACTIONS = ("publish", "unpublish", "trash", "restore")
SORTS: dict[str, Any] = {
    "id": Observation.id, "kind": Observation.kind, "observed_at": Observation.observed_at,
    "created_at": Observation.created_at, "status": Observation.status, "grade": Observation.grade,
    "contributor": Account.display_name,
}
"""The columns the queue sorts by (``?sort=observed_at&order=desc``); ties go by id."""
INDEXED_SORTS = ("id", "observed_at", "status")
"""Sorts an index of the project's observations gives in order (migration 0005)."""
PAGE_PARAMS = ("sort", "order", "page", "per_page", "field", "done", "n", "failed")
"""Query parameters of the page itself; every other one is a filter, as the API reads it."""
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- reading the queue -----------------------------------------------------------------------


@dataclass
class Queue:
    """One page of the queue, as the template shows it."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    capped: bool = False
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE
    has_next: bool = False


def _int_param(value: str | None, default: int, low: int, high: int) -> int:
    if value is None or not value.isascii() or not value.isdigit():
        return default
    return min(max(int(value), low), high)


def _day_to_time(value: str, zone: ZoneInfo, next_day: bool) -> str:
    """A date input's day (the project's zone) as the ISO time the filters take."""
    day = date.fromisoformat(value) + (timedelta(days=1) if next_day else timedelta())
    return datetime.combine(day, time(0), zone).isoformat()


def page_filters(project: ProjectContext, items: list[tuple[str, str]]) -> dict[str, str]:
    """The API filters of a queue URL: empty form fields left out, a day from a date field made
    a time in the project's zone (``until`` a day: up to the end of that day), and the free
    ``field`` box (``species=Vulpes vulpes``, ``count>=3``) read as ``field.NAME``.
    A filter the API would refuse raises its FilterError."""
    zone = ZoneInfo(project.timezone)
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        value = value.strip()
        if not value or name in PAGE_PARAMS:
            continue
        if name in ("since", "until", "created_since", "created_until", "updated_since") and _DAY.match(value):
            try:
                value = _day_to_time(value, zone, next_day=name in ("until", "created_until"))
            except ValueError:
                pass  # not a real day: the filter's own check names it
        pairs.append((name, value))
    fields = [value.strip() for name, value in items if name == "field" and value.strip()]
    extra = filter_params([f"field.{text}" for text in fields]) if fields else {}
    return query_filters([*pairs, *extra.items()])  # a filter given twice is the API's 422


def _local(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def enrichment_summary(name: str, enrichment: dict[str, Any]) -> dict[str, Any]:
    """A service's result in a few words: its state; species suggestions' best name and score;
    a ``summary`` text; lists (events, keyframes...) as counts; else a few plain values."""
    out: dict[str, Any] = {"service": name, "status": enrichment.get("status")}
    result = enrichment.get("result")
    if enrichment.get("status") != "done" or not isinstance(result, dict):
        return out
    best = result.get("best")
    if not isinstance(best, dict):
        ranked = result.get("results") or result.get("suggestions")
        best = ranked[0] if isinstance(ranked, list) and ranked and isinstance(ranked[0], dict) else None
    if isinstance(best, dict) and isinstance(best.get("score"), (int, float)):
        label = best.get("scientific_name") or best.get("name") or best.get("label")
        if label:
            out["species"] = {"name": str(label)[:80], "percent": round(float(best["score"]) * 100)}
            return out
    if isinstance(result.get("summary"), (str, int, float)):
        out["text"] = str(result["summary"])[:120]
        return out
    lists = [(key, len(value)) for key, value in result.items() if isinstance(value, list)]
    plain = [(key, value) for key, value in result.items() if isinstance(value, (str, int, float, bool))]
    out["counts"] = lists[:3]
    out["values"] = [(key, str(value)[:40]) for key, value in plain[:3]]
    return out


def display_names(engine: Engine, ids: set[int]) -> dict[int, str]:
    """The display names of accounts ``ids`` (staff pages only: a name is personal data)."""
    if not ids:
        return {}
    with transaction(engine.readers) as session:
        return dict(session.execute(select(Account.id, Account.display_name).where(Account.id.in_(ids))).all())


def queue_row(obs: StoredObservation, names: dict[int, str], zone: ZoneInfo) -> dict[str, Any]:
    """What the queue shows of one observation."""
    data = obs.data
    photo = next((m for m in data["media"] if str(m["content_type"]).startswith("image/")), None)
    return {
        "id": data["id"], "kind": data["kind"] or "generic", "status": data["status"], "grade": data["grade"],
        "observed": _local(data["observed_at"], zone), "created": _local(data["created_at"], zone),
        "photo": photo, "media_count": len(data["media"]), "flags": data["flags"],
        "contributor_id": data["contributor_id"], "contributor": names.get(data["contributor_id"] or 0),
        "enrichments": [enrichment_summary(n, e) for n, e in data["enrichments"].items()],
    }


def _page_ids(session: Any, slug: str, where: list[Any], sort: str, descending: bool, offset: int, limit: int) -> list[int]:
    """The ids of one page of the queue, in order: a narrow select (sort key and id), so that the
    database sorts no more than it must. ``where[0]`` is the project's condition. Newest first (the default) is read per status through
    the (project, status, id) index (migration 0005) and merged: a few index range reads, not a
    sort of the whole project."""
    if sort == "id":
        order = Observation.id.desc() if descending else Observation.id.asc()
        found: list[int] = []
        for status in MODERATION_STATUSES:
            found += session.scalars(select(Observation.id).where(*where, Observation.status == status)
                                     .order_by(order).limit(offset + limit)).all()
        return sorted(found, reverse=descending)[offset:offset + limit]
    column = SORTS[sort]
    if sort not in INDEXED_SORTS and session.get_bind().dialect.name == "sqlite":
        # SQLite would walk the project's index and fetch each row out of order (a random read per
        # row) to sort them all; matching ``project || ''`` (no index) reads the table in order
        where = [Observation.project.concat("") == slug, *where[1:]]
    query = select(Observation.id, column).where(*where)
    if sort == "contributor":
        query = query.outerjoin(Account, Account.id == Observation.contributor_id)
    order = [column.desc(), Observation.id.desc()] if descending else [column.asc(), Observation.id.asc()]
    return [row[0] for row in session.execute(query.order_by(*order).offset(offset).limit(limit))]


def read_queue(engine: Engine, principal: Principal, project: ProjectContext, filters: dict[str, str],
               sort: str, descending: bool, page: int, per_page: int) -> Queue:
    """One page of the queue; FilterError for a filter the API would refuse."""
    chosen = parse_filters(engine, project, filters)
    where = [Observation.project == project.slug,
             *filter_conditions(chosen, project, staff=True, contributor_id=principal.contributor_id)]
    counted = select(Observation.id).where(*where).limit(COUNT_CAP + 1).subquery()
    with transaction(engine.readers) as session:
        ids = _page_ids(session, project.slug, where, sort, descending, (page - 1) * per_page, per_page + 1)
        found = {o.data["id"]: o for o in read_observations(session, observation_rows().where(Observation.id.in_(ids)))}
        count = int(session.scalar(select(func.count()).select_from(counted)) or 0)
    rows = [found[i] for i in ids[:per_page] if i in found]
    zone = ZoneInfo(project.timezone)
    names = display_names(engine, {o.contributor_id for o in rows if o.contributor_id is not None})
    return Queue(rows=[queue_row(o, names, zone) for o in rows], count=min(count, COUNT_CAP),
                 capped=count > COUNT_CAP, page=page, per_page=per_page, has_next=len(ids) > per_page)


def _link(params: dict[str, str], **changes: Any) -> str:
    merged = {**params, **{k: str(v) for k, v in changes.items() if v is not None}}
    return "?" + urlencode({k: v for k, v in merged.items() if v != ""})


@router.get("/console/projects/{slug}/observations")
async def queue_page(request: Request, slug: str) -> Response:
    """The moderation queue of project ``slug`` (its moderators and administrators)."""
    principal, project = await staff_project(request, slug)
    engine: Engine = request.app.state.engine
    _ = gettext_of(request)
    query = request.query_params
    sort = query.get("sort") if query.get("sort") in SORTS else "id"
    descending = query.get("order", "desc") != "asc"
    page = _int_param(query.get("page"), 1, 1, MAX_PAGE)
    per_page = _int_param(query.get("per_page"), DEFAULT_PAGE_SIZE, PAGE_SIZES[0], PAGE_SIZES[-1])
    items = query.multi_items()
    kept = {k: v for k, v in items if k not in ("page", "done", "n", "failed") and v.strip()}
    context: dict[str, Any] = {
        "project": project, "section": "observations", "sort": sort, "descending": descending,
        "params": kept, "link": lambda **c: _link(kept, **c), "statuses": MODERATION_STATUSES, "grades": GRADES,
        "kinds": sorted(t.name for t in project_kinds(engine, project)), "sorts": list(SORTS),
        "page_sizes": PAGE_SIZES, "notice": _notice(request), "error": None, "queue": None,
        "self_url": request.url.path + ("?" + request.url.query if request.url.query else ""),
    }
    try:
        filters = page_filters(project, items)
        context["queue"] = await run_in_threadpool(read_queue, engine, principal, project, filters, sort,
                                                   descending, page, per_page)
    except FilterError as exc:
        context["error"] = exc.message
        return await render(request, "console/queue.html", context, status_code=422)
    return await render(request, "console/queue.html", context)


def _notice(request: Request) -> dict[str, Any] | None:
    """What the last plain-form moderation did (``?done=publish&n=2&failed=1``)."""
    done = request.query_params.get("done")
    if done not in QUEUE_ACTIONS:
        return None
    return {"action": done, "n": _int_param(request.query_params.get("n"), 0, 0, MAX_BULK),
            "failed": _int_param(request.query_params.get("failed"), 0, 0, MAX_BULK)}


# -- moderating ------------------------------------------------------------------------------


def owner_of(engine: Engine, obs_id: int) -> Any:
    """The project, contributor and status of observation ``obs_id`` (for access checks); None if none."""
    if not 1 <= obs_id <= 2_147_483_647:
        return None
    with transaction(engine.readers) as session:
        return session.execute(select(Observation.project, Observation.contributor_id, Observation.status)
                               .where(Observation.id == obs_id)).first()


async def staff_observation(request: Request, obs_id: int) -> tuple[Principal, ProjectContext]:
    """The signed-in account and the project of observation ``obs_id``, when the account is staff
    there. An observation the account may not read gets the page of one that does not exist."""
    principal = await signed_in(request)
    engine: Engine = request.app.state.engine
    _ = gettext_of(request)
    owner = await run_in_threadpool(owner_of, engine, obs_id)
    project = engine.registry.contexts().get(owner.project) if owner is not None else None
    if owner is None or project is None or not can_read(principal, owner, project):
        raise PageRefused(await error_page(request, 404, _("Not found"), _("There is no such observation.")))
    if not principal.is_staff_of(project.slug):
        raise PageRefused(await error_page(request, 403, _("Not allowed"),
                                           _("Only the project's moderators and administrators may open this page.")))
    return principal, project


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _done_message(request: Request, obs_id: int, status: str) -> str:
    _ = gettext_of(request)
    words = {"pending": _("Pending"), "published": _("Published"), "unpublished": _("Unpublished"),
             "trashed": _("Trashed")}
    return _("Observation %(id)s is now: %(status)s.") % {"id": obs_id, "status": words.get(status, status)}


@router.post("/console/observations/{obs_id}/moderate")
async def moderate_one(request: Request, obs_id: int) -> Response:
    """Publish, unpublish, trash or restore one observation (form field ``action``)."""
    await require_csrf(request)
    principal, project = await staff_observation(request, obs_id)
    form = await request.form()
    action = str(form.get("action") or "")
    next_path = local_path(str(form.get("next") or ""), f"/console/observations/{obs_id}")
    _ = gettext_of(request)
    if action not in QUEUE_ACTIONS:
        message = _("Choose publish, unpublish, trash or restore.")
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=422)
        return await error_page(request, 422, _("The action was not done"), message)
    engine: Engine = request.app.state.engine
    try:
        _old, new = await run_in_threadpool(moderate, engine, obs_id, action, principal.actor)
    except (InvalidTransition, NotFound) as exc:
        message = _transition_refused(request, exc)
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=exc.http_status)
        return await error_page(request, exc.http_status, _("The action was not done"), message)
    if _wants_json(request):
        return JSONResponse({"id": obs_id, "status": new, "message": _done_message(request, obs_id, new)})
    return RedirectResponse(_with_done(next_path, action, 1, 0), status_code=303)


def _transition_refused(request: Request, exc: EngineError) -> str:
    _ = gettext_of(request)
    if isinstance(exc, NotFound):
        return _("There is no such observation.")
    return _("This observation cannot take that action in its present status.")


def _with_done(path: str, action: str, n: int, failed: int) -> str:
    base, _sep, query = path.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(("done=", "n=", "failed="))]
    kept.append(urlencode({"done": action, "n": n, "failed": failed}))
    return base + "?" + "&".join(kept)


def _bulk(engine: Engine, slug: str, ids: list[int], action: str, actor: str) -> tuple[int, int]:
    """Apply ``action`` to each of ``ids`` that is in project ``slug``; (done, not done)."""
    with transaction(engine.readers) as session:
        ours = set(session.scalars(select(Observation.id).where(Observation.id.in_(ids), Observation.project == slug)))
    done = 0
    for obs_id in ids:
        if obs_id not in ours:
            continue
        try:
            moderate(engine, obs_id, action, actor)
            done += 1
        except (InvalidTransition, NotFound):
            pass
    return done, len(ids) - done


@router.post("/console/projects/{slug}/observations/bulk")
async def moderate_many(request: Request, slug: str) -> Response:
    """Apply one action to the checked observations of the queue (form fields ``ids``, ``action``)."""
    await require_csrf(request)
    principal, project = await staff_project(request, slug)
    form = await request.form()
    _ = gettext_of(request)
    action = str(form.get("action") or "")
    raw = [str(v) for v in form.getlist("ids")]
    ids = list(dict.fromkeys(int(v) for v in raw if v.isascii() and v.isdigit() and 0 < int(v) <= 2_147_483_647))
    next_path = local_path(str(form.get("next") or ""), f"/console/projects/{slug}/observations")
    if action not in QUEUE_ACTIONS:
        return await error_page(request, 422, _("The action was not done"),
                                _("Choose publish, unpublish, trash or restore."))
    if not ids or len(ids) != len(raw) or len(ids) > MAX_BULK:
        return await error_page(request, 422, _("The action was not done"),
                                _("Select between 1 and %(max)s observations first.") % {"max": MAX_BULK})
    done, failed = await run_in_threadpool(_bulk, request.app.state.engine, project.slug, ids, action,
                                           principal.actor)
    return RedirectResponse(_with_done(next_path, action, done, failed), status_code=303)

