"""The column-mapping file of an import: which column of the source holds what.

A mapping is YAML or JSON. Each entry names a column (or a list of columns: the first that is
not empty wins), optionally with a ``type``, date ``formats``, a translation of ``values`` and a
constant ``value`` used when every named column is empty::

    source: old-project              # prefix of the client ids: old-project:<id>
    timezone: Europe/Madrid          # times without an offset (the project's zone if left out)
    id: Record
    observed_at: {column: When, formats: ["%d/%m/%Y %H:%M"]}
    lat: Latitude
    lon: Longitude
    fields:
      species: Species
      count: {column: Count, type: integer}
    media: [Photo]

Built-in formats (GeoJSON, Darwin Core Archive, iNaturalist) have a built-in mapping; a mapping
file given with them changes only the entries it names (``fields`` entry by entry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import EngineError


class SourceError(EngineError):
    """The source or its mapping cannot be read at all (as opposed to one bad row)."""

    code = "import_source_invalid"
    http_status = 422


class Column(BaseModel):
    """Where one value comes from. Written as a column name, a list of names, or an object."""

    model_config = ConfigDict(extra="forbid")

    column: list[str] = Field(default_factory=list, description="column(s); the first that is not empty wins")
    value: Any = Field(None, description="a constant, used when every column is empty (or none is named)")
    type: Literal["string", "integer", "number", "boolean"] | None = Field(
        None, description="how to read the text (fields: the kind's schema says when left out)")
    formats: list[str] = Field(default_factory=list, description="strptime formats of a date or time; "
                               "ISO 8601 is always understood")
    values: dict[str, Any] = Field(default_factory=dict, description="source value -> value to store")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": [data]}
        if isinstance(data, list):
            return {"column": data}
        if isinstance(data, dict) and isinstance(data.get("column"), str):
            return {**data, "column": [data["column"]]}
        return data

    @model_validator(mode="after")
    def _something(self) -> "Column":
        if not self.column and self.value is None:
            raise ValueError("name a column or give a value")
        return self


class Mapping(BaseModel):
    """What each part of an observation is read from."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,40}$",
                               description="prefix of the client ids (<source>:<id>); the format's name if left out")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="CSV: found from the file if left out")
    encoding: str = "utf-8-sig"
    timezone: str | None = None
    id: Column | None = None
    observed_at: Column | None = None
    date: Column | None = None
    time: Column | None = None
    lat: Column | None = None
    lon: Column | None = None
    accuracy: Column | None = None
    kind: Column | None = None
    licence: Column | None = None
    location_privacy: Column | None = None
    user_id: Column | None = None
    user_name: Column | None = None
    email: Column | None = None
    consent: Column | None = None
    fields: dict[str, Column] = Field(default_factory=dict)
    other_fields: bool = Field(False, description="every column no entry names becomes a field of that name")
    media: list[Column] = Field(default_factory=list, description="columns with media file names or URLs")
    media_separator: str = Field(";", min_length=1, description="between several names in one cell")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Madrid)") from None
        return value

    @field_validator("media", mode="before")
    @classmethod
    def _media_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    def over(self, base: "Mapping") -> "Mapping":
        """``base`` with the entries this mapping sets (``fields`` merged name by name)."""
        update = {name: getattr(self, name) for name in self.model_fields_set}
        if "fields" in update:
            update["fields"] = {**base.fields, **self.fields}
        return base.model_copy(update=update)

    def named_columns(self) -> set[str]:
        """Every column some entry reads (the rest are ``other_fields``)."""
        entries: list[Column | None] = [self.id, self.observed_at, self.date, self.time, self.lat, self.lon,
                                        self.accuracy, self.kind, self.licence, self.location_privacy, self.user_id,
                                        self.user_name, self.email, self.consent, *self.fields.values(), *self.media]
        return {name for entry in entries if entry is not None for name in entry.column}


def load_mapping(path: Path) -> Mapping:
    """Read a mapping file (YAML or JSON); SourceError names the file and the entry that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SourceError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None
    return parse_mapping(data, str(path))


def parse_mapping(data: Any, where: str = "mapping") -> Mapping:
    if not isinstance(data, dict):
        raise SourceError(f"{where}: a mapping is an object of entries (id, observed_at, lat, lon, fields...)")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(mapping)'}: {e['msg']}" for e in exc.errors())
        raise SourceError(f"{where}: {problems}") from None
