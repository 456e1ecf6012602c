"""One observation in the console: ``/console/observations/{id}``, its edit form, its media.

The page shows every stored part of the observation (fields, place, photos, services' results,
quality flags, grade, status, the contributor's display name), buttons to moderate it, a form
to change its fields, and its history from the audit log. The form is checked exactly as the
API's ``PATCH /api/v1/observations/{id}`` checks an edit (``core.lifecycle.update_fields``: the
kind's JSON Schema, the engine's field limits, the plugins' checks), its errors shown beside the
field they are about, and the change audited with the signed-in account as actor.

Media: ``/console/observations/{id}/media/{media_id}`` is the file as the API's media route
serves it to this account, and ``.../thumb`` its thumbnail (``core.web.thumbnails``), to whoever
may read the observation.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import lifecycle
from core.api.access import can_edit, can_read, sees_everything
from core.api.errors import ApiError
from core.api.routes.media import get_media
from core.db.models import AuditEntry, MediaBlob, Observation, ObservationMedia
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError, ValidationFailed
from core.moderation import TRANSITIONS
from core.projects import project_kinds
from core.read_model import read_observation
from core.readable import readable
from core.tokens import Principal
from core.types import ProjectContext
from core.views import observation_not_found
from core.web.console.moderation import display_names, enrichment_summary, staff_observation
from core.web.guards import require_csrf
from core.web.session import web_principal
from core.web.templating import error_page, gettext_of, render
from core.web.thumbnails import thumbnail

router = APIRouter(include_in_schema=False)
MAX_ID = 2_147_483_647
HISTORY_LIMIT = 200
_ACTOR = re.compile(r"^account:(\d+)\b")
INPUT_TYPES = ("integer", "number", "boolean", "string", "json")


# -- the edit form's fields --------------------------------------------------------------------


def _schema_type(schema: Any) -> str:
    """How the form shows a field of this JSON Schema: integer, number, boolean, string or json."""
    if not isinstance(schema, dict):
        return "json"
    declared = schema.get("type")
    types = [t for t in ([declared] if isinstance(declared, str) else list(declared or [])) if t != "null"]
    if len(types) == 1 and types[0] in ("integer", "number", "boolean", "string"):
        return types[0]
    if not types and isinstance(schema.get("enum"), list):
        return "string" if all(isinstance(v, str) for v in schema["enum"] if v is not None) else "json"
    return "json"


def form_fields(engine: Engine, project: ProjectContext, kind: str | None, stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The edit form's inputs: each field of the kind's schema, then each stored field it lacks
    (shown as text, or as JSON when its value is not text)."""
    otype = next((t for t in project_kinds(engine, project) if t.name == (kind or lifecycle.GENERIC_KIND)), None)
    properties = otype.schema.get("properties", {}) if otype is not None and isinstance(otype.schema, dict) else {}
    required = set(otype.schema.get("required", [])) if otype is not None and isinstance(otype.schema, dict) else set()
    out = []
    for name, schema in (properties if isinstance(properties, dict) else {}).items():
        schema = schema if isinstance(schema, dict) else {}
        out.append({"name": name, "type": _schema_type(schema), "title": schema.get("title") or name,
                    "description": schema.get("description"), "enum": schema.get("enum"),
                    "minimum": schema.get("minimum"), "maximum": schema.get("maximum"),
                    "required": name in required, "value": _shown(stored.get(name))})
    for name, value in stored.items():
        if name not in properties:
            out.append({"name": name, "type": "string" if isinstance(value, str) else "json", "title": name,
                        "description": None, "enum": None, "minimum": None, "maximum": None, "required": False,
                        "value": _shown(value)})
    return out


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, indent=1)


def read_form_fields(request: Request, inputs: list[dict[str, Any]], form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(changed fields to send to ``update_fields``, errors by field name) from the edit form.
    An emptied input removes the field (null, as in the API); an unchanged one is not sent."""
    _ = gettext_of(request)
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in inputs:
        name = spec["name"]
        raw = form.get(f"field.{name}")
        if not isinstance(raw, str):
            continue
        text = raw.strip() if spec["type"] != "string" else raw
        if text == spec["value"]:
            continue
        if text.strip() == "":
            if spec["value"] != "":
                changes[name] = None
            continue
        try:
            changes[name] = _typed(text, spec["type"])
        except ValueError:
            errors[name] = {"integer": _("Enter a whole number."), "number": _("Enter a number."),
                            "boolean": _("Choose yes or no."), "json": _("Enter valid JSON.")}[spec["type"]]
    return changes, errors


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _typed(text: str, kind: str) -> Any:
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,16}", text):
            raise ValueError(text)
        return int(text)
    if kind == "number":
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    if kind == "json":
        return json.loads(text, parse_constant=_no_constant)
    return text


# -- reading the entry -------------------------------------------------------------------------


def _local(value: Any, zone: ZoneInfo) -> str:
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def changes_of(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """What an audit entry changed: (what, before, after), fields one by one."""
    before, after = before or {}, after or {}
    out = []
    for key in sorted(set(before) | set(after)):
        if key == "fields":
            old, new = before.get("fields") or {}, after.get("fields") or {}
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    out.append((f"fields.{name}", _short(old.get(name, "")), _short(new.get(name, ""))))
        elif before.get(key) != after.get(key):
            out.append((key, _short(before.get(key, "")), _short(after.get(key, ""))))
    return out


def history(engine: Engine, project: str, obs_id: int, zone: ZoneInfo) -> list[dict[str, Any]]:
    """The observation's audit entries, newest first, with each actor's display name."""
    query = (select(AuditEntry).where(AuditEntry.project == project, AuditEntry.observation_id == obs_id)
             .order_by(AuditEntry.id.desc()).limit(HISTORY_LIMIT))
    with transaction(engine.readers) as session:
        entries = [(e.actor, e.action, e.at, readable(e.before), readable(e.after)) for e in session.scalars(query)]
    ids = {int(m.group(1)) for actor, *_ in entries if (m := _ACTOR.match(actor or ""))}
    names = display_names(engine, ids)
    out = []
    for actor, action, at, before, after in entries:
        found = _ACTOR.match(actor or "")
        out.append({"actor": actor, "who": names.get(int(found.group(1))) if found else None, "action": action,
                    "at": _local(at, zone), "changes": changes_of(before, after),
                    "reason": (after or {}).get("reason")})
    return out


def read_entry(engine: Engine, project: ProjectContext, obs_id: int) -> dict[str, Any]:
    """Everything the entry page shows of observation ``obs_id``."""
    with transaction(engine.readers) as session:
        data = read_observation(session, obs_id).data
    zone = ZoneInfo(project.timezone)
    names = display_names(engine, {data["contributor_id"]} if data["contributor_id"] else set())
    return {
        "obs": data, "zone": project.timezone,
        "observed": _local(data["observed_at"], zone), "created": _local(data["created_at"], zone),
        "updated": _local(data["updated_at"], zone),
        "contributor": names.get(data["contributor_id"] or 0),
        "licence": data["licence"] or project.licence,
        "enrichments": [(enrichment_summary(n, e), e) for n, e in data["enrichments"].items()],
        "actions": [a for a, (sources, _new) in TRANSITIONS.items() if data["status"] in sources],
        "inputs": form_fields(engine, project, data["kind"], data["fields"]),
        "history": history(engine, project.slug, obs_id, zone),
    }


async def _entry_page(request: Request, project: ProjectContext, obs_id: int, *, errors: dict[str, str] | None = None,
                      general: list[str] | None = None, typed: dict[str, str] | None = None,
                      status_code: int = 200) -> Response:
    engine: Engine = request.app.state.engine
    context = await run_in_threadpool(read_entry, engine, project, obs_id)
    for spec in context["inputs"]:
        if typed is not None and spec["name"] in typed:
            spec["value"] = typed[spec["name"]]
    saved = request.query_params.get("saved")
    return await render(request, "console/entry.html", {
        **context, "project": project, "section": "observations", "errors": errors or {}, "general": general or [],
        "saved": saved if saved in ("1", "0") else None, "done": request.query_params.get("done"),
        "json": lambda value: json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True),
    }, status_code=status_code)


@router.get("/console/observations/{obs_id}")
async def entry_page(request: Request, obs_id: int) -> Response:
    """The entry page of one observation (the project's moderators and administrators)."""
    _principal, project = await staff_observation(request, obs_id)
    return await _entry_page(request, project, obs_id)


@router.post("/console/observations/{obs_id}/fields")
async def edit_fields(request: Request, obs_id: int) -> Response:
    """Save the edit form: checked and audited as the API's PATCH, errors shown per field."""
    await require_csrf(request)
    principal, project = await staff_observation(request, obs_id)
    engine: Engine = request.app.state.engine
    form = await request.form()
    with transaction(engine.readers) as session:
        stored = read_observation(session, obs_id).data
    inputs = form_fields(engine, project, stored["kind"], stored["fields"])
    typed = {spec["name"]: str(form.get(f"field.{spec['name']}") or "") for spec in inputs}
    changes, errors = read_form_fields(request, inputs, form)
    if errors:
        return await _entry_page(request, project, obs_id, errors=errors, typed=typed, status_code=422)
    if not changes:
        return RedirectResponse(f"/console/observations/{obs_id}?saved=0", status_code=303)

    def authorize(obs: Observation) -> None:  # the API's checks, on the row the edit changes
        if not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(obs_id)
        if not can_edit(principal, obs):
            raise observation_not_found(obs_id)

    try:
        await run_in_threadpool(lifecycle.update_fields, engine, obs_id, changes, principal.actor, authorize)
    except ValidationFailed as exc:
        per_field: dict[str, str] = {}
        general = []
        for problem in exc.problems:
            path = list(problem.path)
            if len(path) >= 2 and path[0] == "fields" and str(path[1]) in typed:
                per_field.setdefault(str(path[1]), problem.message)
            else:
                general.append(problem.message)
        return await _entry_page(request, project, obs_id, errors=per_field, general=general, typed=typed,
                                 status_code=422)
    return RedirectResponse(f"/console/observations/{obs_id}?saved=1", status_code=303)


# -- media -------------------------------------------------------------------------------------


def _media_of(engine: Engine, obs_id: int, media_id: int) -> Any:
    query = (select(Observation.project, Observation.contributor_id, Observation.status, ObservationMedia.sha256,
                    MediaBlob.content_type, MediaBlob.width, MediaBlob.height)
             .join(ObservationMedia, ObservationMedia.observation_id == Observation.id)
             .join(MediaBlob, MediaBlob.sha256 == ObservationMedia.sha256)
             .where(Observation.id == obs_id, ObservationMedia.id == media_id))
    with transaction(engine.readers) as session:
        return session.execute(query).first()


async def _not_found(request: Request) -> Response:
    _ = gettext_of(request)
    return await error_page(request, 404, _("Not found"), _("There is no such photo."))


@router.get("/console/observations/{obs_id}/media/{media_id}/thumb")
async def media_thumbnail(request: Request, obs_id: int, media_id: int) -> Response:
    """A photo's thumbnail, to whoever may read the observation (the same rule as the API's
    media route); a placeholder picture for a file that is not a decodable image."""
    if not (1 <= obs_id <= MAX_ID and 1 <= media_id <= MAX_ID):
        return await _not_found(request)
    engine: Engine = request.app.state.engine
    principal = await web_principal(request)
    row = await run_in_threadpool(_media_of, engine, obs_id, media_id)
    project = engine.registry.contexts().get(row.project) if row is not None else None
    if row is None or project is None or not can_read(principal, row, project):
        return await _not_found(request)
    data, media_type = await run_in_threadpool(thumbnail, engine, row.sha256, row.content_type, row.width, row.height)
    cache = "private, max-age=86400" if sees_everything(principal, row) else "public, max-age=300"
    return Response(data, media_type=media_type, headers={
        "Cache-Control": cache, "ETag": f'"{row.sha256}-thumb"', "Vary": "Cookie", "X-Content-Type-Options": "nosniff"})


@router.get("/console/observations/{obs_id}/media/{media_id}")
async def media_file(request: Request, obs_id: int, media_id: int) -> Response:
    """The file, as the API's media route serves it to the signed-in account."""
    if not (1 <= obs_id <= MAX_ID and 1 <= media_id <= MAX_ID):
        return await _not_found(request)
    principal: Principal = await web_principal(request)
    try:
        answer = await run_in_threadpool(get_media, obs_id, media_id, request.app.state.engine, principal)
    except ApiError as exc:
        _ = gettext_of(request)
        return await error_page(request, exc.status, _("Not allowed"), exc.message)
    except EngineError:
        return await _not_found(request)
    answer.headers["Vary"] = "Cookie"
    return answer
