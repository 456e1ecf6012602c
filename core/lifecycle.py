"""The life of an observation: submit -> validate -> store -> enrich -> quality -> grade.

Moderation lives in ``core.moderation``; the worker side of enrichment in ``core.enrichment``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Callable, Literal
from zoneinfo import ZoneInfo

import jsonschema
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from core.config import Settings, get_settings
from core.db.models import Enrichment, MediaBlob, Observation, ObservationMedia, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.errors import Conflict, NotFound, ValidationFailed
from core.media import MediaError, check_media, safe_filename
from core.projects import project_kinds
from core.types import Draft, Location, MediaFile, ObservationType, Problem, ProjectContext
from core.views import load_observation, observation_view

GENERIC_KIND = "generic"

# built once: a statement built per call costs its cache-key walk on every submit
_INSERT_OBSERVATION = insert(Observation.__table__)
_INSERT_ENRICHMENT = insert(Enrichment.__table__)
_INSERT_ENRICHMENTS = _INSERT_ENRICHMENT.returning(Enrichment.__table__.c.id, Enrichment.__table__.c.plugin)


class LocationIn(BaseModel):
    # strict: a number, as the schema says; not "41" nor true (lax pydantic reads both as 41.0 and 1.0)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    lat: float = Field(ge=-90, le=90, description="latitude, WGS 84 degrees", examples=[41.39])
    lon: float = Field(ge=-180, le=180, description="longitude, WGS 84 degrees", examples=[2.17])
    accuracy_m: float | None = Field(None, ge=0, le=1_000_000, description="horizontal accuracy in metres")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]|\Z)")


def _iso_8601_text(value: Any) -> Any:
    """observed_at is ISO 8601 text (a datetime from Python callers); not a number of seconds, as a
    number or as digits, which lax pydantic reads as Unix time."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise PydanticCustomError("datetime_iso8601",
                              "Input should be a valid datetime as ISO 8601 text, e.g. 2026-05-01T09:30:00+02:00")


FIELDS_DESCRIPTION = (
    "the observation's own fields, checked against its kind's JSON Schema (GET /api/v1/projects/{slug} lists "
    "each kind's) and, at every depth, against the engine's limits (settings, defaults in brackets): nesting "
    "OBSERVATORY_MAX_FIELD_DEPTH (32), keys OBSERVATORY_MAX_FIELD_KEYS (1000), one string "
    "OBSERVATORY_MAX_FIELD_VALUE_BYTES (64 KiB), all fields as JSON OBSERVATORY_MAX_FIELDS_BYTES (256 KiB), "
    "integers within ±OBSERVATORY_MAX_FIELD_INTEGER (2^53-1); no NUL, lone surrogates, NaN or infinities")

# What the schema can say of the time checks (core.builtin.checks): the year 1800 or later.
OBSERVED_AT_PATTERN = r"^(1[89][0-9]{2}|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?$"


class DraftIn(BaseModel):
    """An observation as a client sends it (JSON)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "client_id": "app-7f3a-0001",
                    "observed_at": "2026-05-01T09:30:00+02:00",
                    "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 8},
                    "kind": "generic",
                    "fields": {"note": "a fox crossing the path"},
                }
            ]
        },
    )

    client_id: str | None = Field(
        None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="the client's own id (no control characters); a retry with it returns the first result",
    )
    observed_at: Annotated[datetime, BeforeValidator(_iso_8601_text)] = Field(
        description="ISO 8601, from the year 1800 to now + the engine's allowed clock skew (24 h by default); "
        "without an offset it is read in the project's time zone",
        json_schema_extra={"pattern": OBSERVED_AT_PATTERN},
    )
    location: LocationIn
    kind: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                             description="an observation type; 'generic' when left out")
    fields: dict[str, Any] = Field(default_factory=dict, description=FIELDS_DESCRIPTION)
    licence: str | None = Field(None, max_length=32, description="one of the project's licences "
                                "(GET /api/v1/projects/{slug}); the project's default when left out")
    location_privacy: Literal["open", "obscured", "private"] | None = Field(
        None, description="open: the public sees the place (on the project's grid); obscured: the public sees "
        "only the project's obscured cell; private: only staff and you see it. The project's default when left out")


@dataclass(frozen=True)
class Upload:
    """A media file as received, before it is checked."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    observation_id: int
    created: bool


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        path = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        problems.append(Problem(path=path, message=err["msg"], code=err["type"]))
    return problems


_MAX_PROBLEMS = 20
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]").search
_SHOWN_KEY_CHARS = 100
_Path = tuple[str | int, ...]


def _shown(path: _Path) -> _Path:
    """A path as an error may quote it: keys escaped where they cannot be sent, shortened where long."""
    out: list[str | int] = []
    for part in path:
        if isinstance(part, str):
            part = part.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
            part = part if len(part) <= _SHOWN_KEY_CHARS else part[:_SHOWN_KEY_CHARS] + "\u2026"
        out.append(part)
    return tuple(out)


def _string_problem(text: str, path: _Path, what: str, max_bytes: int) -> Problem | None:
    bad = _UNSTORABLE(text)
    if bad is not None:
        if bad.group() == "\x00":
            return Problem(path, f"{what} holds a NUL character (\\u0000), which no database here stores", "nul_character")
        return Problem(path, f"{what} holds a lone surrogate (\\u{ord(bad.group()):04x}), which is not text", "lone_surrogate")
    if len(text) > max_bytes // 4 and len(text.encode("utf-8")) > max_bytes:
        return Problem(path, f"{what} is longer than {max_bytes} bytes (UTF-8)", "field_too_long")
    return None


def field_problems(fields: Any, settings: Settings) -> list[Problem]:
    """What in ``fields`` could not be stored and read back identically by every reader, within the
    limits of ``settings``: the one check of field values, for create, edit, PATCH, import and sync.

    Refused: keys that are not strings; strings (keys and values) with NUL characters or lone
    surrogates, or longer than ``max_field_value_bytes``; NaN and infinities; integers past
    ``max_field_integer``; values that are not JSON (tuples, sets, objects); nesting deeper than
    ``max_field_depth``; more than ``max_field_keys`` keys; more than ``max_fields_bytes`` as JSON.
    At most 20 problems are reported; the walk is iterative, so no depth breaks it.
    """
    if not isinstance(fields, dict):
        return [Problem(("fields",), "fields must be a JSON object", "not_an_object")]
    max_bytes, max_int, max_depth = settings.max_field_value_bytes, settings.max_field_integer, settings.max_field_depth
    quick = max_bytes // 4  # a string no longer than this is within the limit whatever its characters
    problems: list[Problem] = []
    keys = nodes = 0  # object keys; members of objects and arrays
    text_chars = 0  # of the strings met so far; with 2 bytes a member, a lower bound of the JSON size
    stack: list[tuple[_Path, Any, int]] = [(("fields",), fields, 0)]
    limit = settings.max_fields_bytes
    while stack and len(problems) < _MAX_PROBLEMS and text_chars + 2 * nodes <= limit:
        path, container, level = stack.pop()
        if level > max_depth:
            problems.append(Problem(_shown(path), f"nested more than {max_depth} levels deep (objects and "
                                    "arrays inside fields)", "too_deep"))
            continue
        if isinstance(container, dict):
            keys += len(container)
            if keys > settings.max_field_keys:
                problems.append(Problem(("fields",), f"more than {settings.max_field_keys} keys", "too_many_keys"))
                break
            items: Any = container.items()
        else:
            items = enumerate(container)
        nodes += len(container)
        if 2 * nodes > limit:  # too large whatever the members are: no need to look at them
            break
        for key, value in items:
            if type(key) is str:  # noqa: E721  (exactly str: the fast path of nearly every key)
                text_chars += len(key)
                if (len(key) > quick or _UNSTORABLE(key)) and (
                        problem := _string_problem(key, _shown((*path, key)), "the key", max_bytes)):
                    problems.append(problem)
                    continue
            elif not isinstance(key, int) or isinstance(container, dict):
                problems.append(Problem(_shown(path), f"the key {key!r} is not a string", "key_not_a_string"))
                continue
            kind = type(value)
            if kind is str:
                text_chars += len(value)
                if (len(value) > quick or _UNSTORABLE(value)) and (
                        problem := _string_problem(value, _shown((*path, key)), "the value", max_bytes)):
                    problems.append(problem)
            elif kind is bool or value is None:
                continue
            elif kind is int:
                if not -max_int <= value <= max_int:
                    problems.append(Problem(_shown((*path, key)), f"the integer is beyond \u00b1{max_int}, which JSON "
                                            "readers that use doubles read as another number; send it as a string",
                                            "integer_out_of_range"))
            elif kind is float:
                if not math.isfinite(value):
                    problems.append(Problem(_shown((*path, key)), f"{value} is not a finite number (NaN, Infinity "
                                            "or beyond \u00b11.8e308 are not JSON numbers)", "not_finite"))
            elif kind is dict or kind is list:
                stack.append(((*path, key), value, level + 1))
            else:
                problems.append(Problem(_shown((*path, key)), f"a {kind.__name__} is not a JSON value", "not_json"))
    # at most 6 bytes a character (an escape) and 30 for the rest of a member (number, quotes, separators):
    # below that bound, fields need not be written out to be measured
    if not problems and (text_chars + 2 * nodes > limit or (6 * text_chars + 30 * nodes > limit
                                                            and _json_size(fields) > limit)):
        problems.append(Problem(("fields",), f"the fields are larger than {settings.max_fields_bytes} bytes as JSON "
                                "(UTF-8, compact)", "fields_too_large"))
    return problems[:_MAX_PROBLEMS]


def _json_size(fields: dict[str, Any]) -> int:
    return len(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def parse_draft(data: Any, project: ProjectContext, settings: Settings | None = None) -> DraftIn:
    """Check the shape of a draft and its field values (``field_problems``); raise ValidationFailed
    with field paths. ``settings``: the limits (the process's settings when left out)."""
    return _parse(data, project, settings or get_settings())[0]


def _parse(data: Any, project: ProjectContext, settings: Settings) -> tuple[DraftIn, datetime]:
    """``parse_draft``, and the draft's time in UTC."""
    parsed, refused = _parse_batch([data], project, settings)
    if refused:
        raise ValidationFailed(refused[0])
    return parsed[0][1:]


def _parse_batch(items: list[Any], project: ProjectContext,
                 settings: Settings) -> tuple[list[tuple[int, DraftIn, datetime]], dict[int, list[Problem]]]:
    """``parse_draft`` over many drafts, one step at a time (see ``_validate_batch``): the parsed
    ones as (position, draft, time in UTC), the problems of the others by position."""
    refused: dict[int, list[Problem]] = {}
    shaped = []
    for position, data in enumerate(items):
        if not isinstance(data, dict):
            refused[position] = [Problem((), "the draft must be a JSON object", "not_an_object")]
            continue
        try:
            shaped.append((position, DraftIn.model_validate(data)))
        except ValidationError as exc:
            refused[position] = _pydantic_problems(exc)
    parsed = []
    for position, draft in shaped:
        problems = field_problems(draft.fields, settings)
        if problems:
            refused[position] = problems
            continue
        if draft.observed_at.tzinfo is None:
            draft.observed_at = draft.observed_at.replace(tzinfo=ZoneInfo(project.timezone))
        try:
            parsed.append((position, draft, draft.observed_at.astimezone(timezone.utc)))
        except OverflowError:
            refused[position] = [Problem(("observed_at",), "the time is outside the years 1 to 9999 in UTC",
                                         "time_out_of_range")]
    return parsed, refused


_validators: dict[int, tuple[ObservationType, jsonschema.Draft202012Validator | None]] = {}
# keywords that say nothing of an object's content: a schema of only these accepts any fields
_NO_CONSTRAINT = {"type", "additionalProperties", "title", "description", "$schema", "$id", "$comment"}


def _validator_for(otype: ObservationType) -> jsonschema.Draft202012Validator | None:
    """One compiled validator per observation type (building one costs more than validating);
    None for a schema that any object passes (``fields`` is always an object by then)."""
    cached = _validators.get(id(otype))
    if cached is None:  # the type is kept with its validator, so its id cannot be reused meanwhile
        if len(_validators) >= 256:  # engines started again and again (tests) leave old types behind
            _validators.clear()
        schema = otype.schema
        open_object = (set(schema) <= _NO_CONSTRAINT and schema.get("type") == "object"
                       and schema.get("additionalProperties", True) is True)
        cached = _validators[id(otype)] = (otype, None if open_object else jsonschema.Draft202012Validator(schema))
    return cached[1]


def _check_kind(engine: Engine, draft: DraftIn, project: ProjectContext,
                kinds: dict[str, ObservationType] | None = None) -> list[Problem]:
    kind = draft.kind or GENERIC_KIND
    if kinds is None:
        kinds = {t.name: t for t in project_kinds(engine, project)}
    otype = kinds.get(kind)
    if otype is None:
        known = ", ".join(sorted(kinds))
        message = f"unknown observation kind {kind!r} in project {project.slug!r} (known: {known})"
        other = engine.host.observation_types.get(kind)
        if other is not None and other.plugin:
            message += f"; the service {other.plugin!r} that adds it is not enabled for this project"
        return [Problem(("kind",), message, "unknown_kind")]
    validator = _validator_for(otype)
    if validator is None:
        return []
    return [
        Problem(("fields", *err.path) if err.path else ("fields",), err.message, f"schema_{err.validator}")
        for err in sorted(validator.iter_errors(draft.fields), key=lambda e: list(e.path))
    ]


def _check_uploads(engine: Engine, uploads: list[Upload]) -> tuple[list[tuple[Upload, Any]], list[Problem]]:
    checked, problems = [], []
    for i, upload in enumerate(uploads):
        try:
            sniffed = check_media(
                upload.data,
                upload.filename,
                upload.content_type,
                max_bytes=engine.settings.max_upload_bytes,
                max_pixels=engine.settings.max_image_pixels,
            )
        except MediaError as exc:
            problems.append(Problem(("media", i), str(exc), exc.code))
            continue
        checked.append((Upload(upload.data, safe_filename(upload.filename), upload.content_type), sniffed))
    return checked, problems


def _sorted_json() -> Any:
    """``json.dumps(value, sort_keys=True, default=str)`` as a function: json's C encoder made once
    (json.dumps makes one per call, which costs more than encoding a few fields), or the standard
    encoder where the C one is missing. Values are checked (``field_problems``) before they are
    hashed, so no cycle needs looking for."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(sort_keys=True, default=str).encode
    # markers, default, string encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan
    encode = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", True, False, True)
    return lambda value: "".join(encode(value, 0))


_hash_json = _sorted_json()


def content_hash(draft: DraftIn, media_shas: list[str], observed_utc: datetime | None = None) -> str:
    """What makes two submissions 'the same content' (the client_id aside): the sha256 of the JSON
    of observed_at (UTC), location, kind, fields, media and, only where chosen, the licence and
    the location privacy (a draft without them hashes as it did before they existed), keys
    sorted. ``observed_utc``: the draft's time in UTC, when known already."""
    location = draft.location
    body = {
        "observed_at": (observed_utc or draft.observed_at.astimezone(timezone.utc)).isoformat(),
        "location": {"lat": location.lat, "lon": location.lon, "accuracy_m": location.accuracy_m},
        "kind": draft.kind or GENERIC_KIND,
        "fields": draft.fields,
        "media": media_shas,
    }
    if draft.licence is not None:
        body["licence"] = draft.licence
    if draft.location_privacy is not None:
        body["location_privacy"] = draft.location_privacy
    return hashlib.sha256(_hash_json(body).encode()).hexdigest()


def plugin_problems(engine: Engine, draft: Draft, project: ProjectContext) -> list[Problem]:
    """The problems every ``validate_observation`` that ``project`` enables finds in ``draft``."""
    answers = engine.host.hooks(project).validate_observation(draft=draft, project=project, engine=engine)
    return [problem for problems in answers for problem in problems or ()]


def validate(
    engine: Engine, project_slug: str, data: Any, uploads: list[Upload], contributor_id: int | None
) -> tuple[DraftIn, Draft, list[tuple[Upload, Any]]]:
    """Every check, the engine's and the enabled plugins'; raise ValidationFailed, store nothing."""
    return _validate_in(engine, get_project(engine, project_slug), data, uploads, contributor_id)


def validate_many(
    engine: Engine, project_slug: str, items: Sequence[tuple[Any, list[Upload], int | None]]
) -> tuple[list[tuple[int, DraftIn, Draft, list[tuple[Upload, Any]]]], dict[int, list[Problem]]]:
    """``validate`` for many ``(data, uploads, contributor_id)`` at once, storing nothing: the
    valid ones as (position, parsed, draft, checked media), the problems of the others by position."""
    return _validate_batch(engine, get_project(engine, project_slug), list(items))


@dataclass(frozen=True)
class _Checks:
    """What the checks of one project need, found once for a whole batch."""

    kinds: dict[str, ObservationType]
    validators: list[Any]
    """One pluggy caller per plugin that validates drafts in the project (``PluginHost.caller``)."""

    @classmethod
    def of(cls, engine: Engine, project: ProjectContext) -> "_Checks":
        host = engine.host
        return cls({t.name: t for t in project_kinds(engine, project)},
                   [host.caller("validate_observation", project, only=name)
                    for name in host.plugins_of("validate_observation", project)])


def _validate_in(
    engine: Engine, project: ProjectContext, data: Any, uploads: list[Upload], contributor_id: int | None,
    checks: _Checks | None = None,
) -> tuple[DraftIn, Draft, list[tuple[Upload, Any]]]:
    valid, refused = _validate_batch(engine, project, [(data, uploads, contributor_id)], checks)
    if refused:
        raise ValidationFailed(refused[0])
    return valid[0][1:]


def _validate_batch(
    engine: Engine, project: ProjectContext, items: list[tuple[Any, list[Upload], int | None]],
    checks: _Checks | None = None,
) -> tuple[list[tuple[int, DraftIn, Draft, list[tuple[Upload, Any]]]], dict[int, list[Problem]]]:
    """Every check of ``submit`` on each ``(data, uploads, contributor_id)``: the valid ones as
    (position, parsed, draft, checked media), the others' problems by position.

    The checks go one at a time over the whole batch (shape and field values, then kind, licence
    and media, then each plugin's validation): each check's code stays in the processor's caches,
    which makes a batch markedly faster than checking item by item. An item's problems are those
    submit raises: the first stage that finds any says them all."""
    checks = checks or _Checks.of(engine, project)
    parsed_items, refused = _parse_batch([data for data, _uploads, _contributor_id in items], project, engine.settings)
    drafts = []
    for position, parsed, observed_at in parsed_items:
        _data, uploads, contributor_id = items[position]
        problems = _check_kind(engine, parsed, project, checks.kinds)
        if parsed.licence is not None and parsed.licence not in project.licences:
            problems.append(Problem(("licence",), f"{parsed.licence!r} is not a licence of project {project.slug!r}; "
                                    f"one of {', '.join(project.licences)}", "unknown_licence"))
        checked: list[tuple[Upload, Any]] = []
        if uploads:
            checked, media_problems = _check_uploads(engine, uploads)
            problems += media_problems
        if problems:
            refused[position] = problems
            continue
        location = parsed.location
        drafts.append((position, parsed, Draft(
            project=project.slug,
            observed_at=observed_at,
            location=Location(location.lat, location.lon, location.accuracy_m),
            kind=parsed.kind or GENERIC_KIND,
            fields=parsed.fields,
            media=_media_files(engine, checked) if checked else (),
            client_id=parsed.client_id,
            contributor_id=contributor_id,
            licence=parsed.licence or project.licence,
            location_privacy=parsed.location_privacy or project.default_location_privacy,
        ), checked))
    found: dict[int, list[Problem]] = {}
    for call in checks.validators:  # plugin by plugin: each plugin's code stays warm over the batch
        for position, _parsed, draft, _checked in drafts:
            for problems in call(draft=draft, project=project, engine=engine):
                if problems:
                    found.setdefault(position, []).extend(problems)
    if not found:
        return drafts, refused
    valid = []
    for entry in drafts:
        errors = [p for p in found.get(entry[0], ()) if p.severity == "error"]
        if errors:
            refused[entry[0]] = errors
        else:
            valid.append(entry)
    return valid, refused


def _media_files(engine: Engine, checked: list[tuple[Upload, Any]]) -> tuple[MediaFile, ...]:
    return tuple(
        MediaFile(
            sha256=hashlib.sha256(u.data).hexdigest(),
            content_type=s.content_type,
            size=len(u.data),
            path=engine.media.path_for(hashlib.sha256(u.data).hexdigest()),
            filename=u.filename,
            width=s.width,
            height=s.height,
        )
        for u, s in checked
    )


def get_project(engine: Engine, slug: str) -> ProjectContext:
    try:
        return engine.registry.project(slug)
    except KeyError:
        known = ", ".join(sorted(engine.registry.contexts())) or "none"
        raise NotFound(f"unknown project {slug!r} (projects: {known})", code="unknown_project") from None


def _insert_ignore(engine: Engine, session: Session | Connection, model: Any, values: dict[str, Any]) -> None:
    insert = pg_insert if engine.db.dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def _store_media(engine: Engine, session: Session | Connection, obs_id: int, checked: list[tuple[Upload, Any]]) -> None:
    """Write the files (once per content) and link them to the observation, in order."""
    links = []
    for position, (upload, sniffed) in enumerate(checked):
        sha = engine.media.put(upload.data)
        _insert_ignore(
            engine,
            session,
            MediaBlob,
            {"sha256": sha, "size": len(upload.data), "content_type": sniffed.content_type,
             "width": sniffed.width, "height": sniffed.height, "created_at": utcnow()},
        )
        links.append({"observation_id": obs_id, "sha256": sha, "filename": upload.filename, "position": position})
    if links:
        session.execute(insert(ObservationMedia.__table__), links)


def _insert_enrichments(engine: Engine, session: Session | Connection, obs_id: int, project: ProjectContext,
                        kind: str | None) -> list[tuple[int, str]]:
    """One pending enrichment per service enriching ``kind`` in ``project``; returns (id, plugin) of each."""
    services = engine.host.enriching_services(project, kind)
    if not services:
        return []
    now = utcnow()
    values = [{"observation_id": obs_id, "plugin": name, "status": "pending", "attempts": 0, "updated_at": now}
              for name in services]
    if len(values) == 1:  # the common case: the primary key as the driver reports it (SQLite: no RETURNING)
        return [(session.execute(_INSERT_ENRICHMENT, values[0]).inserted_primary_key[0], services[0])]
    rows = session.execute(_INSERT_ENRICHMENTS, values)
    return [(row.id, row.plugin) for row in rows]


def _existing(session: Session, project: str, client_id: str) -> Observation | None:
    return session.scalars(
        select(Observation).where(Observation.project == project, Observation.client_id == client_id)
    ).first()


def submit(
    engine: Engine,
    project_slug: str,
    data: Any,
    uploads: list[Upload] | None = None,
    contributor_id: int | None = None,
    *,
    edit: bool = False,
    actor: str = "system",
    status: str | None = None,
) -> SubmitResult:
    """Validate and store a draft, then queue its enrichments after the commit.

    The same ``client_id`` with the same content returns the first observation; with other
    content it raises Conflict, unless ``edit`` is set, when the observation is updated.
    ``status``: the moderation status to store instead of the project's default (a service's
    observation that must stay unpublished, e.g. a camera's picture of a person).
    """
    if status not in (None, "pending", "published", "unpublished"):
        raise ValueError(f"an observation cannot be submitted {status!r}")
    uploads = uploads or []
    parsed, draft, checked = validate(engine, project_slug, data, uploads, contributor_id)
    project = engine.registry.project(project_slug)
    digest = content_hash(parsed, [m.sha256 for m in draft.media])

    if draft.client_id and edit:
        found = _lookup_retry(engine, project_slug, draft.client_id, digest, contributor_id, edit)
        if found is not None:
            if found.content_hash != digest:
                return _apply_edit(engine, found.id, draft, checked, digest, actor)
            return SubmitResult(found.id, created=False)
    now = utcnow()
    try:
        # Insert first: a retry (same client_id) is rare, and the unique constraint finds it.
        # Plain Core inserts on a plain connection: the ORM session costs more than the rest of submit.
        with engine.db.begin() as conn:
            obs_id = conn.execute(
                _INSERT_OBSERVATION,
                {"project": project_slug, "client_id": draft.client_id, "content_hash": digest,
                  "contributor_id": contributor_id, "kind": draft.kind, "observed_at": draft.observed_at,
                  "lat": draft.location.lat, "lon": draft.location.lon, "accuracy_m": draft.location.accuracy_m,
                  "fields": draft.fields, "status": status or ("published" if project.auto_publish else "pending"),
                  "licence": draft.licence, "location_privacy": draft.location_privacy,
                  "created_at": now, "updated_at": now, "assess_due_at": now},
            ).inserted_primary_key[0]
            _store_media(engine, conn, obs_id, checked)
            enrichments = _insert_enrichments(engine, conn, obs_id, project, draft.kind)
    except IntegrityError:
        # This client_id was stored before (a retry), or by a request that raced this one.
        if not draft.client_id:
            raise
        found = _lookup_retry(engine, project_slug, draft.client_id, digest, contributor_id, edit)
        if found is None:
            raise
        return SubmitResult(found.id, created=False)
    _after_commit(engine, obs_id, enrichments)
    return SubmitResult(obs_id, created=True)


@dataclass(frozen=True)
class _Found:
    id: int
    content_hash: str


def _lookup_retry(
    engine: Engine, project: str, client_id: str, digest: str, contributor_id: int | None, edit: bool
) -> _Found | None:
    with transaction(engine.sessions) as session:
        existing = _existing(session, project, client_id)
        if existing is None:
            return None
        # client_ids are unique per project, not per contributor: one used by someone else answers in
        # the very words of one's own conflict, so that the answer says nothing about anyone else
        if existing.contributor_id != contributor_id or (existing.content_hash != digest and not edit):
            raise client_id_conflict(client_id)
        return _Found(existing.id, existing.content_hash)


def client_id_conflict(client_id: str) -> Conflict:
    """The refusal of a client id already used with other content (or by someone else)."""
    return Conflict(
        f"client_id {client_id!r} is already used in this project with other content; choose another, "
        "or send it as an edit to change your own observation",
        code="client_id_conflict",
    )


def _after_commit(engine: Engine, observation_id: int, enrichments: list[tuple[int, str]]) -> None:
    # never raises: the work is committed, and assess_due_at / the pending enrichments tell the
    # workers' recovery loop what is still owed if the broker cannot take it now
    engine.after_commit(observation_id, enrichments)


def _apply_edit(
    engine: Engine, obs_id: int, draft: Draft, checked: list[tuple[Upload, Any]], digest: str, actor: str
) -> SubmitResult:
    from core.audit import audit, snapshot

    with transaction(engine.sessions) as session:
        obs = session.get(Observation, obs_id)
        assert obs is not None
        before = snapshot(obs)
        obs.observed_at = draft.observed_at
        obs.lat, obs.lon, obs.accuracy_m = draft.location.lat, draft.location.lon, draft.location.accuracy_m
        obs.kind, obs.fields, obs.content_hash = draft.kind, draft.fields, digest
        obs.licence, obs.location_privacy = draft.licence, draft.location_privacy
        obs.assess_due_at = utcnow()  # owed again: cleared by the grading of this version
        obs.media.clear()
        session.flush()
        _store_media(engine, session, obs.id, checked)
        session.expire(obs, ["media"])
        ids = _requeue_enrichments(session, obs)
        audit(session, obs.project, obs.id, actor, "edit", before, snapshot(obs))
    _after_commit(engine, obs_id, ids)
    return SubmitResult(obs_id, created=False)


def update_fields(engine: Engine, obs_id: int, fields: dict[str, Any], actor: str,
                  authorize: Callable[[Observation], None] | None = None) -> None:
    """Replace some fields of an observation, validate again, and queue its enrichments again.

    ``authorize(observation)``, called on the row read for the change before anything else,
    raises when the caller may not make it (the API's access checks: one read, not two)."""
    from core.audit import audit, snapshot

    with transaction(engine.sessions) as session:
        obs = load_observation(session, obs_id)
        if authorize is not None:
            authorize(obs)
        project = get_project(engine, obs.project)
        # a null in the edit removes that field; a null stored before stays, as it was sent
        merged = {**obs.fields, **{k: v for k, v in fields.items() if v is not None}}
        merged = {k: v for k, v in merged.items() if k not in fields or fields[k] is not None}
        data = {"observed_at": obs.observed_at.isoformat(), "kind": obs.kind,
                "location": {"lat": obs.lat, "lon": obs.lon, "accuracy_m": obs.accuracy_m}, "fields": merged}
        parsed = parse_draft(data, project, engine.settings)
        problems = _check_kind(engine, parsed, project)
        if problems:
            raise ValidationFailed(problems)
        view = observation_view(obs, engine.media)
        draft = Draft(project=obs.project, observed_at=obs.observed_at, location=view.location, kind=obs.kind,
                      fields=merged, media=view.media, client_id=obs.client_id, contributor_id=obs.contributor_id,
                      licence=obs.licence or project.licence, location_privacy=obs.location_privacy)
        errors = [p for p in plugin_problems(engine, draft, project) if p.severity == "error"]
        if errors:
            raise ValidationFailed(errors)
        before = snapshot(obs)
        obs.fields = merged
        obs.content_hash = content_hash(parsed, [m.sha256 for m in view.media])
        obs.assess_due_at = utcnow()  # owed again: cleared by the grading of this version
        ids = _requeue_enrichments(session, obs)
        audit(session, obs.project, obs.id, actor, "edit", before, snapshot(obs))
    _after_commit(engine, obs_id, ids)


def _requeue_enrichments(session: Session, obs: Observation) -> list[tuple[int, str]]:
    for e in obs.enrichments:
        e.status, e.attempts, e.result, e.error = "pending", 0, None, None
        e.lease_token = e.lease_until = e.not_before = e.finished_at = None
        e.updated_at = utcnow()
    session.flush()
    return [(e.id, e.plugin) for e in obs.enrichments]


# -- many at once: imports and sync --------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    """What ``submit_many`` did with one item: stored (``created``), found already stored (a
    retry: the same client_id and content; ``observation_id`` is the stored one), or refused
    (``problems``: what submit would have raised, with field paths; nothing stored)."""

    index: int
    observation_id: int | None
    created: bool
    problems: tuple[Problem, ...] = ()

    @property
    def status(self) -> Literal["stored", "duplicate", "refused"]:
        if self.problems:
            return "refused"
        return "stored" if self.created else "duplicate"


@dataclass(slots=True)
class _Ready:
    """An item that passed every check: what its row stores."""

    index: int
    digest: str
    contributor_id: int | None
    source_contributor: str | None
    draft: Draft
    checked: list[tuple[Upload, Any]]

    @property
    def client_id(self) -> str | None:
        return self.draft.client_id


_LOOKUP_CHUNK = 500  # client ids per look-up query (far below every driver's parameter limit)
_BATCH_ATTEMPTS = 3  # batch inserts tried before the items are stored one by one


def _per_item(value: Any, n: int, name: str) -> list[Any]:
    if value is None or isinstance(value, (int, str)):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{name}: {len(values)} values for {n} items")
    return values


def submit_many(
    engine: Engine,
    project_slug: str,
    items: Sequence[tuple[Any, Sequence[Upload] | None]],
    contributors: int | None | Sequence[int | None] = None,
    *,
    actor: str = "system",
    source_contributors: str | None | Sequence[str | None] = None,
) -> list[ItemResult]:
    """Validate and store many drafts at once: one result per item, in order.

    Each item, ``(draft data, uploads)``, goes through every check of ``submit``; the valid ones
    are stored in ONE transaction (observations, media, pending enrichments, inserted many rows
    per statement), and their enrichments are queued after the commit as ``submit`` queues them.
    A bad item is reported (``ItemResult.problems``) and the rest stored. ``client_id`` works as in
    ``submit``: one already stored (or earlier in the batch) with the same content and contributor
    is a duplicate that answers the stored id; with other content it is refused
    (``client_id_conflict``). When another writer stores one of the batch's client ids meanwhile,
    the batch looks again and, if it keeps racing, stores its items one at a time.

    ``contributors``: one account id for every item, or one per item (None: anonymous);
    ``source_contributors``: the keyed hash of an imported observation's original author
    (``Observation.source_contributor``), one for all or one per item. ``actor``: who stores them
    (as in ``submit``, creating an observation writes no audit entry)."""
    project = get_project(engine, project_slug)
    n = len(items)
    contributor_of = _per_item(contributors, n, "contributors")
    source_of = _per_item(source_contributors, n, "source_contributors")
    results: dict[int, ItemResult] = {}
    ready: list[_Ready] = []
    first_with: dict[str, _Ready] = {}
    twins: list[tuple[int, _Ready]] = []  # later items that repeat an earlier one of the batch
    # every check, then every hash: one step at a time over the whole batch (see _validate_batch)
    valid, refused = _validate_batch(
        engine, project, [(data, list(uploads or ()), contributor_of[index]) for index, (data, uploads)
                          in enumerate(items)], _Checks.of(engine, project))
    for index, problems in refused.items():
        results[index] = ItemResult(index, None, False, tuple(problems))
    for index, parsed, draft, checked in valid:
        digest = content_hash(parsed, [m.sha256 for m in draft.media] if draft.media else [], draft.observed_at)
        contributor_id = contributor_of[index]
        item = _Ready(index, digest, contributor_id, source_of[index], draft, checked)
        client_id = draft.client_id
        if client_id:
            first = first_with.get(client_id)
            if first is not None:
                if first.digest == digest and first.contributor_id == contributor_id:
                    twins.append((index, first))
                else:
                    results[index] = _conflict_result(index, client_id)
                continue
            first_with[client_id] = item
        ready.append(item)

    stored = _store_batch(engine, project, ready, results)
    for index, first in twins:
        answer = results[first.index]
        results[index] = ItemResult(index, answer.observation_id, False, answer.problems)
    _after_commit_many(engine, stored)
    return [results[i] for i in range(n)]


def _after_commit_many(engine: Engine, stored: list[tuple[int, list[tuple[int, str]]]]) -> None:
    """What ``_after_commit`` does for each stored observation, with the enrichments of the whole
    batch handed to the dispatcher at once (one call instead of one per observation)."""
    enrichments = [enrichment for _obs_id, found in stored for enrichment in found]
    if enrichments:
        _after_commit(engine, stored[0][0], enrichments)
    for obs_id, found in stored:
        if not found:  # nothing to enrich: its assessment is owed now
            _after_commit(engine, obs_id, [])


def _conflict_result(index: int, client_id: str) -> ItemResult:
    conflict = client_id_conflict(client_id)
    return ItemResult(index, None, False, (Problem(("client_id",), conflict.message, conflict.code),))


def _store_batch(
    engine: Engine, project: ProjectContext, ready: list[_Ready], results: dict[int, ItemResult]
) -> list[tuple[int, list[tuple[int, str]]]]:
    """Store ``ready`` in one transaction; fill ``results``; return (id, enrichments) of each stored."""
    pending = ready
    for _attempt in range(_BATCH_ATTEMPTS):
        pending = _resolve_stored(engine, project.slug, pending, results)
        if not pending:
            return []
        try:
            done = _insert_batch(engine, project, pending)
        except IntegrityError:
            continue  # another writer stored one of these client ids meanwhile: look again
        return _record(done, results)
    stored = []  # still racing: one transaction per item, each settled on its own
    for item in _resolve_stored(engine, project.slug, pending, results):
        try:
            stored += _record(_insert_batch(engine, project, [item]), results)
        except IntegrityError as exc:
            if _resolve_stored(engine, project.slug, [item], results):
                results[item.index] = ItemResult(item.index, None, False, (Problem(
                    (), f"could not be stored: {type(exc.orig).__name__}", "store_failed"),))
    return stored


def _record(done: list[tuple[_Ready, int, list[tuple[int, str]]]],
            results: dict[int, ItemResult]) -> list[tuple[int, list[tuple[int, str]]]]:
    for item, obs_id, _enrichments in done:
        results[item.index] = ItemResult(item.index, obs_id, True)
    return [(obs_id, enrichments) for _item, obs_id, enrichments in done]


def _resolve_stored(engine: Engine, project: str, items: list[_Ready], results: dict[int, ItemResult]) -> list[_Ready]:
    """Settle the items whose client id is stored already (a duplicate, or a conflict); return the rest."""
    wanted = [item.draft.client_id for item in items if item.draft.client_id]
    if not wanted:
        return items
    found = stored_client_ids(engine, project, wanted)
    if not found:  # the usual case of a first import: none of them
        return items
    rest = []
    for item in items:
        client_id = item.draft.client_id
        existing = found.get(client_id) if client_id else None
        if existing is None:
            rest.append(item)
        elif existing[1] == item.digest and existing[2] == item.contributor_id:
            results[item.index] = ItemResult(item.index, existing[0], False)
        else:
            results[item.index] = _conflict_result(item.index, client_id)  # type: ignore[arg-type]
    return rest


# One index probe per client id, whatever the planner believes of the project's size: with the
# statistics of a table that an import is filling (a project of "25 rows"), PostgreSQL reads a
# plain IN list by scanning every row of the project, once per batch.
_STORED_PG = ("SELECT found.client_id, found.id, found.content_hash, found.contributor_id "
              "FROM unnest(CAST(%s AS text[])) AS wanted(client_id) CROSS JOIN LATERAL ("
              "SELECT client_id, id, content_hash, contributor_id FROM observations "
              "WHERE project = %s AND client_id IN (wanted.client_id) LIMIT 1) AS found")
_STORED_SQLITE = "SELECT client_id, id, content_hash, contributor_id FROM observations WHERE project = ? AND client_id IN ({})"


def stored_client_ids(engine: Engine, project: str, client_ids: list[str]) -> dict[str, tuple[int, str, int | None]]:
    """The observations of ``project`` stored with one of ``client_ids``: client id -> (id,
    content_hash, contributor_id). Read on a reading connection (never SQLite's write lock)."""
    found: dict[str, tuple[int, str, int | None]] = {}
    if not client_ids:
        return found
    with engine.readers() as session:
        conn = session.connection()
        for start in range(0, len(client_ids), _LOOKUP_CHUNK):
            found.update((row[0], (row[1], row[2], row[3]))
                         for row in _stored_with(conn, project, client_ids[start:start + _LOOKUP_CHUNK]))
    return found


def _stored_with(conn: Connection, project: str, client_ids: list[str]) -> Any:
    """(client_id, id, content_hash, contributor_id) of the observations of ``project`` stored
    with one of ``client_ids`` (on the unique index of the two)."""
    dialect = conn.dialect
    if dialect.name == "postgresql" and dialect.paramstyle in ("format", "pyformat"):
        return conn.exec_driver_sql(_STORED_PG, (client_ids, project))
    if dialect.name == "sqlite":
        return conn.exec_driver_sql(_STORED_SQLITE.format(", ".join("?" * len(client_ids))), (project, *client_ids))
    table = Observation.__table__
    return conn.execute(select(table.c.client_id, table.c.id, table.c.content_hash, table.c.contributor_id)
                        .where(table.c.project == project, table.c.client_id.in_(client_ids)))


_RETURNING_IDS = insert(Observation.__table__).returning(Observation.__table__.c.id, sort_by_parameter_order=True)
_RETURNING_ENRICHMENTS = insert(Enrichment.__table__).returning(Enrichment.__table__.c.id, sort_by_parameter_order=True)
_sequences: dict[tuple[str, str], str] = {}


def _reserve_ids(conn: Connection, table: Any, n: int) -> list[int] | None:
    """``n`` new primary keys of ``table``, so that rows can be inserted with a plain executemany
    (a third faster than RETURNING them, and that much of a batch's time); None: RETURNING them.

    SQLite: the batch's transaction began with BEGIN IMMEDIATE (``core.db.session``), so it holds
    the write lock and no other writer takes an id before it commits; max + 1 is what SQLite itself
    gives. PostgreSQL: taken from the column's sequence."""
    if n == 0:
        return []
    dialect = conn.dialect.name
    if dialect == "sqlite":
        top = conn.execute(select(func.max(table.c.id))).scalar() or 0
        return list(range(top + 1, top + n + 1))
    if dialect == "postgresql":
        key = (str(conn.engine.url), table.name)
        if key not in _sequences:
            _sequences[key] = conn.execute(text("SELECT pg_get_serial_sequence(:table, 'id')"),
                                           {"table": table.name}).scalar_one()
        return list(conn.execute(text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :n)"),
                                 {"sequence": _sequences[key], "n": n}).scalars())
    return None


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


class _RowWriter:
    """A plain INSERT of a table's rows as the driver takes them: the SQL in the driver's parameter
    style and each column's bind processor (SQLAlchemy's own for the dialect), found once per
    engine. The rows of a batch then go to the driver as tuples, by executemany, or, on
    PostgreSQL with psycopg, by COPY: SQLAlchemy's per-row parameter handling, and on PostgreSQL
    one statement a row, cost more than the database's own work on such rows.

    ``columns`` vary from row to row (the first one is the primary key); ``fixed`` ones hold one
    value for the whole batch (processed once)."""

    def __init__(self, dialect: Any, table: Any, columns: tuple[str, ...], fixed: tuple[str, ...]):
        self.table, self.columns, self.fixed = table, columns, fixed
        names = (*columns, *fixed)
        quote = dialect.identifier_preparer.quote
        into = f"{quote(table.name)} ({', '.join(map(quote, names))})"
        mark = _PLACEHOLDERS.get(dialect.paramstyle)
        self.sql = None if mark is None else f"INSERT INTO {into} VALUES ({', '.join([mark] * len(names))})"
        self.copy = f"COPY {into} FROM STDIN" if dialect.name == "postgresql" and dialect.driver == "psycopg" else None
        processors = [_quicker(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
        self.steps = [(i, p) for i, p in enumerate(processors[:len(columns)]) if p is not None]
        self.fixed_processors = processors[len(columns):]

    def processed(self, fixed: tuple[Any, ...]) -> tuple[Any, ...]:
        """The ``fixed`` values as the driver takes them."""
        return tuple(v if p is None else p(v) for p, v in zip(self.fixed_processors, fixed))

    def insert(self, conn: Connection, ids: list[int], rows: list[tuple[Any, ...]], fixed: tuple[Any, ...]) -> None:
        """Insert ``rows`` (values of ``columns`` after the key, in order) with their ``ids``, each
        with the ``fixed`` values."""
        if self.sql is None:  # a driver of another parameter style: SQLAlchemy Core, as usual
            extra = dict(zip(self.fixed, fixed))
            conn.execute(insert(self.table), [{**dict(zip(self.columns, (key, *row))), **extra}
                                              for key, row in zip(ids, rows)])
            return
        tail = self.processed(fixed)
        steps = self.steps
        out = []
        for key, row in zip(ids, rows):
            values = [key, *row]
            for i, process in steps:
                values[i] = process(values[i])
            out.append((*values, *tail))
        if self.copy is None:
            conn.exec_driver_sql(self.sql, out)
            return
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            with conn.connection.driver_connection.cursor() as cursor, cursor.copy(self.copy) as copy:
                for values in out:
                    copy.write_row(values)
        except dbapi_error as exc:  # as SQLAlchemy raises it from a statement (IntegrityError: a client id taken)
            raise DBAPIError.instance(self.copy, None, exc, dbapi_error, dialect=conn.dialect) from exc


def _json_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _dumps() -> Any:
    """``json.dumps(value)`` with json's C encoder made once (json.dumps makes one per call);
    values are checked (``field_problems``) before they are stored, so no cycle needs looking for."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    encode = make(None, _json_default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda value: "".join(encode(value, 0))


_SAME_JSON = [{"a": 1, "b": [1.5, None, True, "\u00e9\u2603\U0001f98a"], "c": {"z": -0.0, "y": 10**20}}, {}, [], "t", 3.25]
_SAME_TIMES = [datetime(2019, 4, 1, 8, 35, 0, 123456, timezone(timedelta(hours=2))), datetime(1, 1, 1, tzinfo=timezone.utc),
               datetime(9999, 12, 31, 23, 59, 59, 999999, timezone.utc), datetime(2020, 2, 29, 0, 0, tzinfo=timezone.utc)]


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")  # as core.db.models.UTCDateTime says
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _quicker(processor: Any) -> Any:
    """A quicker equal of SQLAlchemy's bind ``processor`` where there is one: JSON text by a
    json encoder made once, a time as SQLite's text of it. Used only where it gives the very
    values the processor gives, tried on samples once per engine; else the processor itself."""
    if processor is None:
        return None
    for quicker, samples in ((_dumps(), _SAME_JSON), (_utc_text, _SAME_TIMES)):
        try:
            if quicker is not None and all(quicker(v) == processor(v) and type(quicker(v)) is type(processor(v))
                                           for v in samples):
                return quicker
        except Exception:  # noqa: BLE001 (a processor that refuses a sample is not this one)
            continue
    return processor


_writers: dict[Any, tuple[Any, dict[str, _RowWriter]]] = {}
_OBSERVATION_ROW = ("id", "client_id", "content_hash", "contributor_id", "source_contributor", "kind", "observed_at",
                    "lat", "lon", "accuracy_m", "fields", "licence", "location_privacy")
_OBSERVATION_FIXED = ("project", "status", "comments_locked", "created_at", "updated_at", "assess_due_at")
_ENRICHMENT_ROW = ("id", "observation_id", "plugin")
_ENRICHMENT_FIXED = ("status", "attempts", "updated_at")


def _writers_for(engine: Engine) -> dict[str, _RowWriter]:
    """The row writers of observations and enrichments for ``engine``'s database."""
    dialect = engine.db.dialect
    found = _writers.get(id(dialect))
    if found is None:  # the dialect is kept with its writers, so its id cannot be reused meanwhile
        if len(_writers) >= 64:  # engines started again and again (tests)
            _writers.clear()
        found = _writers[id(dialect)] = (dialect, {
            "observations": _RowWriter(dialect, Observation.__table__, _OBSERVATION_ROW, _OBSERVATION_FIXED),
            "enrichments": _RowWriter(dialect, Enrichment.__table__, _ENRICHMENT_ROW, _ENRICHMENT_FIXED)})
    return found[1]


def _insert_batch(
    engine: Engine, project: ProjectContext, items: list[_Ready]
) -> list[tuple[_Ready, int, list[tuple[int, str]]]]:
    """One transaction: the observations, their media and their pending enrichments, many rows a statement."""
    now = utcnow()
    by_kind = {kind: engine.host.enriching_services(project, kind) for kind in {item.draft.kind for item in items}}
    services = next(iter(by_kind.values())) if len(by_kind) == 1 else None  # None: they differ by kind
    writers = _writers_for(engine)
    dialect_insert = pg_insert if engine.db.dialect.name == "postgresql" else sqlite_insert
    rows = [(d.client_id, item.digest, item.contributor_id, item.source_contributor, d.kind, d.observed_at,
             d.location.lat, d.location.lon, d.location.accuracy_m, d.fields, d.licence, d.location_privacy)
            for item in items for d in (item.draft,)]
    fixed = (project.slug, "published" if project.auto_publish else "pending", False, now, now, now)
    with engine.db.begin() as conn:
        ids = _reserve_ids(conn, Observation.__table__, len(rows))
        if ids is None:  # neither SQLite nor PostgreSQL: the database gives the ids back
            ids = list(conn.execute(_RETURNING_IDS, [
                {**dict(zip(_OBSERVATION_ROW[1:], row)), **dict(zip(_OBSERVATION_FIXED, fixed))} for row in rows
            ]).scalars())
        else:
            writers["observations"].insert(conn, ids, rows, fixed)
        blobs: dict[str, dict[str, Any]] = {}
        links = []
        for item, obs_id in zip(items, ids):
            for position, (upload, sniffed) in enumerate(item.checked):
                sha = engine.media.put(upload.data)
                blobs.setdefault(sha, {"sha256": sha, "size": len(upload.data), "content_type": sniffed.content_type,
                                       "width": sniffed.width, "height": sniffed.height, "created_at": now})
                links.append({"observation_id": obs_id, "sha256": sha, "filename": upload.filename,
                              "position": position})
        if blobs:
            conn.execute(dialect_insert(MediaBlob).on_conflict_do_nothing(), list(blobs.values()))
        if links:
            conn.execute(insert(ObservationMedia.__table__), links)
        enrichment_fixed = ("pending", 0, now)
        if services is None:
            return _insert_mixed_pending(conn, writers["enrichments"], items, ids, by_kind, enrichment_fixed)
        if not services:
            return [(item, obs_id, []) for item, obs_id in zip(items, ids)]
        enrichment_ids = _reserve_ids(conn, Enrichment.__table__, len(ids) * len(services))
        if enrichment_ids is None:
            enrichment_ids = list(conn.execute(_RETURNING_ENRICHMENTS, [
                {"observation_id": obs_id, "plugin": name, **dict(zip(_ENRICHMENT_FIXED, enrichment_fixed))}
                for obs_id in ids for name in services]).scalars())
        else:
            _insert_pending(conn, writers["enrichments"], ids, services, enrichment_ids, enrichment_fixed)
    k = len(services)  # the enrichments of the i-th observation: enrichment_ids[i * k:(i + 1) * k], as services
    return [(item, obs_id, list(zip(enrichment_ids[i * k:i * k + k], services)))
            for i, (item, obs_id) in enumerate(zip(items, ids))]


def _insert_mixed_pending(
    conn: Connection, writer: _RowWriter, items: list[_Ready], obs_ids: list[int], by_kind: dict[Any, list[str]],
    fixed: tuple[Any, ...],
) -> list[tuple[_Ready, int, list[tuple[int, str]]]]:
    """The pending enrichments of a batch whose kinds are enriched by different services."""
    pairs = [(obs_id, name) for item, obs_id in zip(items, obs_ids) for name in by_kind[item.draft.kind]]
    ids = _reserve_ids(conn, Enrichment.__table__, len(pairs)) if pairs else []
    if ids is None:
        ids = list(conn.execute(_RETURNING_ENRICHMENTS, [
            {"observation_id": obs_id, "plugin": name, **dict(zip(_ENRICHMENT_FIXED, fixed))}
            for obs_id, name in pairs]).scalars())
    elif pairs:
        writer.insert(conn, ids, pairs, fixed)
    of_observation: dict[int, list[tuple[int, str]]] = {}
    for enrichment_id, (obs_id, name) in zip(ids, pairs):
        of_observation.setdefault(obs_id, []).append((enrichment_id, name))
    return [(item, obs_id, of_observation.get(obs_id, [])) for item, obs_id in zip(items, obs_ids)]


def _insert_pending(conn: Connection, writer: _RowWriter, obs_ids: list[int], services: list[str],
                        ids: list[int], fixed: tuple[Any, ...]) -> None:
    """One pending enrichment per observation and service, ``ids[i * len(services) + j]`` for the
    i-th observation and the j-th service, in one set-based statement where the database has one:
    SQLite numbers them from the observations' own (consecutive) ids, PostgreSQL reads them from
    arrays; elsewhere row by row."""
    k = len(services)
    status, attempts, updated_at = writer.processed(fixed)
    dialect = conn.dialect
    consecutive = ids == list(range(ids[0], ids[0] + len(ids))) and obs_ids == list(
        range(obs_ids[0], obs_ids[0] + len(obs_ids)))
    if dialect.name == "sqlite" and consecutive:
        plugins = " UNION ALL ".join(["SELECT ? AS position, ? AS plugin"] * k)
        conn.exec_driver_sql(
            "INSERT INTO enrichments (id, observation_id, plugin, status, attempts, updated_at) "
            f"SELECT ? + (o.id - ?) * ? + s.position, o.id, s.plugin, ?, ?, ? FROM observations AS o, ({plugins}) AS s "
            "WHERE o.id BETWEEN ? AND ?",
            (ids[0], obs_ids[0], k, status, attempts, updated_at,
             *(value for j, name in enumerate(services) for value in (j, name)), obs_ids[0], obs_ids[-1]))
    elif dialect.name == "postgresql" and dialect.paramstyle in ("format", "pyformat"):
        conn.exec_driver_sql(
            "INSERT INTO enrichments (id, observation_id, plugin, status, attempts, updated_at) "
            "SELECT e.id, e.observation_id, e.plugin, %s, %s, %s FROM unnest(CAST(%s AS integer[]), "
            "CAST(%s AS integer[]), CAST(%s AS text[])) AS e(id, observation_id, plugin)",
            (status, attempts, updated_at, ids, [obs_id for obs_id in obs_ids for _ in services], services * len(obs_ids)))
    else:
        writer.insert(conn, ids, [(obs_id, name) for obs_id in obs_ids for name in services], fixed)
