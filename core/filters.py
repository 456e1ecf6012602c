"""One filter language for observations: the API's list, the exports, the CLI and plugins' queries.

A caller gives filters as name/value pairs (a URL query, ``--filter name=value`` on the command
line); :func:`parse_filters` checks them against the project and its kinds' schemas and gives an
:class:`ObservationFilter`; :func:`filter_conditions` turns that into SQL conditions on
``Observation``, with places tested as the caller sees them (``core.place_filter``), so a filter
never tells a caller more than the list shows.

Core filters are :data:`FILTER_PARAMETERS`. Fields of a kind's JSON Schema are filtered with
``field.NAME``::

    field.species=Vulpes vulpes      equals
    field.count>=3                   at least (a URL query sends key 'field.count>' value '3')
    field.count<=3                   at most
    field.count=gt:3  gte:  lt:  lte:  ne:  eq:   operator before the value
    field.category=in:1,2            one of

``docs/filters.md`` is the user's guide.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from sqlalchemy import ColumnElement, and_, case, exists, false, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Float, String

from core.db.models import Observation, ObservationMedia
from core.engine import Engine
from core.errors import EngineError
from core.licences import KNOWN_LICENCES
from core.place_filter import BBox, InvalidBBox, bbox_where, parse_bbox, visible_place
from core.projects import project_kinds
from core.types import GRADES, MODERATION_STATUSES, ObservationType, ProjectContext

FILTER_PARAMETERS: dict[str, str] = {
    "status": "moderation status: " + ", ".join(MODERATION_STATUSES),
    "grade": "quality grade: " + ", ".join(GRADES),
    "kind": "an observation kind of the project (e.g. generic, odour)",
    "contributor": "a contributor's account id (staff; anyone else only their own)",
    "since": "observed at or after this time (ISO 8601 with offset, e.g. 2026-05-01T00:00:00Z)",
    "until": "observed before this time (ISO 8601 with offset; exclusive)",
    "created_since": "stored at or after this time (ISO 8601 with offset)",
    "created_until": "stored before this time (ISO 8601 with offset; exclusive)",
    "updated_since": "last changed at or after this time (ISO 8601 with offset)",
    "bbox": "west,south,east,north in degrees (west > east crosses the antimeridian), "
            "tested on the place as you see it",
    "polygon": "a GeoJSON Polygon geometry (JSON text, at most 200 vertices), "
               "tested on the place as you see it",
    "has_media": "true: with photos or other media; false: without",
    "licence": "the observation's licence (one the project allows, e.g. CC-BY-4.0)",
}
"""The core filters, each with a one-line description (docs, OpenAPI, CLI help)."""

FIELD_PREFIX = "field."
MAX_POLYGON_VERTICES = 200
MAX_IN_VALUES = 100
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})$")
_KIND = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,16}$")
_MAX_EXACT_INTEGER = 2**53
_VALUE_OPERATORS = ("gte", "lte", "gt", "lt", "ne", "eq", "in")
_KEY_OPERATORS = {">": "gte", "<": "lte", "!": "ne"}
"""The last character of a ``field.NAME`` key: ``field.count>=3`` in a URL is key ``field.count>``."""

Ring = tuple[tuple[float, float], ...]
"""A closed ring of (lon, lat) positions, first == last."""


class FilterError(EngineError):
    """A filter the engine cannot apply: unknown, with a value of the wrong type, or naming a field
    no kind of the project has. The message names the parameter and what it takes."""

    code = "invalid_filter_value"
    http_status = 422


@dataclass(frozen=True)
class FieldCondition:
    """``field.NAME`` compared with ``op`` (eq, ne, gt, gte, lt, lte, in) to ``value``: already
    converted to the schema's type (a tuple of them for ``in``)."""

    name: str
    op: str
    value: Any
    json_type: str = "string"
    """integer, number, boolean or string: how the stored JSON value is read."""
    kinds: tuple[str, ...] = ()
    """The kinds whose schema has this field; the condition matches observations of these only."""


@dataclass(frozen=True)
class ObservationFilter:
    """Every filter a caller gave; None (or empty) means not filtered on it.

    ``until`` and ``created_until`` are exclusive. ``polygon`` is a GeoJSON Polygon's rings of
    (lon, lat), outer ring first, holes after it."""

    status: str | None = None
    grade: str | None = None
    kind: str | None = None
    contributor: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None
    updated_since: datetime | None = None
    bbox: BBox | None = None
    polygon: tuple[Ring, ...] | None = None
    has_media: bool | None = None
    licence: str | None = None
    fields: tuple[FieldCondition, ...] = ()


def filter_params(args: Iterable[str]) -> dict[str, str]:
    """``--filter`` arguments (``status=published``, ``field.count>=3``) as the key/value pairs a
    URL query gives: split at the first ``=`` (``field.count>=3`` -> ``field.count>``: ``3``)."""
    pairs = []
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep or not name:
            raise FilterError(f"filter {arg!r} must be NAME=VALUE (e.g. status=published, field.count>=3)",
                              "invalid_filter_value")
        pairs.append((name, value))
    return query_filters(pairs)


def query_filters(pairs: Iterable[tuple[str, str]], skip: Iterable[str] = ()) -> dict[str, str]:
    """The filters of a URL query's (name, value) pairs (``request.query_params.multi_items()``),
    leaving out ``skip`` (paging, format...). A filter given twice is a 422: which one would count
    is not for the engine to guess (a range is ``field.count>=1&field.count<=5``)."""
    leave_out = set(skip)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in leave_out:
            continue
        if name in params:
            raise FilterError(f"filter {name!r} is given twice; give each filter once "
                              "(a range: field.count>=1&field.count<=5)", "invalid_filter_value")
        params[name] = value
    return params


# --- parsing -----------------------------------------------------------------------------------


def parse_filters(engine: Engine, project: ProjectContext, params: Mapping[str, str]) -> ObservationFilter:
    """The filter that ``params`` ask for in ``project``; FilterError (422) names a parameter that
    does not exist, a value of the wrong type, or a field no kind of the project has."""
    unknown = sorted(k for k in params if k not in FILTER_PARAMETERS and not k.startswith(FIELD_PREFIX))
    if unknown:
        raise FilterError(
            f"unknown filter {unknown[0]!r}; filters are: {', '.join(FILTER_PARAMETERS)}, "
            f"and field.NAME for a field of the project's kinds", "unknown_filter")
    core: dict[str, Any] = {}
    for name, value in params.items():
        if name in FILTER_PARAMETERS:
            core[name] = _CORE_PARSERS[name](name, value, project)
    kinds = _kinds_in_scope(engine, project, core.get("kind"))
    fields = tuple(_field_condition(name[len(FIELD_PREFIX):], value, kinds)
                   for name, value in params.items() if name.startswith(FIELD_PREFIX))
    return ObservationFilter(**core, fields=fields)


def _invalid(name: str, value: str, expected: str) -> FilterError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return FilterError(f"filter {name!r}: {shown!r} is not {expected}", "invalid_filter_value")


def _choice(options: tuple[str, ...]) -> Any:
    def parse(name: str, value: str, project: ProjectContext) -> str:
        if value not in options:
            raise _invalid(name, value, "one of " + ", ".join(options))
        return value
    return parse


def _kind(name: str, value: str, project: ProjectContext) -> str:
    if not _KIND.match(value):
        raise _invalid(name, value, "a kind name (letters, digits, _ . : -, at most 64)")
    return value


def _contributor(name: str, value: str, project: ProjectContext) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 2_147_483_647:
        raise _invalid(name, value, "an account id (a positive integer)")
    return int(value)


def _time(name: str, value: str, project: ProjectContext) -> datetime:
    expected = "an ISO 8601 date-time with a UTC offset, e.g. 2026-05-01T00:00:00Z"
    if not _ISO_DATETIME.match(value):
        raise _invalid(name, value, expected)
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
        parsed.astimezone(timezone.utc)  # 0001-01-01T00:00+01:00 has no UTC time
    except (ValueError, OverflowError):
        raise _invalid(name, value, expected + " (a real time, years 1 to 9999 in UTC)") from None
    return parsed


def _bbox(name: str, value: str, project: ProjectContext) -> BBox:
    try:
        box = parse_bbox(value)
    except InvalidBBox as exc:  # its own code, as before this module: the list route's tests rely on it
        raise FilterError(f"filter {name!r}: {exc.message}", InvalidBBox.code) from None
    assert box is not None
    return box


def _coordinate(name: str, value: str, position: Any) -> tuple[float, float]:
    if (not isinstance(position, list) or len(position) not in (2, 3)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position)):
        raise _invalid(name, value, f"a GeoJSON Polygon: position {json.dumps(position)[:40]} is not [lon, lat]")
    lon, lat = float(position[0]), float(position[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise _invalid(name, value, f"a GeoJSON Polygon: [{lon}, {lat}] is not a longitude -180..180 "
                       "and a latitude -90..90")
    return lon, lat


def _polygon(name: str, value: str, project: ProjectContext) -> tuple[Ring, ...]:
    try:
        geometry = json.loads(value, parse_constant=lambda c: float("nan"))
    except (ValueError, RecursionError):
        raise _invalid(name, value, 'GeoJSON (JSON text like {"type": "Polygon", "coordinates": [[[lon, lat], ...]]})') from None
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        raise _invalid(name, value, 'a GeoJSON geometry of type "Polygon"')
    rings = geometry.get("coordinates")
    if not isinstance(rings, list) or not rings or not all(isinstance(r, list) for r in rings):
        raise _invalid(name, value, "a GeoJSON Polygon: coordinates must be a list of rings")
    if sum(len(r) for r in rings) > MAX_POLYGON_VERTICES + len(rings):  # a ring's closing vertex is its first
        raise _invalid(name, value, f"a GeoJSON Polygon of at most {MAX_POLYGON_VERTICES} vertices")
    parsed = []
    for ring in rings:
        points = tuple(_coordinate(name, value, p) for p in ring)
        if len(points) < 4 or points[0] != points[-1]:
            raise _invalid(name, value, "a GeoJSON Polygon: each ring needs 4 or more positions, "
                           "the last the same as the first")
        parsed.append(points)
    return tuple(parsed)


def _boolean(name: str, value: str, project: ProjectContext) -> bool:
    if value.lower() not in ("true", "false"):
        raise _invalid(name, value, "true or false")
    return value.lower() == "true"


def _licence(name: str, value: str, project: ProjectContext) -> str:
    # any licence the engine knows: observations keep theirs when a project's allowed set changes
    if value not in KNOWN_LICENCES:
        raise _invalid(name, value, "a licence: " + ", ".join(KNOWN_LICENCES))
    return value


_CORE_PARSERS = {
    "status": _choice(MODERATION_STATUSES),
    "grade": _choice(GRADES),
    "kind": _kind,
    "contributor": _contributor,
    "since": _time,
    "until": _time,
    "created_since": _time,
    "created_until": _time,
    "updated_since": _time,
    "bbox": _bbox,
    "polygon": _polygon,
    "has_media": _boolean,
    "licence": _licence,
}
assert set(_CORE_PARSERS) == set(FILTER_PARAMETERS)


def _kinds_in_scope(engine: Engine, project: ProjectContext, kind: str | None) -> list[ObservationType]:
    kinds = sorted(project_kinds(engine, project), key=lambda t: t.name)
    if kind is None:
        return kinds
    return [t for t in kinds if t.name == kind]  # none: a kind this project does not take has no fields


def _properties(otype: ObservationType) -> dict[str, Any]:
    properties = otype.schema.get("properties") if isinstance(otype.schema, dict) else None
    return properties if isinstance(properties, dict) else {}


def _json_type(schema: Any) -> str:
    """integer, number, boolean or string: the type a field's values are compared as."""
    if not isinstance(schema, dict):
        return "string"
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    types = [t for t in types if t != "null"]
    if not types and isinstance(schema.get("enum"), list):
        values = [v for v in schema["enum"] if v is not None]
        types = ["boolean" if isinstance(values[0], bool) else "integer" if isinstance(values[0], int)
                 else "number" if isinstance(values[0], float) else "string"] if values else []
    if len(types) == 1 and types[0] in ("integer", "number", "boolean", "string"):
        return types[0]
    return "string"


def _split_operator(key_name: str, value: str) -> tuple[str, str, str]:
    """(field name, operator, value text) of one ``field.NAME[op]=value`` pair."""
    op = None
    if key_name[-1:] in _KEY_OPERATORS:
        key_name, op = key_name[:-1], _KEY_OPERATORS[key_name[-1]]
    prefix, sep, rest = value.partition(":")
    if sep and prefix in _VALUE_OPERATORS:
        if op is not None:
            raise _invalid(FIELD_PREFIX + key_name, value, f"a value (the key already says {op!r})")
        return key_name, prefix, rest
    return key_name, op or "eq", value


def _field_condition(key_name: str, value: str, kinds: list[ObservationType]) -> FieldCondition:
    name, op, text = _split_operator(key_name, value)
    param = FIELD_PREFIX + name
    having = [(t, _properties(t)[name]) for t in kinds if name in _properties(t)]
    if not having:
        known = sorted({f for t in kinds for f in _properties(t)})
        scope = f"kind {kinds[0].name!r} has" if len(kinds) == 1 else "this project's kinds have"
        raise FilterError(
            f"unknown field {name!r}: {scope} the fields {', '.join(known) or '(none)'}", "unknown_field")
    types = {_json_type(schema) for _, schema in having}
    if len(types) > 1:
        raise _invalid(param, value, f"usable here: field {name!r} has different types in kinds "
                       f"{', '.join(t.name for t, _ in having)}; add kind=")
    json_type = types.pop()
    if json_type == "boolean" and op not in ("eq", "ne"):
        raise _invalid(param, value, "a comparison a boolean field takes (=, ne:)")
    texts = text.split(",") if op == "in" else [text]
    if op == "in" and not 1 <= len(texts) <= MAX_IN_VALUES:
        raise _invalid(param, value, f"a list of 1 to {MAX_IN_VALUES} values")
    converted = tuple(_field_value(param, t, json_type, [s for _, s in having]) for t in texts)
    return FieldCondition(name, op, converted if op == "in" else converted[0], json_type,
                          tuple(t.name for t, _ in having))


def _field_value(param: str, text: str, json_type: str, schemas: list[Any]) -> Any:
    value: Any
    if json_type == "integer":
        if not _INTEGER.match(text.strip()) or abs(int(text)) > _MAX_EXACT_INTEGER:
            raise _invalid(param, text, "an integer")
        value = int(text)
    elif json_type == "number":
        try:
            value = float(text)
        except ValueError:
            raise _invalid(param, text, "a number") from None
        if not math.isfinite(value):
            raise _invalid(param, text, "a finite number")
    elif json_type == "boolean":
        if text.lower() not in ("true", "false"):
            raise _invalid(param, text, "true or false")
        value = text.lower() == "true"
    else:
        if "\x00" in text:  # PostgreSQL refuses NUL in text; no stored value has one
            raise _invalid(param, text, "text without NUL characters")
        value = text
    enums = [s["enum"] for s in schemas if isinstance(s, dict) and isinstance(s.get("enum"), list)]
    if enums and len(enums) == len(schemas) and not any(value in e for e in enums):
        allowed = sorted({repr(v) for e in enums for v in e})
        shown = ", ".join(allowed[:30]) + (", ..." if len(allowed) > 30 else "")
        raise _invalid(param, text, f"one of the field's values: {shown}")
    return value


# --- SQL ---------------------------------------------------------------------------------------


class json_type_of(FunctionElement[str]):
    """The JSON type of ``column[key]`` as number, string, boolean, null, object or array (None
    when absent), on SQLite and PostgreSQL alike: so a value is only cast where it has the type."""

    type = String()
    name = "json_type_of"
    inherit_cache = True


@compiles(json_type_of, "sqlite")
def _json_type_sqlite(element: json_type_of, compiler: Any, **kw: Any) -> str:
    column, key = (compiler.process(c, **kw) for c in element.clauses)
    raw = f"json_type({column}, '$.' || json_quote({key}))"
    return (f"(CASE {raw} WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'text' THEN 'string' "
            f"WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE {raw} END)")


@compiles(json_type_of, "postgresql")
def _json_type_postgresql(element: json_type_of, compiler: Any, **kw: Any) -> str:
    column, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"json_typeof(({column})::json -> {key})"


_SQL_TYPES = {"integer": "number", "number": "number", "boolean": "boolean", "string": "string"}


def _field_expression(condition: FieldCondition) -> Any:
    """The stored value of the field, read as its type where it has that type (NULL elsewhere)."""
    element = Observation.fields[condition.name]
    read = {"integer": element.as_float, "number": element.as_float, "boolean": element.as_boolean,
            "string": element.as_string}[condition.json_type]()
    guard = json_type_of(Observation.fields, literal(condition.name, String)) == _SQL_TYPES[condition.json_type]
    return case((guard, read), else_=None)


def field_where(condition: FieldCondition) -> ColumnElement[bool]:
    """The SQL condition of one ``field.NAME`` filter: true only on observations of a kind that has
    the field, whose value has the field's type and compares as asked."""
    column = _field_expression(condition)
    value = condition.value
    if condition.json_type in ("integer", "number"):
        value = tuple(float(v) for v in value) if condition.op == "in" else float(value)
    compare = {
        "eq": lambda: column == value, "ne": lambda: column != value, "gt": lambda: column > value,
        "gte": lambda: column >= value, "lt": lambda: column < value, "lte": lambda: column <= value,
        "in": lambda: column.in_(value),
    }[condition.op]()
    return and_(Observation.kind.in_(condition.kinds), compare)


def polygon_where(rings: tuple[Ring, ...], lat: Any = Observation.lat, lon: Any = Observation.lon) -> ColumnElement[bool]:
    """The condition that (``lat``, ``lon``) lies inside the polygon (holes excluded), by ray casting
    in SQL: one term per edge counts whether a ray east of the point crosses it; odd is inside."""
    crossings = []
    for ring in rings:
        for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
            x1, y1, x2, y2 = float(x1), float(y1), float(x2), float(y2)
            if y1 == y2:  # a horizontal edge never crosses the ray
                continue
            slope = (x2 - x1) / (y2 - y1)
            crosses = and_(lat >= min(y1, y2), lat < max(y1, y2), lon < literal(x1, Float) + (lat - literal(y1, Float)) * literal(slope, Float))
            crossings.append(case((crosses, 1), else_=0))
    if not crossings:
        return false()
    points = [(float(x), float(y)) for ring in rings for x, y in ring]
    envelope = (min(p[0] for p in points), min(p[1] for p in points),
                max(p[0] for p in points), max(p[1] for p in points))
    total = crossings[0]
    for term in crossings[1:]:
        total = total + term
    return and_(bbox_where(envelope, lat, lon), total % 2 == 1)


def filter_conditions(f: ObservationFilter, project: ProjectContext, *, staff: bool,
                      contributor_id: int | None) -> list[ColumnElement[bool]]:
    """SQL conditions on ``Observation`` for every filter in ``f``. Places are tested as a caller
    who is ``staff`` of the project, or the contributor ``contributor_id``, sees them
    (``place_filter.visible_place``). Who may see which observations is not decided here."""
    where: list[ColumnElement[bool]] = []
    equal = {Observation.status: f.status, Observation.grade: f.grade, Observation.kind: f.kind,
             Observation.contributor_id: f.contributor}
    where += [column == value for column, value in equal.items() if value is not None]
    bounds = [(Observation.observed_at, f.since, f.until), (Observation.created_at, f.created_since, f.created_until),
              (Observation.updated_at, f.updated_since, None)]
    for column, low, high in bounds:
        if low is not None:
            where.append(column >= low)
        if high is not None:
            where.append(column < high)
    if f.bbox is not None or f.polygon is not None:
        lat, lon = visible_place(project, staff=staff, contributor_id=contributor_id)
        if f.bbox is not None:
            where.append(bbox_where(f.bbox, lat, lon))
        if f.polygon is not None:
            where.append(polygon_where(f.polygon, lat, lon))
    if f.has_media is not None:
        media = exists(select(ObservationMedia.id).where(ObservationMedia.observation_id == Observation.id))
        where.append(media if f.has_media else ~media)
    if f.licence is not None:
        # no licence stored: the project's default licence
        where.append(or_(Observation.licence == f.licence, Observation.licence.is_(None))
                     if f.licence == project.licence else Observation.licence == f.licence)
    where += [field_where(c) for c in f.fields]
    return where


def describe(f: ObservationFilter) -> dict[str, Any]:
    """The filters set in ``f``, as plain JSON values (for audit entries and export metadata)."""
    out: dict[str, Any] = {}
    for name in FILTER_PARAMETERS:
        value = getattr(f, name)
        if value is None:
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    for c in f.fields:
        out[f"{FIELD_PREFIX}{c.name}"] = f"{c.op}:{','.join(map(str, c.value)) if c.op == 'in' else c.value}"
    return out


__all__ = ["FILTER_PARAMETERS", "FieldCondition", "FilterError", "ObservationFilter", "describe",
           "field_where", "filter_conditions", "filter_params", "parse_filters", "polygon_where", "query_filters"]
