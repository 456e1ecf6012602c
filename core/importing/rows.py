"""One record of a source (a CSV row, a GeoJSON feature, a Darwin Core occurrence) turned into a
draft, as ``core.lifecycle`` takes it, through a ``Mapping``.

What cannot be read (an empty latitude, a date in no known format, a number that is not one)
is a problem of that row, with the path of the draft it was for and the column it came from; the
row is then refused without being submitted. Everything else is checked by the lifecycle, as
any other observation is.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from core.importing.mapping import Column, Mapping
from core.types import ObservationType, Problem

_TRUE = {"1", "true", "t", "yes", "y", "x", "si", "sí", "ja", "oui", "agreed", "consented"}
_FALSE = {"0", "false", "f", "no", "n", "nein", "non", "declined"}
_ISO_START = re.compile(r"^\d{4}-\d{2}")
_UTC_SUFFIX = re.compile(r"\s*(UTC|GMT)$")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class SourceRow:
    """A record of the source, read: the draft to submit and what the import needs beside it."""

    row: int
    """Its position in the source, as a person finds it: the spreadsheet row (the header is row 1),
    or the feature's or record's number from 1."""
    source_id: str | None
    draft: dict[str, Any]
    media: list[str] = field(default_factory=list)
    """File names (found in the media folder or the archive) or URLs (not fetched: reported)."""
    user_id: str | None = None
    user_name: str | None = None
    email: str | None = None
    consent: bool = False
    problems: list[Problem] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    """A draft path ("location.lat", "fields.count") -> the source column it was read from."""

    def column_of(self, path: tuple[str | int, ...]) -> str:
        for n in range(len(path), 0, -1):
            found = self.columns.get(".".join(map(str, path[:n])))
            if found:
                return found
        return ""


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read(column: Column | None, record: dict[str, Any]) -> tuple[Any, str]:
    """(value, the column it came from) of the first named column that is not empty, after
    ``values``; the constant ``value`` (column "") when all are empty; (None, "") without one.
    The value is None whenever it would be empty (``_empty``), so that callers test ``is None``."""
    if column is None:
        return None, ""
    for name in column.column:
        raw = record.get(name)
        if raw is None:
            continue
        if type(raw) is str:  # noqa: E721 (nearly every value: CSV cells)
            raw = raw.strip()
            if not raw:
                continue
        if column.values and isinstance(raw, (str, int, float)) and str(raw) in column.values:
            raw = column.values[str(raw)]
            return (None if _empty(raw) else raw), name
        return raw, name
    return (None if _empty(column.value) else column.value), ""


def to_number(value: Any) -> float:
    if type(value) is not str:  # noqa: E721 (nearly every value is one: CSV cells)
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return _finite(float(value))
        value = str(value)
    text = value.strip()
    if "," in text and "." not in text:  # a decimal comma, as European spreadsheets write it
        text = text.replace(",", ".")
    return _finite(float(text))


def _finite(number: float) -> float:
    if not math.isfinite(number):
        raise ValueError
    return number


def to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    number = to_number(value)
    if not number.is_integer():
        raise ValueError
    return int(number)


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError


_UNSET = object()
_CONVERT = {"integer": to_integer, "number": to_number, "boolean": to_boolean, "string": str}
_TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "yes or no", "string": "text"}


def _schema_type(otype: ObservationType | None, name: str) -> str | None:
    if otype is None:
        return None
    spec = (otype.schema.get("properties") or {}).get(name)
    kind = spec.get("type") if isinstance(spec, dict) else None
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    for candidate in ("integer", "number", "boolean", "string"):
        if candidate in kinds:
            return candidate
    return None


def parse_time(text: Any, formats: list[str], zone: str | None) -> datetime | date:
    """A date and time (or a date alone) from ``text``: by ``formats`` first, then ISO 8601 (a
    Darwin Core interval gives its start; " UTC" as iNaturalist writes it is understood)."""
    if isinstance(text, datetime):
        return text
    text = str(text).strip()
    for fmt in formats:
        try:
            found = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return found.date() if not any(d in fmt for d in ("%H", "%I", "%M", "%S", "%z", "%X", "%c")) else found
    if len(text) == 10:
        return date.fromisoformat(text)  # a date alone (ValueError if it is not one)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    if _ISO_START.match(text) and "/" in text:
        text = text.split("/", 1)[0]
    iso = _UTC_SUFFIX.sub("+00:00", text)
    if _DATE_ONLY.fullmatch(iso):
        return date.fromisoformat(iso)
    return datetime.fromisoformat(iso)


def _in_zone(moment: datetime, zone: str | None) -> datetime:
    return moment.replace(tzinfo=ZoneInfo(zone)) if moment.tzinfo is None and zone else moment


def source_id_of(record: dict[str, Any]) -> str:
    """An id for a record that has none: a hash of its values, so that a second run finds it again."""
    body = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return "sha1-" + hashlib.sha1(body.encode("utf-8")).hexdigest()[:20]


class Converter:
    """Turns records into ``SourceRow`` through a mapping, for one project's kinds."""

    def __init__(self, mapping: Mapping, prefix: str, kinds: dict[str, ObservationType], default_kind: str = "generic"):
        self.mapping = mapping
        self.prefix = mapping.source or prefix
        self.kinds = kinds
        self.default_kind = default_kind
        self.named = mapping.named_columns()
        m = mapping
        # the entries the mapping sets, found once: a row reads only those
        self._place = [(key, entry, path) for key, entry, path in (
            ("lat", m.lat, "location.lat"), ("lon", m.lon, "location.lon"),
            ("accuracy_m", m.accuracy, "location.accuracy_m"))]
        self._chosen = [(key, entry) for key, entry in (("licence", m.licence), ("location_privacy", m.location_privacy))
                        if entry is not None]
        self._fields = [(name, entry, f"fields.{name}") for name, entry in m.fields.items()]
        self._people = any(entry is not None for entry in (m.user_id, m.user_name, m.email, m.consent))
        self._types: dict[tuple[str, str], str | None] = {}

    def convert(self, record: dict[str, Any], row: int, *, point: tuple[float, float] | None = None,
                source_id: Any = None, media: list[str] | None = None, skip: set[str] | None = None) -> SourceRow:
        """``point``: (lon, lat) from a geometry; ``source_id``: the source's id when it is not a
        column; ``media``: names found outside the columns (an archive's media rows); ``skip``:
        keys of ``record`` that are never ``other_fields``."""
        m = self.mapping
        out = SourceRow(row=row, source_id=None, draft={})
        problems, columns, draft = out.problems, out.columns, out.draft

        def problem(path: tuple[str | int, ...], message: str, code: str) -> None:
            problems.append(Problem(path, message, code))

        # the source id -> the client id
        if _empty(source_id):
            source_id, columns["client_id"] = read(m.id, record)
            if source_id is None:
                source_id = source_id_of(record)
        out.source_id = str(source_id).strip()
        draft["client_id"] = f"{self.prefix}:{out.source_id}"

        # kind first: its schema says how to read the fields
        kind = None
        if m.kind is not None:
            kind, columns["kind"] = read(m.kind, record)
        kind = str(kind) if kind is not None else self.default_kind
        draft["kind"] = kind

        when = self._when(record, columns, problem)
        if when is not None:
            draft["observed_at"] = when  # a datetime: the lifecycle reads it as it reads ISO 8601 text

        location: dict[str, Any] = {}
        for key, entry, path in self._place:
            if point is not None and key != "accuracy_m":
                location[key] = point[1] if key == "lat" else point[0]
                continue
            raw, columns[path] = read(entry, record)
            if raw is None:
                if key != "accuracy_m":
                    columns[path] = " or ".join(entry.column) if entry else ""
                    problem(("location", key), f"no {'latitude' if key == 'lat' else 'longitude'}: "
                            f"{_nothing_in(entry)}", "location_missing")
                continue
            try:
                location[key] = to_number(raw)
            except (TypeError, ValueError):
                problem(("location", key), f"column {columns[path]!r}: {raw!r} is not a number", "not_a_number")
        draft["location"] = location

        for key, entry in self._chosen:
            raw, columns[key] = read(entry, record)
            if raw is not None:
                draft[key] = normalise_licence(str(raw)) if key == "licence" else str(raw).lower()

        fields: dict[str, Any] = {}
        for name, entry, path in self._fields:
            raw, columns[path] = read(entry, record)
            if raw is not None:
                self._field(fields, name, raw, entry.type, kind, columns[path] or "value", problem)
        if m.other_fields:
            for key, raw in record.items():
                if key in self.named or (skip and key in skip) or _empty(raw) or key in fields:
                    continue
                columns[f"fields.{key}"] = key
                self._field(fields, key, raw.strip() if isinstance(raw, str) else raw, None, kind, key, problem)
        draft["fields"] = fields

        for entry in m.media:
            raw, column = read(entry, record)
            if raw is not None:
                columns.setdefault("media", column)
                out.media += [name.strip() for name in str(raw).split(m.media_separator) if name.strip()]
        if media:
            out.media += media

        if self._people:
            self._person(out, record, problem)
        return out

    def _person(self, out: SourceRow, record: dict[str, Any], problem: Any) -> None:
        m = self.mapping
        user_id, _ = read(m.user_id, record)
        out.user_id = None if user_id is None else str(user_id).strip()
        if m.user_name is not None:
            name, _ = read(m.user_name, record)
            out.user_name = None if name is None else str(name).strip()
        if m.email is not None:
            email, _ = read(m.email, record)
            out.email = None if email is None else str(email).strip().lower()
        if m.consent is None:
            return
        consent, consent_column = read(m.consent, record)
        if consent is not None:
            try:
                out.consent = to_boolean(consent)
            except ValueError:
                problem(("consent",), f"column {consent_column!r}: {consent!r} is not yes or no", "not_a_boolean")

    def _type_of(self, kind: str, name: str) -> str | None:
        """The type the kind's schema gives field ``name`` (found once per kind and field)."""
        key = (kind, name)
        found = self._types.get(key, _UNSET)
        if found is _UNSET:
            if len(self._types) >= 10_000:  # other_fields of a source with ever new column names
                self._types.clear()
            found = self._types[key] = _schema_type(self.kinds.get(kind), name)
        return found

    def _field(self, fields: dict[str, Any], name: str, raw: Any, declared: str | None, kind: str,
               column: str, problem: Any) -> None:
        wanted = declared or self._type_of(kind, name)
        if wanted is None or (wanted == "string" and isinstance(raw, str)):
            fields[name] = raw
            return
        if wanted != "string" and not isinstance(raw, str) and not declared:
            fields[name] = raw  # typed already (GeoJSON); the kind's schema checks it
            return
        try:
            fields[name] = _CONVERT[wanted](raw)
        except (TypeError, ValueError):
            problem(("fields", name), f"column {column!r}: {raw!r} is not {_TYPE_WORDS[wanted]}", f"not_{wanted}")

    def _when(self, record: dict[str, Any], columns: dict[str, str], problem: Any) -> datetime | None:
        m = self.mapping
        zone = m.timezone
        if m.observed_at is not None or m.date is None:
            raw, columns["observed_at"] = read(m.observed_at, record)
            if raw is None:
                columns["observed_at"] = " or ".join(m.observed_at.column) if m.observed_at else ""
                problem(("observed_at",), f"no date: {_nothing_in(m.observed_at)}", "time_missing")
                return None
            try:
                found = parse_time(raw, m.observed_at.formats if m.observed_at else [], zone)
            except ValueError:
                problem(("observed_at",), f"column {columns['observed_at']!r}: {raw!r} is not a date and time this "
                        "import reads (ISO 8601, or the formats the mapping gives)", "unreadable_time")
                return None
            if isinstance(found, datetime):
                return _in_zone(found, zone)
            return _in_zone(datetime.combine(found, time()), zone)
        raw, columns["observed_at"] = read(m.date, record)
        if raw is None:
            columns["observed_at"] = " or ".join(m.date.column)
            problem(("observed_at",), f"no date: {_nothing_in(m.date)}", "time_missing")
            return None
        try:
            found = parse_time(raw, m.date.formats, zone)
        except ValueError:
            problem(("observed_at",), f"column {columns['observed_at']!r}: {raw!r} is not a date this import reads "
                    "(ISO 8601, or the formats the mapping gives)", "unreadable_time")
            return None
        if isinstance(found, datetime):
            return _in_zone(found, zone)
        clock, time_column = read(m.time, record)
        at = time()
        if clock is not None:
            try:
                at = _parse_clock(clock, m.time.formats if m.time else [])
            except ValueError:
                problem(("observed_at",), f"column {time_column!r}: {clock!r} is not a time this import reads "
                        "(HH:MM[:SS], or the formats the mapping gives)", "unreadable_time")
                return None
        return _in_zone(datetime.combine(found, at), zone)  # a time with an offset keeps it


def _nothing_in(entry: Column | None) -> str:
    if entry is None or not entry.column:
        return "no column is mapped"
    if len(entry.column) == 1:
        return f"the column {entry.column[0]!r} is empty"
    return f"the columns {', '.join(map(repr, entry.column))} are empty"


def _parse_clock(value: Any, formats: list[str]) -> time:
    text = str(value).strip()
    for fmt in formats:
        try:
            found = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return found.timetz()
    return time.fromisoformat(_UTC_SUFFIX.sub("+00:00", text))


# -- licences ----------------------------------------------------------------------------------

_CC_TEXT = re.compile(r"^cc[- ]?(0|zero|by(?:[- ](?:nc|sa|nd))*)(?:[- ]?v?(\d\.\d))?$")
_CC_URI = re.compile(r"creativecommons\.org/(?:licenses|publicdomain)/([a-z-]+)/(\d\.\d)")


def normalise_licence(text: str) -> str:
    """The engine's name of a licence written as a code ("CC-BY", "cc by-nc 4.0", "CC0") or a
    Creative Commons URI; other versions than 4.0 (1.0 for CC0) and unknown text are kept as
    they are, so that the project's check refuses them by name instead of relicensing them."""
    lowered = " ".join(text.strip().lower().replace("_", " ").split())
    if lowered in {"all rights reserved", "all-rights-reserved", "c", "(c)", "©", "copyright"}:
        return "all-rights-reserved"
    uri = _CC_URI.search(lowered)
    if uri:
        name, version = uri.group(1), uri.group(2)
    else:
        code = _CC_TEXT.match(lowered)
        if not code:
            return text.strip()
        name, version = code.group(1), code.group(2)
    if name in ("0", "zero"):
        return "CC0-1.0" if version in (None, "1.0") else text.strip()
    if version not in (None, "4.0"):
        return text.strip()
    parts = name.replace(" ", "-").split("-")
    return "CC-" + "-".join(p.upper() for p in parts) + "-4.0"
