"""GeoJSON sources: a FeatureCollection of Point features, properties mapped to the draft.

Without a mapping file, the feature's ``id`` is the source id, its point the place, and its
properties are read by name: ``observed_at`` (or ``datetime``, ``time``, ``date``,
``eventDate``), ``accuracy_m`` (or ``accuracy``), ``kind``, ``licence`` (or ``license``),
``location_privacy``, ``user_id``, ``user_name``, ``consent``, ``media``; every other property
becomes a field of the same name, with its JSON type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.importing.mapping import Column, Mapping, SourceError
from core.importing.rows import Converter, SourceRow
from core.types import Problem

GEOJSON_MAPPING = Mapping(
    source="geojson",
    id=Column(column=["id"]),
    observed_at=Column(column=["observed_at", "datetime", "time", "date", "eventDate"]),
    lat=Column(column=["lat", "latitude"]),
    lon=Column(column=["lon", "longitude"]),
    accuracy=Column(column=["accuracy_m", "accuracy"]),
    kind=Column(column=["kind"]),
    licence=Column(column=["licence", "license"]),
    location_privacy=Column(column=["location_privacy"]),
    user_id=Column(column=["user_id"]),
    user_name=Column(column=["user_name"]),
    consent=Column(column=["consent"]),
    media=[Column(column=["media"])],
    other_fields=True,
)


def looks_like_geojson(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            start = fh.read(4096).lstrip()
    except OSError:
        return False
    return start.startswith(b"{") and (b'"FeatureCollection"' in start or b'"features"' in start)


class GeoJsonSource:
    """Features in file order; ``row`` is the feature's number from 1."""

    def __init__(self, path: Path, mapping: Mapping, converter: Converter):
        self.format = "geojson"
        self.converter = converter
        try:
            data = json.loads(path.read_text(encoding=mapping.encoding))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceError(f"{path.name}: not a readable GeoJSON file ({exc})") from None
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(
                data.get("features"), list):
            raise SourceError(f"{path.name}: not a GeoJSON FeatureCollection (an object with \"type\": "
                              "\"FeatureCollection\" and a \"features\" array)")
        self.features: list[Any] = data["features"]
        self.total: int | None = len(self.features)

    def rows(self) -> Iterator[SourceRow]:
        for number, feature in enumerate(self.features, start=1):
            yield self._row(number, feature)

    def _row(self, number: int, feature: Any) -> SourceRow:
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            row = self.converter.convert({}, number, point=(0.0, 0.0), source_id=f"feature-{number}")
            row.problems[:] = [Problem((), "not a GeoJSON Feature", "not_a_feature")]
            return row
        properties = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        geometry = feature.get("geometry")
        point = None
        problem = None
        if isinstance(geometry, dict):
            coords = geometry.get("coordinates")
            if geometry.get("type") != "Point":
                problem = Problem(("location",), f"a {geometry.get('type')} geometry: only Points are imported",
                                   "not_a_point")
            elif (isinstance(coords, list) and len(coords) >= 2
                  and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords[:2])):
                point = (float(coords[0]), float(coords[1]))
            else:
                problem = Problem(("location",), "the Point has no [longitude, latitude] coordinates", "not_a_point")
        feature_id = feature.get("id")
        record = dict(properties)
        if feature_id is None:
            record["__geometry"] = geometry  # should the id come from the values, the place is one of them
        row = self.converter.convert(record, number, point=point, source_id=feature_id, skip={"__geometry"})
        if problem is not None:
            row.problems = [p for p in row.problems if p.path[:1] != ("location",)] + [problem]
        return row

    def member(self, name: str) -> bytes | None:
        return None

    def close(self) -> None:
        pass
