"""Export a project's observations as CSV or GeoJSON, with plugins' extra columns.

Public exports hold published observations only, as the API shows them to anonymous callers
(``core.views.public_view``): no contributor identity, no media file names, places on the
project's public grid (``core.privacy``). Plugins' columns are computed on that same public view,
so no column can say more about a place or a person than the base columns do.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.db.models import Observation
from core.db.session import transaction
from core.engine import Engine
from core.errors import EngineError
from core.readable import readable
from core.privacy import public_location
from core.types import ExportColumn, ObservationView, ProjectContext
from core.views import observation_dict, observation_view, public_view

BASE_COLUMNS = ("id", "kind", "observed_at", "lat", "lon", "accuracy_m", "status", "grade", "contributor_id",
                "fields", "flags")
FORMATS = ("csv", "geojson")


def export_columns(engine: Engine, project: ProjectContext) -> list[ExportColumn]:
    """Every enabled plugin's extra columns; a name used twice is an error naming both plugins."""
    columns: dict[str, ExportColumn] = {}
    for plugin, call in engine.host.enabled_impls("export_columns", project):
        for column in call(project=project) or []:
            if column.name in BASE_COLUMNS or column.name in columns:
                owner = columns[column.name].plugin if column.name in columns else "the engine"
                raise EngineError(f"plugin {plugin!r}: export column {column.name!r} is already defined by {owner}",
                                  code="duplicate_column")
            columns[column.name] = ExportColumn(column.name, column.value, column.description, plugin)
    return list(columns.values())


# rows held at once: at most what a page of the list holds (200 x max_fields_bytes of fields)
EXPORT_BATCH = 200


def _rows(engine: Engine, project: ProjectContext, public: bool, batch: int = EXPORT_BATCH) -> Iterator[dict[str, Any]]:
    columns = export_columns(engine, project)
    query = select(Observation).where(Observation.project == project.slug)
    if public:
        query = query.where(Observation.status == "published")
    last = 0
    while True:
        with transaction(engine.readers) as session:
            chunk = list(session.scalars(
                query.where(Observation.id > last).order_by(Observation.id).limit(batch)
                .options(selectinload(Observation.media), selectinload(Observation.enrichments),
                         selectinload(Observation.flags))))
            for obs in chunk:
                data = observation_dict(obs)
                if public:
                    data = public_view(data, project)
                view = observation_view(obs, engine.media)
                if public:
                    view = _public_observation_view(view, project)
                row = {
                    "id": data["id"], "kind": data["kind"], "observed_at": data["observed_at"],
                    "lat": data["location"]["lat"], "lon": data["location"]["lon"],
                    "accuracy_m": data["location"]["accuracy_m"], "status": data["status"], "grade": data["grade"],
                    "contributor_id": data["contributor_id"], "fields": data["fields"],
                    "flags": [f["code"] for f in data["flags"]],
                }
                for column in columns:
                    row[column.name] = column.value(view)
                yield row
        if len(chunk) < batch:
            return
        last = chunk[-1].id


def _public_observation_view(view: ObservationView, project: ProjectContext) -> ObservationView:
    """What plugins' columns of a public export are computed on: the public's view of ``view``."""
    return dataclasses.replace(
        view, location=public_location(view.location, project), contributor_id=None,
        media=tuple(dataclasses.replace(m, filename=None) for m in view.media))


def _cell(value: Any) -> Any:
    value = readable(value)  # a plugin's column, or an older row, may hold what UTF-8 cannot carry
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def export(engine: Engine, project: ProjectContext, fmt: str, *, public: bool = True) -> Iterator[str]:
    """The export as chunks of text."""
    if fmt not in FORMATS:
        raise EngineError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}", code="unknown_format")
    rows = _rows(engine, project, public)
    if fmt == "csv":
        names = list(BASE_COLUMNS) + [c.name for c in export_columns(engine, project)]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
        return
    yield '{"type": "FeatureCollection", "features": ['
    for i, row in enumerate(rows):
        lon, lat = row.pop("lon"), row.pop("lat")
        feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": row}
        yield ("," if i else "") + json.dumps(readable(feature), ensure_ascii=False, default=str)
    yield "]}"
