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

Rows are read ``EXPORT_BATCH`` at a time with plain selects (one transaction per batch, by id),
so memory does not grow with the number of rows. Plugins' columns (``export_columns``) are
computed on the observation as the export shows it, so no column can say more about a place or
a person than the base columns do.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Mapping

from sqlalchemy import ColumnElement, and_, bindparam, func, select

from core.db.models import AuditEntry, Enrichment, MediaBlob, Observation, ObservationMedia, QualityFlag
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError
from core.filters import ObservationFilter, filter_conditions
from core.licences import GBIF_LICENCES, gbif_eligible, licence_uri
from core.privacy import public_digits, public_location
from core.projects import project_kinds
from core.readable import readable
from core.types import ExportColumn, Location, MediaFile, ObservationView, ProjectContext

log = logging.getLogger(__name__)

FORMATS = ("csv", "geojson")
SCOPES = ("public", "all")
EXPORT_BATCH = 200
"""Rows held at once: at most what a page of the list holds (200 x max_fields_bytes of fields)."""

BASE_COLUMNS = ("id", "kind", "observed_at", "lat", "lon", "accuracy_m", "status", "grade")
STAFF_COLUMNS = ("contributor_id", "source_contributor")
"""Only in ``scope=all``: who made the observation (an account id, or an import's pseudonym)."""
OTHER_FIELDS = "fields_other"
TAIL_COLUMNS = ("licence", "licence_uri", "gbif_eligible", "location_privacy", "location_generalised",
                "coordinate_uncertainty_m")
FIELD_PREFIX = "field."
RESERVED = frozenset(BASE_COLUMNS + STAFF_COLUMNS + TAIL_COLUMNS + (OTHER_FIELDS, "fields", "flags"))

_obs = Observation.__table__
_media = ObservationMedia.__table__
_blobs = MediaBlob.__table__
_enrichments = Enrichment.__table__
_flags = QualityFlag.__table__
_COLUMNS = (_obs.c.id, _obs.c.kind, _obs.c.observed_at, _obs.c.lat, _obs.c.lon, _obs.c.accuracy_m, _obs.c.status,
            _obs.c.grade, _obs.c.contributor_id, _obs.c.source_contributor, _obs.c.fields, _obs.c.licence,
            _obs.c.location_privacy, _obs.c.created_at, _obs.c.updated_at)


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


@dataclass
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
    created_at: datetime
    updated_at: datetime
    media: list[MediaRow] = field(default_factory=list)
    enrichments: dict[str, dict[str, Any]] = field(default_factory=dict)
    flags: list[tuple[str, str]] = field(default_factory=list)
    """(plugin, code) of each quality flag."""


class RowCount:
    """How many rows an export has sent so far (for its audit entry)."""

    def __init__(self) -> None:
        self.rows = 0


def shown_place(exact: Location, project: ProjectContext, privacy: str, public: bool) -> tuple[Location | None, bool]:
    """The place an export shows, and whether it is generalised (snapped to a grid): exact for staff;
    for the public as ``core.privacy.public_location`` says (None: private, withheld)."""
    if not public:
        return exact, False
    place = public_location(exact, project, privacy)
    if place is None:
        return None, False
    # the rule, not the values: a place that happens to lie on the grid is still a generalised one
    return place, public_digits(project, privacy) is not None


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


def records(engine: Engine, project: ProjectContext, options: ExportOptions, *, counter: RowCount | None = None,
            batch: int = EXPORT_BATCH, public_places: bool | None = None) -> Iterator[ExportRecord]:
    """The observations of an export, in id order, read ``batch`` at a time (one short read
    transaction each: a long export never holds the database). Places are shown as the public
    sees them in a public export, or wherever ``public_places`` says so."""
    public_places = options.public if public_places is None else public_places
    query = (select(*_COLUMNS).where(and_(*record_conditions(engine, project, options)))
             .where(_obs.c.id > bindparam("last")).order_by(_obs.c.id).limit(batch))
    last = 0
    while True:
        with transaction(engine.readers) as session:
            rows = session.execute(query, {"last": last}).all()
            if not rows:
                return
            ids = [row.id for row in rows]
            media, enrichments, flags = _children(session, ids)
        for row in rows:
            place, generalised = shown_place(Location(row.lat, row.lon, row.accuracy_m), project,
                                             row.location_privacy or "open", public_places)
            yield ExportRecord(
                id=row.id, kind=row.kind, observed_at=row.observed_at, status=row.status, grade=row.grade,
                contributor_id=row.contributor_id, source_contributor=row.source_contributor,
                fields=readable(row.fields or {}), licence=row.licence or project.licence,
                location_privacy=row.location_privacy or "open", accuracy_m=row.accuracy_m, place=place, generalised=generalised,
                created_at=row.created_at, updated_at=row.updated_at,
                media=media.get(row.id, []), enrichments=enrichments.get(row.id, {}), flags=flags.get(row.id, []))
            if counter is not None:
                counter.rows += 1
        if len(rows) < batch:
            return
        last = ids[-1]


_MEDIA_OF = (select(_media.c.observation_id, _media.c.id, _media.c.sha256, _blobs.c.content_type, _blobs.c.size,
                    _blobs.c.width, _blobs.c.height)
             .join(_blobs, _blobs.c.sha256 == _media.c.sha256)
             .where(_media.c.observation_id.in_(bindparam("ids", expanding=True)))
             .order_by(_media.c.observation_id, _media.c.position, _media.c.id))
_ENRICHMENTS_OF = (select(_enrichments.c.observation_id, _enrichments.c.plugin, _enrichments.c.result)
                   .where(_enrichments.c.observation_id.in_(bindparam("ids", expanding=True)),
                          _enrichments.c.status == "done"))
_FLAGS_OF = (select(_flags.c.observation_id, _flags.c.plugin, _flags.c.code)
             .where(_flags.c.observation_id.in_(bindparam("ids", expanding=True))).order_by(_flags.c.id))


def _children(session: Any, ids: list[int]) -> tuple[dict[int, list[MediaRow]], dict[int, dict[str, Any]],
                                                     dict[int, list[tuple[str, str]]]]:
    media: defaultdict[int, list[MediaRow]] = defaultdict(list)
    for row in session.execute(_MEDIA_OF, {"ids": ids}):
        media[row.observation_id].append(MediaRow(row.id, row.sha256, row.content_type, row.size, row.width,
                                                  row.height))
    enrichments: defaultdict[int, dict[str, Any]] = defaultdict(dict)
    for row in session.execute(_ENRICHMENTS_OF, {"ids": ids}):
        enrichments[row.observation_id][row.plugin] = row.result or {}
    flags: defaultdict[int, list[tuple[str, str]]] = defaultdict(list)
    for row in session.execute(_FLAGS_OF, {"ids": ids}):
        flags[row.observation_id].append((row.plugin, row.code))
    return media, enrichments, flags


def view_of(record: ExportRecord, project: ProjectContext, engine: Engine, public: bool) -> ObservationView:
    """What plugins' columns are computed on: the observation as the export shows it (in a public
    export no contributor, no media file names, the place as shown, 0,0 where it is withheld)."""
    place = record.place or Location(0.0, 0.0, None)
    return ObservationView(
        id=record.id, project=project.slug, kind=record.kind, observed_at=record.observed_at, location=place,
        fields=record.fields,
        media=tuple(MediaFile(sha256=m.sha256, content_type=m.content_type, size=m.size,
                              path=engine.media.path_for(m.sha256), width=m.width, height=m.height, id=m.id)
                    for m in record.media),
        contributor_id=None if public else record.contributor_id, status=record.status,
        created_at=record.created_at, enrichments=record.enrichments, licence=record.licence,
        location_privacy=record.location_privacy)


# -- columns ------------------------------------------------------------------------------------


def export_columns(engine: Engine, project: ProjectContext) -> list[ExportColumn]:
    """Every enabled plugin's extra columns; a name used twice is an error naming both plugins."""
    columns: dict[str, ExportColumn] = {}
    for plugin, call in engine.host.enabled_impls("export_columns", project):
        for column in call(project=project) or []:
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


def _cell(value: Any) -> Any:
    value = readable(value)  # a plugin's column, or an older row, may hold what UTF-8 cannot carry
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _excel_cell(value: Any) -> Any:
    """A cell for a spreadsheet: text that a spreadsheet would run as a formula starts with ``'``
    (OWASP's advice against CSV injection); numbers are left as they are."""
    value = _cell(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _iso(value: datetime) -> str:
    return value.isoformat()


def _values(record: ExportRecord, project: ProjectContext, options: ExportOptions, field_names: list[str],
            known: frozenset[str], columns: list[ExportColumn], engine: Engine) -> list[Any]:
    fields = record.fields
    other = {k: v for k, v in fields.items() if k not in known}
    place = record.place
    view = view_of(record, project, engine, options.public)
    row: list[Any] = [record.id, record.kind, _iso(record.observed_at), place.lat if place else None,
                      place.lon if place else None, record.accuracy_m if place else None, record.status, record.grade]
    if not options.public:
        row += [record.contributor_id, record.source_contributor]
    row += [fields.get(name) for name in field_names]
    row += [other or None, [code for _, code in record.flags]]
    row += [column.value(view) for column in columns]
    row += [record.licence, licence_uri(record.licence) or None,
            gbif_eligible(record.licence), record.location_privacy, record.generalised if place else None,
            place.accuracy_m if place else None]
    return row


# -- formats ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What every row of one export needs, computed once before the first row."""

    engine: Engine
    project: ProjectContext
    options: ExportOptions
    field_names: list[str]
    columns: list[ExportColumn]

    @classmethod
    def of(cls, engine: Engine, project: ProjectContext, options: ExportOptions) -> "Plan":
        return cls(engine, project, options, schema_fields(engine, project), export_columns(engine, project))

    @property
    def header(self) -> list[str]:
        return [*BASE_COLUMNS, *(() if self.options.public else STAFF_COLUMNS),
                *(FIELD_PREFIX + name for name in self.field_names), OTHER_FIELDS, "flags",
                *(c.name for c in self.columns), *TAIL_COLUMNS]

    def values(self, record: ExportRecord) -> list[Any]:
        return _values(record, self.project, self.options, self.field_names, frozenset(self.field_names),
                       self.columns, self.engine)


def header(engine: Engine, project: ProjectContext, options: ExportOptions) -> list[str]:
    """The CSV header of an export of ``project``."""
    return Plan.of(engine, project, options).header


FLUSH_CHARS = 64 * 1024


def csv_chunks(plan: Plan, *, excel: bool = False, counter: RowCount | None = None) -> Iterator[str]:
    """The CSV as chunks of text. ``excel``: a UTF-8 byte order mark and ``;`` between cells (what a
    spreadsheet opened by double-click expects in most locales), formulas neutralised."""
    cell = _excel_cell if excel else _cell
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if excel else ",")
    if excel:
        buffer.write("\ufeff")
    writer.writerow(plan.header)
    known = frozenset(plan.field_names)
    for record in records(plan.engine, plan.project, plan.options, counter=counter):
        writer.writerow([cell(v) for v in _values(record, plan.project, plan.options, plan.field_names, known,
                                                  plan.columns, plan.engine)])
        if buffer.tell() > FLUSH_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def geojson_chunks(plan: Plan, *, counter: RowCount | None = None) -> Iterator[str]:
    """A GeoJSON FeatureCollection as chunks of text; a withheld place has ``geometry: null``."""
    names = plan.header
    skip = {"lat", "lon", OTHER_FIELDS} | {FIELD_PREFIX + n for n in plan.field_names}
    known = frozenset(plan.field_names)
    yield '{"type": "FeatureCollection", "features": ['
    first = True
    for record in records(plan.engine, plan.project, plan.options, counter=counter):
        values = _values(record, plan.project, plan.options, plan.field_names, known, plan.columns, plan.engine)
        properties = {name: value for name, value in zip(names, values) if name not in skip}
        properties["fields"] = record.fields
        place = record.place
        geometry = None if place is None else {"type": "Point", "coordinates": [place.lon, place.lat]}
        feature = {"type": "Feature", "geometry": geometry, "properties": properties}
        yield ("" if first else ",") + json.dumps(readable(feature), ensure_ascii=False, default=str)
        first = False
    yield "]}"


# -- the audit of staff exports -----------------------------------------------------------------


def audited(engine: Engine, project: ProjectContext, fmt: str, options: ExportOptions, chunks: Iterator[Any],
            counter: RowCount) -> Iterator[Any]:
    """``chunks``, audited: the entry is written before the first chunk leaves (an export that
    cannot be audited sends nothing), and completed when the stream ends or is dropped with the
    number of rows sent and ``complete`` (false: the reader stopped early, or it failed)."""
    after = {"format": fmt, "scope": options.scope, "filters": dict(options.filter_params),
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
