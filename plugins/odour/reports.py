"""The plain record the odour logic works on, and the conversions into it.

Everything in this plugin (events, quality, analyses, the OdourCollect-compatible list) takes
:class:`Report` values, or anything :func:`to_report` can turn into one: a mapping with the same
keys, a mapping or object shaped like ``core.types.ObservationView`` (``fields`` holding the
odour fields, ``location`` holding ``lat``/``lon``). Times without a time zone are taken as UTC.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any

__all__ = ["UTC", "Report", "as_utc", "epoch_seconds", "to_report"]


@dataclass(frozen=True, slots=True)
class Report:
    """One odour report, reduced to what the analyses need."""

    id: Hashable
    contributor: Hashable
    category: int
    observed_at: datetime
    lat: float
    lon: float
    intensity: int
    hedonic_tone: int
    subtype: int | None = None
    duration: int | None = None
    published_at: datetime | None = None


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_seconds(moment: datetime) -> float:
    """Seconds since 1970-01-01 UTC (a naive datetime is taken as UTC)."""
    return as_utc(moment).timestamp()


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def to_report(obj: Any) -> Report:
    """Turn a :class:`Report`, a flat mapping, or an observation-like value into a Report.

    Observation-like: has ``fields`` (category, subtype, intensity, hedonic_tone, duration),
    ``location`` (lat, lon), ``observed_at``, ``id`` and ``contributor_id``. Raises ValueError
    naming what is missing.
    """
    if isinstance(obj, Report):
        return obj
    fields = _get(obj, "fields")
    if fields is not None:
        location = _get(obj, "location")
        if location is None:
            raise ValueError("observation has no location")
        flat: dict[str, Any] = dict(fields)
        flat.update(
            id=_get(obj, "id"),
            contributor=_get(obj, "contributor_id", _get(obj, "contributor")),
            observed_at=_get(obj, "observed_at"),
            lat=_get(location, "lat"),
            lon=_get(location, "lon"),
            published_at=_get(obj, "published_at"),
        )
    else:
        flat = {f.name: _get(obj, f.name) for f in dataclass_fields(Report)}
    missing = [
        k for k in ("id", "category", "observed_at", "lat", "lon", "intensity", "hedonic_tone") if flat.get(k) is None
    ]
    if missing:
        raise ValueError(f"report is missing {', '.join(missing)}")
    observed_at = flat["observed_at"]
    if isinstance(observed_at, str):
        observed_at = datetime.fromisoformat(observed_at)
    published_at = flat.get("published_at")
    if isinstance(published_at, str):
        published_at = datetime.fromisoformat(published_at)
    return Report(
        id=flat["id"],
        contributor=flat.get("contributor"),
        category=int(flat["category"]),
        observed_at=observed_at,
        lat=float(flat["lat"]),
        lon=float(flat["lon"]),
        intensity=int(flat["intensity"]),
        hedonic_tone=int(flat["hedonic_tone"]),
        subtype=None if flat.get("subtype") is None else int(flat["subtype"]),
        duration=None if flat.get("duration") is None else int(flat["duration"]),
        published_at=published_at,
    )
