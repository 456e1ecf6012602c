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
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^[+-]?\d+$")


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
    elif isinstance(raw, str) and _INT.match(raw.strip()):
        try:
            value = int(raw.strip())
        except ValueError:  # more digits than Python converts (4300)
            value = None
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
    if isinstance(raw, str) and _DATE.match(raw.strip()):
        try:
            return date.fromisoformat(raw.strip())
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
    with every problem found (including min above max, and a subtype outside the type).
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
    if filters.min_annoy > filters.max_annoy:
        errors.setdefault("minAnnoy", []).append(
            f"minAnnoy {filters.min_annoy} is greater than maxAnnoy {filters.max_annoy}"
        )
    if filters.min_intensity > filters.max_intensity:
        errors.setdefault("minIntensity", []).append(
            f"minIntensity {filters.min_intensity} is greater than maxIntensity {filters.max_intensity}"
        )
    if date_init and date_end and date_init > date_end:
        errors.setdefault("date_init", []).append(
            f"date_init {date_init.isoformat()} is later than date_end {date_end.isoformat()}"
        )
    if filters.category and filters.subtype and SUBTYPES[filters.subtype].category_id != filters.category:
        owner = SUBTYPES[filters.subtype].category_id
        errors.setdefault("subtype", []).append(
            f"subtype {filters.subtype} ({SUBTYPES[filters.subtype].name}) belongs to type {owner} "
            f"({CATEGORIES[owner].name}), not type {filters.category} ({CATEGORIES[filters.category].name})"
        )
    if errors:
        raise FilterError(errors)
    return filters


def _published(report: Report, tz: ZoneInfo) -> datetime:
    return as_utc(report.published_at or report.observed_at).astimezone(tz)


def matches(report: Report, filters: OdourCollectFilters, *, timezone: str = "UTC") -> bool:
    """Whether a report passes the filters (dates compared in the project's time zone)."""
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
