"""An OdourCollect-compatible list of reports (``/api/odor/list``), so existing clients work.

What the two sides do (read from their public source):

* OdourCollect's server (``OdorController::index``, odourcollect.eu) filters on ``type``
  (category), ``subtype``, ``minIntensity``/``maxIntensity`` (0..6), ``minAnnoy``/``maxAnnoy``
  (-4..4), ``date_init``/``date_end``, and answers
  ``{"status_code": 200, "data": {"date_init": ..., "message": ..., "content": [...]}}`` with
  rows ``id, id_odor_type, id_user, color, id_odor_intensity, id_odor_duration, id_odor_annoy,
  published_at, latitude, longitude``; ``id_odor_intensity`` is intensity + 1, ``id_odor_annoy``
  is hedonic tone + 5, ``color`` the 1..7 number of ``OdorColor::getOdorColor``.
* The PyPI client ``pyodcollect`` 1.1.0 (and its predecessor PyOdourCollect) POSTs those
  filters as a JSON body (unset ones as ``null``, dates as ``yyyy-mm-dd``, 0 meaning "all" for
  ``type`` and ``subtype``), requires HTTP 200, and reads the **top-level** ``content`` key
  (``json.loads(r.text)["content"]``); it maps ``id_odor_type`` with its 1..89 table,
  ``id_odor_duration`` with {0: "(No odour)", 1..3}, ``id_odor_annoy`` 1..9 and
  ``id_odor_intensity`` 1..7, prefixes ``id_user`` with "u", parses ``published_at`` with
  pandas and drops ``color`` and ``id``.

So the response carries the list twice: top-level ``content`` for pyodcollect, and
``data.content`` with ``status_code`` as OdourCollect answered. Differences from OdourCollect,
on purpose: ``date_end`` includes the whole end day (OdourCollect compared the timestamp with
the bare date, which left the end day out); invalid filters are refused with a message per
filter instead of being passed to the database; ``id_user`` is a keyed hash of the contributor,
never the account id. The caller passes only the reports the public may see.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.privacy import snap
from plugins.odour.catalogue import (
    CATEGORIES,
    HEDONIC_MAX,
    HEDONIC_MIN,
    INTENSITY_MAX,
    INTENSITY_MIN,
    NO_DURATION,
    SUBTYPES,
    odourcollect_colour,
)
from plugins.odour.reports import Report, as_utc, to_report

PUBLISHED_FORMAT = "%Y-%m-%d %H:%M:%S"


def _range_pattern(low: int, high: int) -> str:
    """A regular expression for the whole numbers low..high as text (an optional sign, leading
    zeros), or the empty string (unset): exactly what :func:`parse_filters` takes as text."""
    def alternatives(values: list[int]) -> str:
        return "|".join(str(v) for v in sorted(values, reverse=True))

    positive = [v for v in range(max(low, 0), high + 1)]
    negative = [-v for v in range(min(high, 0), low - 1, -1)] if low <= 0 else []
    parts = [rf"\+?0*(?:{alternatives(positive)})"] if positive else []
    if negative:
        parts.append(rf"-0*(?:{alternatives(negative)})")
    return f"^(?:|{'|'.join(parts)})$"


DATE_PATTERN = r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}$"
"""yyyy-mm-dd from the year 1 (the JSON Schema adds ``format: date`` for the real days)."""
FILTER_RANGES: dict[str, tuple[int, int]] = {
    "type": (0, max(CATEGORIES)),
    "subtype": (0, max(SUBTYPES)),
    "minAnnoy": (HEDONIC_MIN, HEDONIC_MAX),
    "maxAnnoy": (HEDONIC_MIN, HEDONIC_MAX),
    "minIntensity": (INTENSITY_MIN, INTENSITY_MAX),
    "maxIntensity": (INTENSITY_MIN, INTENSITY_MAX),
}
FILTER_PATTERNS: dict[str, str] = {name: _range_pattern(*bounds) for name, bounds in FILTER_RANGES.items()}
_PATTERNS = {name: re.compile(pattern, re.ASCII) for name, pattern in FILTER_PATTERNS.items()}
_DATE = re.compile(DATE_PATTERN, re.ASCII)


def query_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of filter ``name`` as a query parameter (text): what the parser takes
    (as ``anyOf``, which replaces the one FastAPI writes for an optional parameter)."""
    if name in ("date_init", "date_end"):
        return {"anyOf": [{"type": "string", "pattern": DATE_PATTERN, "format": "date"},
                          {"type": "string", "maxLength": 0}]}
    return {"anyOf": [{"type": "string", "pattern": FILTER_PATTERNS[name]}]}


def body_schema() -> dict[str, Any]:
    """The JSON Schema of a POSTed body of filters: each a number in range, its text, or null."""
    properties: dict[str, Any] = {}
    for name, (low, high) in FILTER_RANGES.items():
        properties[name] = {"anyOf": [{"type": "integer", "minimum": low, "maximum": high},
                                      *query_schema(name)["anyOf"], {"type": "null"}]}
    for name in ("date_init", "date_end"):
        properties[name] = {"anyOf": [*query_schema(name)["anyOf"], {"type": "null"}]}
    properties["project"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    return {"type": "object", "properties": properties}


class FilterError(ValueError):
    """Invalid list filters; ``errors`` maps each offending filter to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(m for messages in errors.values() for m in messages))


@dataclass(frozen=True)
class OdourCollectFilters:
    """Parsed filters; None means "no restriction"."""

    category: int | None = None
    subtype: int | None = None
    min_annoy: int = HEDONIC_MIN
    max_annoy: int = HEDONIC_MAX
    min_intensity: int = INTENSITY_MIN
    max_intensity: int = INTENSITY_MAX
    date_init: date | None = None
    date_end: date | None = None
    contradictions: tuple[tuple[str, str], ...] = ()
    """Filters each valid alone that no report can pass together (min above max, a subtype of
    another type, date_init after date_end): (filter, why). The list is then empty, with 200,
    as OdourCollect's database answered them; the OpenAPI document cannot express these."""


def _whole(name: str, raw: Any, low: int, high: int, meaning: str, errors: dict[str, list[str]]) -> int | None:
    if raw is None or raw == "":
        return None
    value: int | None = None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _PATTERNS[name].fullmatch(raw):
        value = int(raw)
    if value is None:
        errors.setdefault(name, []).append(
            f"{name} must be a whole number from {low} to {high} ({meaning}), got {raw!r}"
        )
        return None
    if not low <= value <= high:
        errors.setdefault(name, []).append(f"{name} {value} is out of range: allowed {low} to {high} ({meaning})")
        return None
    return value


def _day(name: str, raw: Any, errors: dict[str, list[str]]) -> date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and _DATE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors.setdefault(name, []).append(f"{name} {raw!r} is not a real date (yyyy-mm-dd)")
            return None
    errors.setdefault(name, []).append(f"{name} must be a date as yyyy-mm-dd, got {raw!r}")
    return None


def parse_filters(params: Mapping[str, Any]) -> OdourCollectFilters:
    """Read OdourCollect's list filters from query parameters or a JSON body.

    ``type`` 1..9 (category), ``subtype`` 1..89 (0 or absent: all, as OdourCollect and
    pyodcollect treat them), ``minAnnoy``/``maxAnnoy`` -4..4, ``minIntensity``/``maxIntensity``
    0..6, ``date_init``/``date_end`` as yyyy-mm-dd. Whole numbers may come as numbers or digit
    strings; ``null`` or "" means unset; unknown keys are ignored. Raises :class:`FilterError`
    with every problem of a filter alone (what the OpenAPI document says: :data:`FILTER_PATTERNS`);
    filters that contradict each other are kept in ``contradictions`` (an empty list).
    """
    errors: dict[str, list[str]] = {}
    category = _whole("type", params.get("type"), 0, max(CATEGORIES), "odour category, 0 for all", errors)
    subtype = _whole("subtype", params.get("subtype"), 0, max(SUBTYPES), "odour subtype, 0 for all", errors)
    min_annoy = _whole("minAnnoy", params.get("minAnnoy"), HEDONIC_MIN, HEDONIC_MAX, "hedonic tone", errors)
    max_annoy = _whole("maxAnnoy", params.get("maxAnnoy"), HEDONIC_MIN, HEDONIC_MAX, "hedonic tone", errors)
    min_int = _whole("minIntensity", params.get("minIntensity"), INTENSITY_MIN, INTENSITY_MAX, "intensity", errors)
    max_int = _whole("maxIntensity", params.get("maxIntensity"), INTENSITY_MIN, INTENSITY_MAX, "intensity", errors)
    date_init = _day("date_init", params.get("date_init"), errors)
    date_end = _day("date_end", params.get("date_end"), errors)

    if errors:
        raise FilterError(errors)
    filters = OdourCollectFilters(
        category=category or None,
        subtype=subtype or None,
        min_annoy=HEDONIC_MIN if min_annoy is None else min_annoy,
        max_annoy=HEDONIC_MAX if max_annoy is None else max_annoy,
        min_intensity=INTENSITY_MIN if min_int is None else min_int,
        max_intensity=INTENSITY_MAX if max_int is None else max_int,
        date_init=date_init,
        date_end=date_end,
    )
    contradictions: list[tuple[str, str]] = []
    if filters.min_annoy > filters.max_annoy:
        contradictions.append(("minAnnoy", f"minAnnoy {filters.min_annoy} is greater than maxAnnoy {filters.max_annoy}"))
    if filters.min_intensity > filters.max_intensity:
        contradictions.append(("minIntensity", f"minIntensity {filters.min_intensity} is greater than maxIntensity "
                                               f"{filters.max_intensity}"))
    if date_init and date_end and date_init > date_end:
        contradictions.append(("date_init", f"date_init {date_init.isoformat()} is later than date_end "
                                            f"{date_end.isoformat()}"))
    if filters.category and filters.subtype and SUBTYPES[filters.subtype].category_id != filters.category:
        owner = SUBTYPES[filters.subtype].category_id
        contradictions.append(("subtype", f"subtype {filters.subtype} ({SUBTYPES[filters.subtype].name}) belongs to "
                                          f"type {owner} ({CATEGORIES[owner].name}), not type {filters.category} "
                                          f"({CATEGORIES[filters.category].name})"))
    if contradictions:
        return dataclasses.replace(filters, contradictions=tuple(contradictions))
    return filters


def contradiction_answer(contradictions: Iterable[tuple[str, str]], params: Mapping[str, Any]) -> dict[str, Any]:
    """An empty list (200) for filters no report can pass, saying why in ``data.message`` and
    ``data.warnings`` (by filter)."""
    warnings: dict[str, list[str]] = {}
    for name, message in contradictions:
        warnings.setdefault(name, []).append(message)
    answer = wrap_content([], params)
    answer["data"]["message"] = "No report can pass these filters: " + "; ".join(
        m for messages in warnings.values() for m in messages) + "."
    answer["data"]["warnings"] = warnings
    return answer


def _published(report: Report, tz: ZoneInfo) -> datetime:
    return as_utc(report.published_at or report.observed_at).astimezone(tz)


def matches(report: Report, filters: OdourCollectFilters, *, timezone: str = "UTC") -> bool:
    """Whether a report passes the filters (dates compared in the project's time zone)."""
    if filters.contradictions:
        return False
    if filters.category is not None and report.category != filters.category:
        return False
    if filters.subtype is not None and report.subtype != filters.subtype:
        return False
    if not filters.min_annoy <= report.hedonic_tone <= filters.max_annoy:
        return False
    if not filters.min_intensity <= report.intensity <= filters.max_intensity:
        return False
    if filters.date_init or filters.date_end:
        day = _published(report, ZoneInfo(timezone)).date()
        if filters.date_init and day < filters.date_init:
            return False
        if filters.date_end and day > filters.date_end:
            return False
    return True


def pseudonymous_user_id(contributor: Hashable, key: bytes | str) -> int:
    """A stable number for a contributor that does not reveal who it is: HMAC-SHA256 of the
    contributor id under a secret ``key``, cut to 53 bits (safe as a JSON number in
    JavaScript) and never 0. 0 is kept for reports without a contributor."""
    if contributor is None:
        return 0
    secret = key.encode() if isinstance(key, str) else bytes(key)
    if not secret:
        raise ValueError("a secret key is needed to pseudonymise contributors")
    digest = hmac.new(secret, str(contributor).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % (2**53 - 1) + 1


def render_report(
    report: Any,
    *,
    key: bytes | str,
    timezone: str = "UTC",
    precision: int | None = None,
) -> dict[str, Any]:
    """One report as an OdourCollect list row. ``precision``: decimal places kept of the
    coordinates (the project's ``location_precision``), None for all."""
    r = to_report(report)
    lat, lon = snap(r.lat, precision), snap(r.lon, precision)  # the one rule (core.privacy)
    return {
        "id": r.id,
        "id_odor_type": r.subtype,
        "id_user": pseudonymous_user_id(r.contributor, key),
        "color": odourcollect_colour(r.hedonic_tone, r.intensity),
        "id_odor_intensity": r.intensity + 1,
        "id_odor_duration": NO_DURATION if r.duration is None else r.duration,
        "id_odor_annoy": r.hedonic_tone + 5,
        "published_at": _published(r, ZoneInfo(timezone)).strftime(PUBLISHED_FORMAT),
        "latitude": lat,
        "longitude": lon,
    }


def list_response(
    reports: Iterable[Any],
    params: Mapping[str, Any],
    *,
    key: bytes | str,
    timezone: str = "UTC",
    precision: int | None = None,
) -> dict[str, Any]:
    """The whole ``/api/odor/list`` answer for ``params``; raises :class:`FilterError` (turn it
    into a 400 with :func:`error_response`)."""
    filters = parse_filters(params)
    if filters.contradictions:
        return contradiction_answer(filters.contradictions, params)
    content = [
        render_report(r, key=key, timezone=timezone, precision=precision)
        for r in (to_report(x) for x in reports)
        if matches(r, filters, timezone=timezone)
    ]
    return wrap_content(content, params)


def error_response(error: FilterError) -> dict[str, Any]:
    """A 400 answer in OdourCollect's shape: ``data.errors`` maps each filter to its messages;
    ``content`` is empty, so a client reading it finds no rows rather than a KeyError."""
    return {
        "status_code": 400,
        "content": [],
        "data": {"message": "There are some errors in the filters.", "errors": error.errors, "content": []},
    }


def wrap_content(content: list[dict[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """The list as both clients read it: top-level ``content`` (pyodcollect) and
    ``data.content`` with ``status_code`` (OdourCollect's own server)."""
    date_init = params.get("date_init")
    return {
        "status_code": 200,
        "content": content,
        "data": {
            "date_init": None if date_init in (None, "") else str(date_init),
            "message": "Successful request.",
            "content": content,
        },
    }
