"""Export a project's observations as CSV or GeoJSON (and, through ``core.dwca``, a Darwin Core
Archive), with the same filters as the list, streamed in bounded memory.

Two scopes:

- ``public`` (the default): published observations only, as anyone may see them: no contributor,
  no account id, no e-mail, no client id, no media file names; each place as its observation's
  privacy allows (``core.privacy.public_location``: open on the project's public grid, obscured
  snapped to the project's obscured cell, private withheld: empty coordinates, null geometry).
- ``all``, for staff of the project: every observation with exact places, the contributor's
  account id and an imported row's pseudonymous ``source_contributor``. Each such export is
  audited once, when its stream ends (``action="export"``, with format, scope, filters, the
  number of rows sent and whether the stream was read to its end).

Rows are read ``EXPORT_BATCH`` at a time with plain selects (one transaction per batch, by id;
fewer where fields are large: ``pages``), so memory does not grow with the number of rows.
Plugins' columns (``export_columns``) are computed on the observation as the export shows it, so
no column can say more about a place or a person than the base columns do.

The CSV is built batch by batch with as little Python per row as the columns allow: places are
shown by SQL (``core.privacy.snap_sql``, the same doubles as ``core.privacy.public_location``),
fields' JSON texts are parsed in one call per batch, rows are written with ``writerows``, and
a plugin's view of a row (``ObservationView``) is made only where a plugin other than the
engine's own ``media_count`` asks for columns.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from math import floor
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, NamedTuple

from sqlalchemy import (ColumnElement, Float, Text, and_, bindparam, case, cast, exists, func, literal, select,
                        type_coerce)
from sqlalchemy.types import NullType

from core.db.models import AuditEntry, Enrichment, MediaBlob, Observation, ObservationMedia, QualityFlag
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError
from core.filters import ObservationFilter, filter_conditions
from core.licences import GBIF_LICENCES, LICENCE_URIS, gbif_eligible, licence_uri
from core.privacy import METRES_PER_DEGREE, PRIVACIES, public_digits, snap_sql
from core.projects import project_kinds
from core.read_model import view_from
from core.readable import READABLE_DEPTH, readable
from core.types import ExportColumn, Location, ObservationView, ProjectContext

log = logging.getLogger(__name__)

FORMATS = ("csv", "geojson")
SCOPES = ("public", "all")
EXPORT_BATCH = 500
"""Rows read at once, each with ``SMALL_FIELDS`` characters of fields at most (4 MiB in all; a
page of 500 rows keeps the garbage collector's older generations quiet, and PostgreSQL's round
trips few)."""
SMALL_FIELDS = 8 * 1024
LARGE_BATCH = 200
"""Rows read at once from a row with larger fields on: at most what a page of the list holds
(200 x ``max_fields_bytes`` of fields)."""
PARSE_BATCH = 200
"""Rows whose fields are parsed at once (one ``json.loads``)."""

BASE_COLUMNS = ("id", "kind", "observed_at", "lat", "lon", "accuracy_m", "status", "grade")
STAFF_COLUMNS = ("contributor_id", "source_contributor")
"""Only in ``scope=all``: who made the observation (an account id, or an import's pseudonym)."""
OTHER_FIELDS = "fields_other"
TAIL_COLUMNS = ("licence", "licence_uri", "gbif_eligible", "location_privacy", "location_generalised",
                "coordinate_uncertainty_m")
FIELD_PREFIX = "field."
RESERVED = frozenset(BASE_COLUMNS + STAFF_COLUMNS + TAIL_COLUMNS + (OTHER_FIELDS, "fields", "flags"))

_obs = OBS = Observation.__table__
_Raw = RAW = NullType()
"""No result processing: times as the database gives them (read with ``as_utc``)."""
_media = ObservationMedia.__table__
_blobs = MediaBlob.__table__
_enrichments = Enrichment.__table__
_flags = QualityFlag.__table__
FIELDS_TEXT = cast(_obs.c.fields, Text)
"""An observation's fields as their JSON text (``fields_of`` parses them a batch at a time, and
runs ``readable`` only where the text needs it)."""
# what records() reads: fields as their JSON text, times as the database gives them (``as_utc``)
_COLUMNS = (_obs.c.id, _obs.c.kind, type_coerce(_obs.c.observed_at, _Raw), _obs.c.lat, _obs.c.lon, _obs.c.accuracy_m,
            _obs.c.status, _obs.c.grade, _obs.c.contributor_id, _obs.c.source_contributor, FIELDS_TEXT,
            _obs.c.licence, _obs.c.location_privacy, type_coerce(_obs.c.created_at, _Raw),
            type_coerce(_obs.c.updated_at, _Raw))

_PRIVACY = PRIVACY = func.coalesce(func.nullif(_obs.c.location_privacy, ""), "open")
"""An observation's location privacy, ``open`` where none is stored (as ``records`` reads it)."""


# -- what is exported ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOptions:
    """What to export. ``filters`` is what ``core.filters.parse_filters`` made of ``filter_params``
    (kept as asked, for the audit entry); ``actor`` is who asked (audited with ``scope="all"``)."""

    scope: str = "public"
    filters: ObservationFilter | None = None
    filter_params: Mapping[str, str] = field(default_factory=dict)
    gbif_only: bool = False
    actor: str = "cli"

    @property
    def public(self) -> bool:
        return self.scope != "all"


@dataclass(frozen=True)
class MediaRow:
    id: int
    sha256: str
    content_type: str
    size: int
    width: int | None
    height: int | None


@dataclass(slots=True)
class ExportRecord:
    """One observation as an export shows it: ``place`` is None where its place is withheld."""

    id: int
    kind: str | None
    observed_at: datetime
    status: str
    grade: str | None
    contributor_id: int | None
    source_contributor: str | None
    fields: dict[str, Any]
    licence: str
    location_privacy: str
    accuracy_m: float | None
    """As sent by the device (the shown place's own uncertainty is ``place.accuracy_m``)."""
    place: Location | None
    generalised: bool
    created: Any
    updated: Any
    """Stored times as the database gives them: read with ``created_at`` and ``updated_at``."""
    media: list[MediaRow]
    enrichments: dict[str, dict[str, Any]]
    flags: list[tuple[str, str]]
    """(plugin, code) of each quality flag."""

    @property
    def created_at(self) -> datetime:
        return as_utc(self.created)

    @property
    def updated_at(self) -> datetime:
        return as_utc(self.updated)


class RowCount:
    """How many rows an export has sent so far (for its audit entry)."""

    def __init__(self) -> None:
        self.rows = 0


class PlaceRule:
    """``core.privacy.public_location`` for one export: each privacy's grid is looked up once, not
    per row (``tests/test_export_csv.py`` holds the two to the same places, bit for bit)."""

    def __init__(self, project: ProjectContext, public: bool) -> None:
        self.public = public
        self.grids: dict[str, tuple[int | None, float, float]] = {}
        for privacy in PRIVACIES:
            try:
                digits = public_digits(project, privacy)
            except ValueError:
                continue  # private: no public place
            self.grids[privacy] = (digits, float(10**digits) if digits is not None else 1.0,
                                   METRES_PER_DEGREE / 10**digits if digits is not None else 0.0)

    def __call__(self, lat: float, lon: float, accuracy_m: float | None, privacy: str) -> tuple[Location | None, bool]:
        """The place shown, and whether it is generalised (the rule, not the values: a place that
        happens to lie on the grid is still a generalised one)."""
        if not self.public:
            return Location(lat, lon, accuracy_m), False
        grid = self.grids.get(privacy)
        if grid is None:  # private, or a privacy this engine does not know: withheld
            return None, False
        digits, scale, cell = grid
        if digits is None:
            return Location(lat, lon, accuracy_m), False
        return Location(floor(lat * scale + 0.5) / scale, floor(lon * scale + 0.5) / scale,
                        max(accuracy_m or 0.0, cell)), True


def shown_place_columns(project: ProjectContext, public: bool) -> tuple[ColumnElement[Any], ...]:
    """``lat``, ``lon``, ``accuracy_m``, ``location_generalised`` and ``coordinate_uncertainty_m``
    as an export shows them, computed by the database: the places of :class:`PlaceRule`, bit for
    bit (``core.privacy.snap_sql``); NULL where the place is withheld."""
    lat, lon, accuracy = _obs.c.lat, _obs.c.lon, _obs.c.accuracy_m
    if not public:
        return lat, lon, accuracy, literal("false"), accuracy
    grids = PlaceRule(project, public).grids
    shown_lat, shown_lon, shown_accuracy, generalised, uncertainty = {}, {}, {}, {}, {}
    for privacy, (digits, _, cell) in grids.items():
        shown_lat[privacy], shown_lon[privacy] = snap_sql(lat, digits), snap_sql(lon, digits)
        shown_accuracy[privacy] = accuracy
        generalised[privacy] = literal("false" if digits is None else "true")
        # max(accuracy_m or 0, cell), as PlaceRule
        uncertainty[privacy] = accuracy if digits is None else case(
            (accuracy > literal(cell, Float), accuracy), else_=literal(cell, Float))
    return tuple(_by_privacy(shown) for shown in (shown_lat, shown_lon, shown_accuracy, generalised, uncertainty))


def _by_privacy(shown: dict[str, Any]) -> ColumnElement[Any]:
    """The value of each row by its stored location privacy (empty or NULL: open, as ``records``
    reads it; NULL for any other), in one CASE on the column itself."""
    privacy = _obs.c.location_privacy
    if "open" not in shown:
        return case(shown, value=privacy, else_=None)
    return case({**shown, "": shown["open"]}, value=privacy,
                else_=case((privacy.is_(None), shown["open"]), else_=None))


def shown_place(exact: Location, project: ProjectContext, privacy: str, public: bool) -> tuple[Location | None, bool]:
    """The place an export shows, and whether it is generalised: exact for staff; for the public
    as ``core.privacy.public_location`` says (None: private, withheld)."""
    return PlaceRule(project, public)(exact.lat, exact.lon, exact.accuracy_m, privacy)


def record_conditions(engine: Engine, project: ProjectContext, options: ExportOptions) -> list[ColumnElement[bool]]:
    """The SQL conditions of an export: project, scope, GBIF licences and the caller's filters."""
    conditions: list[ColumnElement[bool]] = [_obs.c.project == project.slug]
    if options.public:
        conditions.append(_obs.c.status == "published")
    if options.gbif_only:
        conditions.append(func.coalesce(_obs.c.licence, project.licence).in_(sorted(GBIF_LICENCES)))
    if options.filters is not None:
        # places tested as this export shows them (exact in scope=all, public otherwise)
        conditions += filter_conditions(options.filters, project, staff=not options.public, contributor_id=None)
    return conditions


@dataclass
class Page:
    """One batch of an export: its rows (the columns asked for, the observation's id first) and
    the rows' media, finished enrichments and flags by observation id (empty where not asked)."""

    rows: list[Any]
    media: dict[int, list[MediaRow]]
    enrichments: dict[int, dict[str, Any]]
    flags: dict[int, list[tuple[str, str]]]


CHILDREN = ("media", "enrichments", "flags")


def pages(engine: Engine, project: ProjectContext, options: ExportOptions, columns: tuple[Any, ...], *,
          children: tuple[str, ...] = CHILDREN, batch: int = EXPORT_BATCH) -> Iterator[Page]:
    """The export's observations as pages of rows of ``columns`` (``_obs.c.id`` first, and
    ``FIELDS_TEXT`` among them), in id order, each read in one short transaction (a long export
    never holds the database), with the ``children`` asked for.

    A page holds ``batch`` rows whose fields are small (``SMALL_FIELDS`` characters of JSON at
    most); where a larger one comes, the page ends before it, and a page that starts with one
    holds ``LARGE_BATCH`` rows (at most what a page of the list holds)."""
    conditions = and_(*record_conditions(engine, project, options))
    at = next(i for i, column in enumerate(columns) if column is FIELDS_TEXT)
    capped = (*columns[:at], case((func.length(FIELDS_TEXT) <= SMALL_FIELDS, FIELDS_TEXT), else_=None),
              *columns[at + 1:])  # NULL: larger (stored fields are never NULL)
    small, large = (select(*selected).where(conditions, _obs.c.id > bindparam("last")).order_by(_obs.c.id).limit(n)
                    for selected, n in ((capped, batch), (columns, LARGE_BATCH)))
    # each child table read by a range of its observation_id index, kept to the export's rows
    # (the same statement for every batch; no list of ids to expand into it)
    queries = tuple(_CHILD_QUERIES[name].where(
        _CHILD_QUERIES[name].selected_columns.observation_id > bindparam("last"),
        _CHILD_QUERIES[name].selected_columns.observation_id <= bindparam("upto"),
        exists(select(literal(1)).where(_obs.c.id == _CHILD_QUERIES[name].selected_columns.observation_id,
                                        conditions)))
        if name in children else None for name in CHILDREN)
    reader = engine.db.execution_options(readonly=True)  # SQLite: read beside a writer, never lock
    last = 0
    while True:
        with reader.begin() as conn:  # one short transaction per batch
            rows = conn.execute(small, {"last": last}).all()
            if not rows:
                return
            more = len(rows) == batch
            larger = next((i for i, row in enumerate(rows) if row[at] is None), None)
            if larger == 0:
                rows = conn.execute(large, {"last": last}).all()
                more = len(rows) == LARGE_BATCH
            elif larger is not None:
                del rows[larger:]
                more = True
            span = {"last": last, "upto": rows[-1][0]}
            found = [_NO_CHILDREN if child is None else conn.execute(child, span).all() for child in queries]
        yield Page(rows, *_children(*found))
        if not more:
            return
        last = rows[-1][0]


def records(engine: Engine, project: ProjectContext, options: ExportOptions, *, counter: RowCount | None = None,
            batch: int = EXPORT_BATCH, public_places: bool | None = None) -> Iterator[ExportRecord]:
    """The observations of an export, in id order, read ``batch`` at a time (one short read
    transaction each: a long export never holds the database). Places are shown as the public
    sees them in a public export, or wherever ``public_places`` says so."""
    public_places = options.public if public_places is None else public_places
    default_licence = project.licence
    place_of = PlaceRule(project, public_places)
    for page in pages(engine, project, options, _COLUMNS, batch=batch):
        media, enrichments, flags = page.media, page.enrichments, page.flags
        for (obs_id, kind, observed_at, lat, lon, accuracy_m, status, grade, contributor_id, source_contributor,
             _, licence, privacy, created, updated), fields in zip(page.rows, parsed(page.rows, 10)):
            privacy = privacy or "open"
            place, generalised = place_of(lat, lon, accuracy_m, privacy)
            yield ExportRecord(
                obs_id, kind, as_utc(observed_at), status, grade, contributor_id, source_contributor,
                fields, licence or default_licence, privacy, accuracy_m, place, generalised,
                created, updated, media.get(obs_id, _NONE), enrichments.get(obs_id, _NO_RESULTS),
                flags.get(obs_id, _NONE))
            if counter is not None:
                counter.rows += 1


def as_utc(value: Any) -> datetime:
    """A stored time as an aware UTC datetime: SQLite gives the text it keeps (read here with the
    C parser, faster than a result processor per column), PostgreSQL a datetime in the session's
    time zone."""
    if type(value) is str:
        if is_sqlite_time(value):  # no offset in it: UTC's added to the text, not set on the result
            return datetime.fromisoformat(value + "+00:00")
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value if not value.utcoffset() else value.astimezone(timezone.utc)


def is_sqlite_time(value: Any) -> bool:
    """Whether ``value`` is a time as SQLite keeps one (``2026-05-01 07:30:00.000000``, in UTC)."""
    return type(value) is str and len(value) == 26 and value[10] == " " and value[19] == "."


def iso_utc(value: Any) -> str:
    """A stored time as ``as_utc(value).isoformat()`` (UTC, ISO 8601); SQLite's usual text is
    rewritten without parsing it."""
    if is_sqlite_time(value):
        value = value.replace(" ", "T", 1)
        return value[:19] + "+00:00" if value.endswith("000000") else value + "+00:00"
    return as_utc(value).isoformat()


_NONE: list[Any] = []
_NO_RESULTS: dict[str, Any] = {}
_MAY_NEED_REPAIR = re.compile(r"\\u[dD][89a-fA-F]|NaN|Infinity|[\ud800-\udfff]")
"""What a stored JSON text holds when ``readable`` may have to repair its value (surrogates,
escaped or not, NaN, infinities); an astral character escaped as a pair matches too, harmlessly."""


def parsed(rows: list[Any], index: int) -> Iterator[dict[str, Any]]:
    """``fields_of`` the rows, ``PARSE_BATCH`` rows at a time (few objects alive at once: little
    for the garbage collector to go through)."""
    for start in range(0, len(rows), PARSE_BATCH):
        yield from fields_of(rows[start:start + PARSE_BATCH], index)


def fields_of(rows: list[Any], index: int) -> list[dict[str, Any]]:
    """The fields of each row, from the JSON text in column ``index``: one C parse for the whole
    batch, then ``readable`` only where a row's text says it may be needed (surrogates, NaN,
    infinities, deep nesting). A text that is not an object gives no fields."""
    texts = [row[index] or "{}" for row in rows]
    joined = "[" + ",".join(texts) + "]"
    values = json.loads(joined)
    # most batches are ASCII without escapes, NaN or infinities: no regular expression to run
    may_repair = (not joined.isascii() or "\\u" in joined or "NaN" in joined or "Infinity" in joined) and \
        _MAY_NEED_REPAIR.search(joined) is not None
    for i, text in enumerate(texts):
        value = values[i]
        if type(value) is not dict:
            values[i] = {}
        elif (may_repair and _MAY_NEED_REPAIR.search(text)) or (
                len(text) > READABLE_DEPTH and text.count("[") + text.count("{") > READABLE_DEPTH):
            values[i] = readable(value)
    return values


_CHILD_QUERIES = {
    "media": select(_media.c.observation_id, _media.c.id, _media.c.sha256, _blobs.c.content_type, _blobs.c.size,
                    _blobs.c.width, _blobs.c.height)
    .join(_blobs, _blobs.c.sha256 == _media.c.sha256).order_by(_media.c.observation_id, _media.c.position, _media.c.id),
    "enrichments": select(_enrichments.c.observation_id, _enrichments.c.plugin, _enrichments.c.result)
    .where(_enrichments.c.status == "done"),
    "flags": select(_flags.c.observation_id, _flags.c.plugin, _flags.c.code).order_by(_flags.c.id),
}
"""Media, finished enrichments and flags, narrowed to a batch by ``pages``."""
_NO_CHILDREN: list[Any] = []


def _children(media_rows: list[Any], enrichment_rows: list[Any], flag_rows: list[Any]
              ) -> tuple[dict[int, list[MediaRow]], dict[int, dict[str, Any]], dict[int, list[tuple[str, str]]]]:
    media: defaultdict[int, list[MediaRow]] = defaultdict(list)
    for row in media_rows:
        media[row.observation_id].append(MediaRow(row.id, row.sha256, row.content_type, row.size, row.width,
                                                  row.height))
    enrichments: defaultdict[int, dict[str, Any]] = defaultdict(dict)
    for row in enrichment_rows:
        enrichments[row.observation_id][row.plugin] = row.result or {}
    flags: defaultdict[int, list[tuple[str, str]]] = defaultdict(list)
    for row in flag_rows:
        flags[row.observation_id].append((row.plugin, row.code))
    return dict(media), dict(enrichments), dict(flags)


def view_of(record: ExportRecord, project: ProjectContext, engine: Engine, public: bool) -> ObservationView:
    """What plugins' columns are computed on: the observation as the export shows it (in a public
    export no contributor, no media file names, the place as shown, 0,0 where it is withheld)."""
    place = record.place or Location(0.0, 0.0, None)
    shown = _Shown(record.id, project.slug, record.kind, record.observed_at, place.lat, place.lon, place.accuracy_m,
                   record.fields, None if public else record.contributor_id, record.status, record.created_at,
                   record.licence, record.location_privacy)
    return view_from(shown, record.media, (_Done(name, result) for name, result in record.enrichments.items()),
                     engine.media)


class _Shown(NamedTuple):
    """An export record's observation columns, named as ``read_model.view_from`` reads them."""

    id: int
    project: str
    kind: str | None
    observed_at: datetime
    lat: float
    lon: float
    accuracy_m: float | None
    fields: dict[str, Any]
    contributor_id: int | None
    status: str
    created_at: datetime
    licence: str
    location_privacy: str


class _Done(NamedTuple):
    plugin: str
    result: dict[str, Any]


# -- columns ------------------------------------------------------------------------------------


def export_columns(engine: Engine, project: ProjectContext) -> list[ExportColumn]:
    """Every enabled plugin's extra columns; a name used twice is an error naming both plugins."""
    columns: dict[str, ExportColumn] = {}
    host = engine.host
    for plugin in host.plugins_of("export_columns", project):  # plugin by plugin: a clash names its plugin
        answers = host.caller("export_columns", project, only=plugin)(project=project, engine=engine)
        for column in (column for answer in answers for column in answer or ()):
            if column.name in RESERVED or column.name.startswith(FIELD_PREFIX) or column.name in columns:
                owner = columns[column.name].plugin if column.name in columns else "the engine"
                raise EngineError(f"plugin {plugin!r}: export column {column.name!r} is already defined by {owner}",
                                  code="duplicate_column")
            columns[column.name] = ExportColumn(column.name, column.value, column.description, plugin)
    return list(columns.values())


def schema_fields(engine: Engine, project: ProjectContext) -> list[str]:
    """The names of the fields the project's kinds' schemas declare: each kind's properties in
    schema order, kinds in the order the engine knows them, each name once."""
    names: dict[str, None] = {}
    for kind in project_kinds(engine, project):
        for name in (kind.schema or {}).get("properties", {}) or {}:
            names.setdefault(str(name), None)
    return list(names)


# -- cells --------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
try:  # the C encoder of _dumps, made once (JSONEncoder.encode makes one per call): for stored JSON
    from json.encoder import c_make_encoder, encode_basestring

    _encoder = c_make_encoder(None, json.JSONEncoder().default, encode_basestring, None, ": ", ", ", True, False,
                              True)
except (ImportError, TypeError):  # pragma: no cover (an interpreter without the C module)
    _encoder = None


def _encode(value: Any) -> str:
    """``_dumps`` of a value parsed from stored JSON (no cycles: no check for them)."""
    return "".join(_encoder(value, 0)) if _encoder is not None else _dumps(value)


def _cell(value: Any) -> Any:
    """A CSV cell of a value already ``readable``: empty for None, true/false, JSON for objects."""
    kind = type(value)
    if kind is str or kind is int or kind is float:
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is dict or kind is list or kind is tuple:
        return _dumps(value)
    return value


def _excel_cell(value: Any) -> Any:
    """A cell for a spreadsheet: text that a spreadsheet would run as a formula starts with ``'``
    (OWASP's advice against CSV injection); numbers are left as they are."""
    value = _cell(value)
    if type(value) is str and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# -- formats ------------------------------------------------------------------------------------


class Plan:
    """What every row of one export needs, computed once before the first row; ``values`` gives a
    record's values in the order of ``header`` (plain Python values, each ``readable``)."""

    def __init__(self, engine: Engine, project: ProjectContext, options: ExportOptions) -> None:
        self.engine, self.project, self.options = engine, project, options
        self.field_names = schema_fields(engine, project)
        self.columns = export_columns(engine, project)
        self.header = [*BASE_COLUMNS, *(() if options.public else STAFF_COLUMNS),
                       *(FIELD_PREFIX + name for name in self.field_names), OTHER_FIELDS, "flags",
                       *(c.name for c in self.columns), *TAIL_COLUMNS]
        self._known = frozenset(self.field_names)
        self._licences = {name: (licence_uri(name) or None, gbif_eligible(name)) for name in LICENCE_URIS}
        self._licences_cells = _LicenceCells(self, project.licence)
        self._numbers = FloatTexts()
        # the engine's own media_count is the number of the row's media: no view needed for it
        engine_only = all((c.plugin, c.name) == ENGINE_MEDIA_COUNT for c in self.columns)
        self.views: list[ExportColumn] | None = None if engine_only else self.columns
        """The columns that need a plugin's view of each row (None: the engine's own only)."""

    @classmethod
    def of(cls, engine: Engine, project: ProjectContext, options: ExportOptions) -> "Plan":
        return cls(engine, project, options)

    def values(self, record: ExportRecord) -> list[Any]:
        """The record's values in the order of ``header``, as plain Python values (for GeoJSON)."""
        fields = record.fields
        known = self._known
        place = record.place
        row: list[Any] = [record.id, record.kind, record.observed_at.isoformat(),
                          place.lat if place else None, place.lon if place else None,
                          record.accuracy_m if place else None, record.status, record.grade]
        if not self.options.public:
            row += (record.contributor_id, record.source_contributor)
        row += [fields.get(name) for name in self.field_names]
        row.append({k: v for k, v in fields.items() if k not in known} or None)
        row.append([code for _, code in record.flags])
        row += self.plugin_values(record)
        uri, eligible = self.licence_facts(record.licence)
        row += (record.licence, uri, eligible, record.location_privacy, record.generalised if place else None,
                place.accuracy_m if place else None)
        return row

    def csv_select(self) -> tuple[Any, ...]:
        """What the CSV reads of each observation, in this order: the base columns with the place
        as shown (``shown_place_columns``), the staff columns in ``scope=all``, the fields' JSON
        text, licence, location privacy, ``location_generalised``, ``coordinate_uncertainty_m``,
        and the stored times where plugins' views need them."""
        lat, lon, accuracy, generalised, uncertainty = shown_place_columns(self.project, self.options.public)
        staff = () if self.options.public else (_obs.c.contributor_id, _obs.c.source_contributor)
        times = (type_coerce(_obs.c.created_at, _Raw),) if self.views else ()
        return (_obs.c.id, _obs.c.kind, type_coerce(_obs.c.observed_at, _Raw), lat, lon, accuracy, _obs.c.status,
                _obs.c.grade, *staff, FIELDS_TEXT, _obs.c.licence, _PRIVACY, generalised, uncertainty,
                *times)

    def csv_rows(self, page: Page, cell: Callable[[Any], Any]) -> Iterator[list[Any]]:
        """The page's CSV rows in the order of ``header``: ``cell`` (``_cell`` or ``_excel_cell``)
        turns fields' and plugins' values into text; the engine's own columns need no turning
        (the csv module writes None as an empty cell, and each float as its repr, which
        ``numbers`` keeps for the values that repeat). Made one at a time, as ``writerows`` takes
        them (few objects alive at once: little for the garbage collector to go through)."""
        head = 10 if not self.options.public else 8
        names, known, licences, numbers = self.field_names, self._known, self._licences_cells, self._numbers
        media, flags = page.media, page.flags
        counted = self.views is None and bool(self.columns)  # media_count alone: no view to make
        encode, iso, float_ = _encode, iso_utc, float
        for start in range(0, len(page.rows), PARSE_BATCH):
            rows = page.rows[start:start + PARSE_BATCH]
            for row, fields in zip(rows, fields_of(rows, head)):
                obs_id, lat, lon, accuracy, uncertainty = row[0], row[3], row[4], row[5], row[head + 4]
                if names:
                    get = fields.get
                    values = [cell(get(name)) for name in names]
                    other = {k: v for k, v in fields.items() if k not in known} if fields else None
                else:
                    values, other = _NONE, fields
                codes = flags.get(obs_id)
                if counted:
                    plugins: Any = (len(media.get(obs_id, _NONE)),)
                elif self.views is not None:
                    plugins = [cell(v) for v in self.plugin_values(self._record(row, head, fields, page))]
                else:
                    plugins = _NONE
                yield [obs_id, row[1], iso(row[2]), numbers[lat] if type(lat) is float_ else lat,
                       numbers[lon] if type(lon) is float_ else lon,
                       numbers[accuracy] if type(accuracy) is float_ else accuracy, *row[6:head], *values,
                       encode(other) if other else None, encode([code for _, code in codes]) if codes else "[]",
                       *plugins, *licences[row[head + 1]], row[head + 2], row[head + 3],
                       numbers[uncertainty] if type(uncertainty) is float_ else uncertainty]

    def _record(self, row: Any, head: int, fields: dict[str, Any], page: Page) -> ExportRecord:
        """A CSV row as the record plugins' views are made of."""
        obs_id, lat, lon, uncertainty = row[0], row[3], row[4], row[head + 4]
        place = None if lat is None else Location(lat, lon, uncertainty)
        return ExportRecord(
            obs_id, row[1], as_utc(row[2]), row[6], row[7], None if head == 8 else row[8],
            None if head == 8 else row[9], fields, row[head + 1] or self.project.licence, row[head + 2], row[5], place,
            row[head + 3] == "true", row[head + 5], None, page.media.get(obs_id, _NONE),
            page.enrichments.get(obs_id, _NO_RESULTS), page.flags.get(obs_id, _NONE))

    def plugin_values(self, record: ExportRecord) -> list[Any]:
        """Plugins' columns, computed on the record as this export shows it; ``readable``, since a
        plugin's value may hold what UTF-8 cannot carry."""
        if not self.columns:
            return []
        view = view_of(record, self.project, self.engine, self.options.public)
        return [readable(column.value(view)) for column in self.columns]

    def licence_facts(self, licence: str) -> tuple[str | None, bool]:
        """The licence's URI (None for all rights reserved) and whether GBIF accepts it."""
        found = self._licences.get(licence)
        return found if found is not None else (licence_uri(licence) or None, gbif_eligible(licence))


ENGINE_MEDIA_COUNT = ("core.builtin.columns", "media_count")
"""The engine's own ``media_count`` column (``core.builtin.columns``): ``len(view.media)``."""


class FloatTexts(dict[float, str]):
    """A float -> ``repr(value)``, as the csv module writes it, kept for the values that repeat
    (places on a grid, cells' sizes; up to ``FLOATS_KEPT`` of them). Zero is never kept (0.0 and
    -0.0 are one key, two texts), nor NaN (no key finds it)."""

    def __missing__(self, value: float) -> str:
        text = repr(value)
        if value and value == value:
            if len(self) >= FLOATS_KEPT:
                self.clear()
            self[value] = text
        return text


FLOATS_KEPT = 100_000


class _LicenceCells(dict[Any, tuple[str, str | None, str]]):
    """A stored licence (None: the project's) -> its cells ``licence``, ``licence_uri``, ``gbif_eligible``."""

    def __init__(self, plan: Plan, default: str) -> None:
        super().__init__()
        self.plan, self.default = plan, default

    def __missing__(self, stored: Any) -> tuple[str, str | None, str]:
        licence = stored or self.default
        uri, eligible = self.plan.licence_facts(licence)
        self[stored] = found = (licence, uri, "true" if eligible else "false")
        return found


def header(engine: Engine, project: ProjectContext, options: ExportOptions) -> list[str]:
    """The CSV header of an export of ``project``."""
    return Plan(engine, project, options).header


FLUSH_CHARS = 64 * 1024


def csv_chunks(plan: Plan, *, excel: bool = False, counter: RowCount | None = None) -> Iterator[str]:
    """The CSV as chunks of text, about a batch each. ``excel``: a UTF-8 byte order mark and ``;``
    between cells (what a spreadsheet opened by double-click expects in most locales), formulas
    neutralised."""
    cell = _excel_cell if excel else _cell
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if excel else ",")
    if excel:
        buffer.write("\ufeff")
    writer.writerow(plan.header)
    children = ("media", "flags") + (("enrichments",) if plan.views else ())
    for page in pages(plan.engine, plan.project, plan.options, plan.csv_select(), children=children):
        writer.writerows(plan.csv_rows(page, cell))
        if counter is not None:
            counter.rows += len(page.rows)
        if buffer.tell() > FLUSH_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def geojson_chunks(plan: Plan, *, counter: RowCount | None = None) -> Iterator[str]:
    """A GeoJSON FeatureCollection as chunks of text; a withheld place has ``geometry: null``."""
    names = plan.header
    skip = {"lat", "lon", OTHER_FIELDS} | {FIELD_PREFIX + n for n in plan.field_names}
    keep = [i for i, name in enumerate(names) if name not in skip]
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    yield '{"type": "FeatureCollection", "features": ['
    first = True
    for record in records(plan.engine, plan.project, plan.options, counter=counter):
        values = plan.values(record)
        properties = {names[i]: values[i] for i in keep}
        properties["fields"] = record.fields
        place = record.place
        geometry = None if place is None else {"type": "Point", "coordinates": [place.lon, place.lat]}
        yield ("" if first else ",") + dumps({"type": "Feature", "geometry": geometry, "properties": properties})
        first = False
    yield "]}"


# -- the audit of staff exports -----------------------------------------------------------------


def filters_asked(options: ExportOptions) -> dict[str, Any]:
    """The filters as asked, for the audit entry; a contributor filter as ``contributor_id`` (an
    integer), the key under which erasing that person nulls it (``core.gdpr``)."""
    asked: dict[str, Any] = dict(options.filter_params)
    if "contributor" in asked and options.filters is not None and options.filters.contributor is not None:
        del asked["contributor"]
        asked["contributor_id"] = options.filters.contributor
    return asked


def audited(engine: Engine, project: ProjectContext, fmt: str, options: ExportOptions, chunks: Iterator[Any],
            counter: RowCount) -> Iterator[Any]:
    """``chunks``, audited: the entry is written before the first chunk leaves (an export that
    cannot be audited sends nothing), and completed when the stream ends or is dropped with the
    number of rows sent and ``complete`` (false: the reader stopped early, or it failed)."""
    after = {"format": fmt, "scope": options.scope, "filters": filters_asked(options),
             "gbif_only": options.gbif_only, "rows": None, "complete": False}
    with transaction(engine.sessions) as session:
        entry = AuditEntry(project=project.slug, observation_id=None, actor=options.actor, action="export",
                           before=None, after=after)
        session.add(entry)
        session.flush()
        entry_id = entry.id
    complete = False
    try:
        yield from chunks
        complete = True
    finally:
        try:
            with transaction(engine.sessions) as session:
                entry = session.get(AuditEntry, entry_id)
                if entry is not None:
                    entry.after = {**after, "rows": counter.rows, "complete": complete}
        except Exception:  # noqa: BLE001 (the rows are sent; the entry says complete: false)
            log.exception("export of %s by %s: the audit entry %s could not be completed", project.slug,
                          options.actor, entry_id)


def export(engine: Engine, project: ProjectContext, fmt: str, *, public: bool = True,
           options: ExportOptions | None = None, excel: bool = False) -> Iterator[str]:
    """The export as chunks of text. ``options`` (scope, filters, actor) wins over ``public``.

    Raises EngineError at once (before any row) for an unknown format or clashing plugin columns;
    a staff export (``scope="all"``) is audited (see :func:`audited`)."""
    if fmt not in FORMATS:
        raise EngineError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}", code="unknown_format")
    options = options or ExportOptions(scope="public" if public else "all")
    if options.scope not in SCOPES:
        raise EngineError(f"unknown export scope {options.scope!r}; one of {', '.join(SCOPES)}", code="unknown_scope")
    plan = Plan.of(engine, project, options)
    counter = RowCount()
    chunks = csv_chunks(plan, excel=excel, counter=counter) if fmt == "csv" else geojson_chunks(plan, counter=counter)
    if options.public:
        return chunks
    return audited(engine, project, fmt, options, chunks, counter)
