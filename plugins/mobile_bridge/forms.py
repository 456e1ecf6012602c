"""Form discovery: everything an app needs to build a project's screens, with a version.

``GET /api/v1/mobile/projects/{slug}/form``: the kinds the project accepts (their fields' JSON
Schema and UI hints: label, option labels, translations, widget, order, required, help), the
enabled services, licence and consent choices, the map area, whether comments are on, and the
sign-up rules. ``version`` is a short hash of all of it, also sent as the ``ETag``:
``If-None-Match`` with it answers 304 and no body.

UI hints come from the schema: a property's ``title`` (label), ``description`` (help),
``x-labels`` (value -> label), ``x-widget`` (else one is chosen from the type), the kind's
``x-order`` (else the properties' order) and ``required``; translations from ``x-translations``
(``{language: {"title", "description", "x-labels"}}`` on a property, ``{language: {"title",
"description"}}`` on the schema).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.schemas import ConsentChoiceOut, LicenceOut, error_responses
from core.consent import choices
from core.engine import Engine
from core.licences import gbif_eligible, licence_uri
from core.projects import project_kinds
from core.types import ObservationType, ProjectContext
from plugins.mobile_bridge.projects import bridge_project, bridge_settings

router = APIRouter(prefix="/api/v1/mobile", tags=["mobile"])

VERSION_LENGTH = 12


class OptionOut(BaseModel):
    value: Any
    label: str


class FieldTranslation(BaseModel):
    label: str | None = None
    help: str | None = None
    options: dict[str, str] | None = Field(None, description="value (as text) -> label")


class FieldOut(BaseModel):
    name: str
    label: str
    widget: str = Field(description="text, textarea, number, integer, select, multiselect, toggle, date, "
                        "datetime, or the schema's own x-widget")
    order: int
    required: bool
    help: str | None = None
    options: list[OptionOut] | None = None
    translations: dict[str, FieldTranslation] | None = None


class KindFormOut(BaseModel):
    name: str
    title: str
    description: str
    plugin: str | None
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    fields: list[FieldOut]
    open: bool = Field(description="fields the form does not list are accepted too (additionalProperties)")
    translations: dict[str, dict[str, str]] | None = None


class SignupRulesOut(BaseModel):
    require_email: bool
    allow_pseudonymous: bool


class FormOut(BaseModel):
    project: str
    name: str
    description: str
    version: str = Field(description="a short hash of this form: send it as an item's form_version")
    kinds: list[KindFormOut]
    services: list[str]
    licences: list[LicenceOut]
    default_licence: str
    consent_choices: list[ConsentChoiceOut]
    location_privacy: list[str]
    default_location_privacy: str
    map_area: list[float] | None = Field(description="[west, south, east, north] in degrees")
    comments: bool
    signup: SignupRulesOut


def _widget(prop: dict[str, Any]) -> str:
    if isinstance(prop.get("x-widget"), str):
        return prop["x-widget"]
    kind = prop.get("type")
    if "enum" in prop or "oneOf" in prop:
        return "select"
    if kind == "array" and isinstance(prop.get("items"), dict) and "enum" in prop["items"]:
        return "multiselect"
    if kind == "boolean":
        return "toggle"
    if kind in ("integer", "number"):
        return kind
    if prop.get("format") in ("date", "date-time"):
        return "datetime" if prop["format"] == "date-time" else "date"
    if kind == "string" and prop.get("maxLength", 0) > 200:
        return "textarea"
    return "text"


def _options(prop: dict[str, Any]) -> list[dict[str, Any]] | None:
    values = prop.get("enum")
    if values is None and isinstance(prop.get("items"), dict):
        values = prop["items"].get("enum")
    if values is None:
        return None
    labels = prop.get("x-labels") or {}
    return [{"value": v, "label": str(labels.get(str(v), v))} for v in values]


def _field_translations(prop: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    found = prop.get("x-translations")
    if not isinstance(found, dict):
        return None
    out = {}
    for language, text in found.items():
        if isinstance(text, dict):
            out[str(language)] = {"label": text.get("title"), "help": text.get("description"),
                                  "options": text.get("x-labels")}
    return out or None


def kind_form(otype: ObservationType) -> dict[str, Any]:
    schema = otype.schema
    properties = schema.get("properties") or {}
    order = [n for n in schema.get("x-order") or [] if n in properties]
    order += [n for n in properties if n not in order]
    required = set(schema.get("required") or [])
    fields = []
    for position, name in enumerate(order):
        prop = properties[name] if isinstance(properties[name], dict) else {}
        fields.append({"name": name, "label": str(prop.get("title") or name), "widget": _widget(prop),
                       "order": position, "required": name in required, "help": prop.get("description"),
                       "options": _options(prop), "translations": _field_translations(prop)})
    translations = schema.get("x-translations")
    return {"name": otype.name, "title": otype.title, "description": otype.description, "plugin": otype.plugin,
            "schema": schema, "fields": fields, "open": schema.get("additionalProperties", True) is not False,
            "translations": translations if isinstance(translations, dict) else None}


def build_form(engine: Engine, project: ProjectContext) -> dict[str, Any]:
    """The form of ``project`` with its version."""
    settings = bridge_settings(project)
    body = {
        "project": project.slug, "name": project.name, "description": project.description,
        "kinds": [kind_form(t) for t in sorted(project_kinds(engine, project), key=lambda t: t.name)],
        "services": sorted(project.services),
        "licences": [{"id": name, "uri": licence_uri(name) or None, "gbif_eligible": gbif_eligible(name)}
                     for name in project.licences or (project.licence,)],
        "default_licence": project.licence,
        "consent_choices": [{"name": c.name, "text": c.text, "version": c.version} for c in choices(project).values()],
        "location_privacy": ["open", "obscured", "private"],
        "default_location_privacy": project.default_location_privacy,
        "map_area": settings.get("map_area"),
        "comments": project.comments,
        "signup": {"require_email": bool(settings.get("require_email", False)),
                   "allow_pseudonymous": bool(settings.get("allow_pseudonymous", True))},
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return {**body, "version": hashlib.sha256(text.encode()).hexdigest()[:VERSION_LENGTH]}


def project_form(engine: Engine, project: ProjectContext) -> dict[str, Any]:
    """``build_form``, made once per project for this engine (the registry does not change while it runs)."""
    cache: dict[str, dict[str, Any]] = engine.state("mobile_bridge.forms", dict)
    form = cache.get(project.slug)
    if form is None:
        form = cache[project.slug] = build_form(engine, project)
    return form


def form_version(engine: Engine, project: ProjectContext) -> str:
    return str(project_form(engine, project)["version"])


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get("/projects/{slug}/form", response_model=FormOut, summary="The project's form, for an app",
            description="Kinds with their fields' JSON Schema and UI hints, services, licences, consent choices, map "
            "area, comments, sign-up rules, and a version. The `ETag` is the version: send it as `If-None-Match` to "
            "get 304 when nothing changed.",
            responses={**error_responses(401, 403, 404, 429), 304: {"description": "the form is the one you have"}})
def get_form(slug: str, response: Response, engine: EngineDep, principal: PrincipalDep,
             if_none_match: str | None = Header(None, max_length=1000)) -> Any:
    project = bridge_project(engine, slug)
    if not project.public and not principal.is_member_of(slug):
        raise deny(principal, f"project {slug!r} is not public")
    form = project_form(engine, project)
    etag = f'"{form["version"]}"'
    if if_none_match and _matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return form
