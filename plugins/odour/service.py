"""The odour service on a running engine: its reports, events, analyses and pseudonym key.

The plugin's hooks, its HTTP routes (:mod:`.routes`) and its CLI commands (:mod:`.commands`)
share these functions, so that the API and the CLI answer the same thing. Reports are read
through ``core.queries`` (events through the in-memory :mod:`.event_store`, which reads the few
columns it needs itself); the domain modules (:mod:`.events`, :mod:`.analyses`, :mod:`.compat`)
do the work.

Who sees what:

* the public (``public=True``): published reports only, no contributor identity (events carry
  contributor *counts*), each place as its location privacy shows it to the public
  (``core.privacy``: open on the project's grid, obscured on the obscured cell) in everything
  computed for them, filters, events, maps and lists alike; private reports have no public
  place and are left out of all of them;
* staff (``public=False``): every report but those in the trash, with contributor ids.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core import queries
from core.engine import Engine
from core.errors import EngineError, NotFound
from core.lifecycle import get_project
from core.privacy import obscured_digits
from core.secret_keys import secret_key
from core.types import ObservationView, ProjectContext
from plugins.odour import event_store
from plugins.odour.catalogue import CATEGORIES
from plugins.odour.events import EventDetection, detect_events
from plugins.odour.reports import Report, as_utc, to_report
from plugins.odour.schema import ODOUR_SETTINGS_SCHEMA

log = logging.getLogger(__name__)

PLUGIN = "odour"
KIND = "odour"
PUBLIC_STATUSES: tuple[str, ...] = ("published",)
STAFF_STATUSES: tuple[str, ...] = ("pending", "published", "unpublished")
"""What staff see: everything but the trash."""
KEY_FILE = "odour-pseudonym.key"
EVENT_FORMATS = ("json", "csv", "geojson")


class OdourError(EngineError):
    """A request the odour service cannot answer (bad time, unknown analysis...)."""

    code = "odour_invalid"
    http_status = 400


# --------------------------------------------------------------------------- projects and settings


def settings_of(project: ProjectContext) -> dict[str, Any]:
    """The project's odour settings, with the schema's defaults for any left out."""
    values = dict(project.settings(PLUGIN))
    for key, prop in ODOUR_SETTINGS_SCHEMA["properties"].items():
        values.setdefault(key, prop.get("default"))
    return values


def odour_project(engine: Engine, slug: str) -> ProjectContext:
    """The project ``slug``; NotFound when it does not exist or does not enable odour."""
    project = get_project(engine, slug)
    if not project.enables(PLUGIN):
        enabling = ", ".join(engine.registry.projects_enabling(PLUGIN)) or "none"
        raise NotFound(f"project {slug!r} does not enable the odour service (projects that do: {enabling})",
                       code="odour_not_enabled")
    return project


def odour_projects(engine: Engine) -> list[ProjectContext]:
    """Every project that enables odour, in registry order."""
    return [p for p in engine.registry.contexts().values() if p.enables(PLUGIN)]


# --------------------------------------------------------------------------- times


_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_CLOCK = r"T([01]\d|2[0-3]):[0-5]\d"
_LOCAL = _DATE + _CLOCK + r"(:[0-5]\d(\.\d{1,6})?)?"
_ZONED = _DATE + _CLOCK + r":[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
MOMENT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time", "pattern": f"^{_ZONED}$"},
        {"type": "string", "pattern": f"^{_LOCAL}$", "description": "a date-time without an offset"},
    ],
}
"""What ``since`` and ``until`` accept, for the OpenAPI document: exactly what
:func:`parse_moment` accepts (a date, an RFC 3339 date-time, or one without an offset)."""
_MOMENT = re.compile(f"(?:{_DATE}|{_LOCAL}|{_ZONED})", re.ASCII)


class InvalidMoment(EngineError):
    """A time filter that is not a date or date-time the engine can place on its time line."""

    code = "invalid_datetime"
    http_status = 422


def parse_moment(text: str | None, project: ProjectContext, name: str, *, end: bool = False) -> datetime | None:
    """A date or date-time from a request (:data:`MOMENT_SCHEMA`). Without an offset it is read
    in the project's time zone. A bare date is the start of that day; with ``end``, the start of
    the next day, so that ``until=2024-03-31`` includes the 31st (and ``until=9999-12-31``,
    whose next day is past the calendar, bounds nothing). Raises :class:`InvalidMoment` (422)."""
    if text is None or text == "":
        return None
    raw = text
    example = "2024-03-31, 2024-03-31T18:00:00 or 2024-03-31T18:00:00+02:00"
    if not _MOMENT.fullmatch(raw):
        raise InvalidMoment(f"{name} {text[:64]!r} is not a date or date-time as ISO 8601 / RFC 3339 writes them "
                            f"({example})")
    tz = ZoneInfo(project.timezone)
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            if end and day == date.max:
                return None
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), tz)
        else:
            moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
    except ValueError:
        raise InvalidMoment(f"{name} {text[:64]!r} is not a real date or time ({example})") from None
    try:
        return as_utc(moment)
    except OverflowError:  # 0001-01-01T00:00+05:00, 9999-12-31T23:00-05:00: before or after every report
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def check_category(category: int | None) -> int | None:
    if category is not None and category not in CATEGORIES:
        allowed = ", ".join(f"{c.id} {c.name.lower()}" for c in CATEGORIES.values())
        raise OdourError(f"category {category} is not an odour category: allowed {allowed}", code="invalid_category")
    return category


# --------------------------------------------------------------------------- reports


def observations(
    engine: Engine,
    project: ProjectContext,
    *,
    public: bool,
    since: datetime | None = None,
    until: datetime | None = None,
    category: int | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> list[ObservationView]:
    """The project's odour observations that the caller may see, oldest first. For the public,
    places are as their location privacy shows them (core.privacy), in ``bbox`` and in what
    comes back, and private reports are left out, so that nothing computed from them (analyses,
    maps, the OdourCollect list) says more."""
    views = queries.observations(
        engine, project.slug, kind=KIND, since=since, until=until,
        statuses=PUBLIC_STATUSES if public else STAFF_STATUSES, bbox=bbox, public_places=public,
    )
    if public:
        views = [v for v in views if v.location_privacy in ("open", "obscured")]
    if category is not None:
        views = [v for v in views if v.fields.get("category") == category]
    return views


def reports_of(views: Iterable[Any]) -> list[Report]:
    """Reports of the observations that hold a whole odour report (others are skipped)."""
    out = []
    for view in views:
        try:
            out.append(to_report(view))
        except (ValueError, TypeError) as exc:
            log.warning("odour: observation %s is not a whole odour report: %s", getattr(view, "id", "?"), exc)
    return out


def detect(project: ProjectContext, reports: Sequence[Report]) -> EventDetection:
    """Events among ``reports`` with the project's settings."""
    s = settings_of(project)
    return detect_events(reports, window=timedelta(hours=float(s["window_h"])), distance_m=float(s["distance_m"]),
                         min_contributors=int(s["min_contributors"]))


def cached_reports(
    engine: Engine,
    project: ProjectContext,
    *,
    public: bool,
    since: datetime | None = None,
    until: datetime | None = None,
    category: int | None = None,
    cap: int,
) -> tuple[list[Report], int]:
    """At most the newest ``cap`` reports in [since, until) of ``category`` that the caller may
    see, oldest first, and how many there are in all: from the reports the event store keeps in
    memory for the scope (:mod:`.event_store`, brought up to date first), not the table, so
    that a request costs O(cap) whatever the project holds."""
    index = event_store.index_for(engine, project.slug, event_rule(project, public))
    with index.lock:
        index.refresh(engine, project.slug, KIND)
        rows, total = index.newest(since=since.timestamp() if since else None,
                                   until=until.timestamp() if until else None, category=category, cap=cap)
    return [report_of_row(r) for r in rows], total


def report_of_row(row: event_store.Row) -> Report:
    return Report(id=row.id, contributor=row.contributor, category=row.category, observed_at=row.observed_at,
                  lat=row.lat, lon=row.lon, intensity=row.intensity, hedonic_tone=row.hedonic,
                  subtype=row.subtype, duration=row.duration)


# --------------------------------------------------------------------------- events


def event_rule(project: ProjectContext, public: bool) -> event_store.Rule:
    """The linkage rule of ``project`` and what the scope sees (public: published reports that
    are not private, each on its public place, core.privacy; staff: every report but the trash,
    exact places)."""
    s = settings_of(project)
    return event_store.Rule(
        window_s=float(s["window_h"]) * 3600.0, distance_m=float(s["distance_m"]),
        min_contributors=int(s["min_contributors"]), statuses=PUBLIC_STATUSES if public else STAFF_STATUSES,
        digits=project.location_precision if public else None,
        obscured_digits=obscured_digits(project) if public else None, keep_private=not public,
    )


def events(
    engine: Engine,
    project: ProjectContext,
    *,
    public: bool,
    since: datetime | None = None,
    until: datetime | None = None,
    category: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    possible_max: int | None = None,
) -> dict[str, Any]:
    """A page of the events of a project as JSON-able data: the detection settings, the events
    that overlap [since, until) in start order (rule: see :mod:`plugins.odour.events`), the ids
    of the *possible* reports of the time the page covers, and ``next_cursor``.

    Events are detected over all the reports the scope may see, kept in memory and brought up
    to date incrementally (:mod:`plugins.odour.event_store`); ``since``, ``until`` and
    ``category`` select among them. ``limit`` None lists them all (the CLI).

    The public's events are detected on the public places (published reports, places on the
    project's grid): membership, centroids and counts tell nothing the public places do not.
    Staff's use the exact places and also get each event's contributor ids.
    """
    check_category(category)
    key = event_store.decode_cursor(cursor) if cursor else None
    index = event_store.index_for(engine, project.slug, event_rule(project, public))
    with index.lock:
        index.refresh(engine, project.slug, KIND)
        page = index.page(since=since.timestamp() if since else None, until=until.timestamp() if until else None,
                          category=category, cursor=key, limit=limit, possible_max=possible_max)
    rows = []
    for event in page["events"]:
        people = event.pop("_people")
        event.pop("_key")
        if not public:
            event["contributors"] = sorted(p for p in people if p is not None)
        rows.append(event)
    s = settings_of(project)
    return {
        "project": project.slug,
        "scope": "public" if public else "all",
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "category": category,
        "rule": {"window_h": s["window_h"], "distance_m": s["distance_m"], "min_contributors": s["min_contributors"]},
        "n_reports": page["n_reports"],
        "events": rows,
        "possible": page["possible"],
        "possible_truncated": page["possible_truncated"],
        "next_cursor": event_store.encode_cursor(page["next"]) if page["next"] else None,
    }


CSV_COLUMNS = ("id", "category", "category_name", "start", "end", "duration_min", "centroid_lat", "centroid_lon",
               "n_reports", "n_contributors", "annoyance", "mean_intensity", "max_intensity", "mean_hedonic_tone",
               "report_ids")


def events_csv(payload: dict[str, Any]) -> str:
    """The events as CSV, one row each (``report_ids`` separated by spaces)."""
    columns = list(CSV_COLUMNS) + (["contributors"] if payload["scope"] == "all" else [])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for event in payload["events"]:
        row = {**event, "centroid_lat": event["centroid"]["lat"], "centroid_lon": event["centroid"]["lon"],
               "report_ids": " ".join(map(str, event["report_ids"]))}
        if "contributors" in event:
            row["contributors"] = " ".join(map(str, event["contributors"]))
        writer.writerow(row)
    return buffer.getvalue()


def events_geojson(payload: dict[str, Any]) -> dict[str, Any]:
    """The events as a GeoJSON FeatureCollection of their centroids."""
    features = []
    for event in payload["events"]:
        properties = {k: v for k, v in event.items() if k != "centroid"}
        features.append({
            "type": "Feature",
            "id": event["id"],
            "geometry": {"type": "Point", "coordinates": [event["centroid"]["lon"], event["centroid"]["lat"]]},
            "properties": properties,
        })
    meta = {k: v for k, v in payload.items() if k not in ("events", "possible")}
    return {"type": "FeatureCollection", "features": features, "properties": {**meta, "possible": payload["possible"]}}


# --------------------------------------------------------------------------- analyses


ANALYSIS_PREFIX = "odour_"


def analysis_names(engine: Engine) -> list[str]:
    """The odour analyses by their short names (``heatmap``), as the routes and CLI take them."""
    return sorted(n.removeprefix(ANALYSIS_PREFIX) for n, a in engine.host.analyses.items() if a.plugin == PLUGIN)


def run_analysis(
    engine: Engine,
    project: ProjectContext,
    name: str,
    *,
    public: bool,
    since: datetime | None = None,
    until: datetime | None = None,
    category: int | None = None,
) -> dict[str, Any]:
    """Run the odour analysis ``name`` (short or full name) on the reports the caller may see."""
    check_category(category)
    full = name if name.startswith(ANALYSIS_PREFIX) else ANALYSIS_PREFIX + name
    analysis = engine.host.analyses.get(full)
    if analysis is None or analysis.plugin != PLUGIN:
        raise NotFound(f"unknown odour analysis {name!r} (analyses: {', '.join(analysis_names(engine))})",
                       code="unknown_analysis")
    cap = int(settings_of(project)["analysis_max_reports"])
    reports, total = cached_reports(engine, project, public=public, since=since, until=until, category=category,
                                    cap=cap)
    result = dict(analysis.run(reports, project, public=public))
    result.setdefault("rows", [])
    result["n_reports_total"] = total
    result["truncated"] = total > len(reports)
    if result["truncated"]:
        result["message"] = (f"computed on the newest {len(reports):,} of the {total:,} reports selected "
                             f"(analysis_max_reports); narrow since/until or category for the rest")
    result["analysis"] = full.removeprefix(ANALYSIS_PREFIX)
    result["title"] = analysis.title
    result["project"] = project.slug
    return result


def rows_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def json_part(result: dict[str, Any]) -> dict[str, Any]:
    """An analysis result without its binary parts (PNG), for JSON."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in result.items() if not isinstance(v, bytes)}


# --------------------------------------------------------------------------- pseudonyms


def pseudonym_key(engine: Engine) -> bytes:
    """The secret behind the OdourCollect-compatible ``id_user``.

    ``services.odour.config.pseudonym_key`` in registry.yaml when set (``env:NAME`` reads the
    environment variable NAME); otherwise a random key made once per installation and kept in
    ``<data_dir>/odour-pseudonym.key`` (mode 0600), so that no secret is committed and the
    pseudonyms stay stable across restarts.
    """
    spec = engine.registry.services.get(PLUGIN)
    configured = str((spec.config.get("pseudonym_key") if spec else "") or "")
    return secret_key(configured, Path(engine.settings.data_dir) / KEY_FILE,
                      setting="services.odour.config.pseudonym_key", error=OdourError, code="odour_key_missing")


# --------------------------------------------------------------------------- OdourCollect list


def _day_start(day: date | None, project: ProjectContext, *, next_day: bool = False) -> datetime | None:
    """The start of ``day`` (or of the next day) in the project's time zone, in UTC; None when
    there is no day or it lies at the ends of the calendar (then it bounds nothing)."""
    if day is None:
        return None
    try:
        return as_utc(datetime.combine(day + timedelta(days=1) if next_day else day, time(0),
                                       ZoneInfo(project.timezone)))
    except OverflowError:
        return None


def compat_list(engine: Engine, params: dict[str, Any], projects: Sequence[ProjectContext]) -> dict[str, Any]:
    """The OdourCollect-compatible list (``/api/odor/list``) over the published odour reports of
    ``projects``: each project's time zone for dates; places as each report's location privacy
    shows them to the public (private reports are not listed).
    Read from the reports the event store keeps in memory (published, public places), newest
    first: at most ``list_max_reports`` rows per project (``truncated`` and ``data.message`` say
    when more passed the filters). Raises :class:`plugins.odour.compat.FilterError`."""
    from plugins.odour.compat import contradiction_answer, parse_filters, render_report, wrap_content

    filters = parse_filters(params)
    if filters.contradictions:
        return contradiction_answer(filters.contradictions, params)
    key = pseudonym_key(engine)

    def keep(row: event_store.Row) -> bool:
        return ((filters.subtype is None or row.subtype == filters.subtype)
                and filters.min_annoy <= row.hedonic <= filters.max_annoy
                and filters.min_intensity <= row.intensity <= filters.max_intensity)

    found: list[tuple[float, Any, dict[str, Any]]] = []
    cut: list[str] = []
    for project in projects:
        since = _day_start(filters.date_init, project)
        until = _day_start(filters.date_end, project, next_day=True)
        cap = int(settings_of(project)["list_max_reports"])
        index = event_store.index_for(engine, project.slug, event_rule(project, True))
        with index.lock:
            index.refresh(engine, project.slug, KIND)
            rows, more = index.newest_matching(since=since.timestamp() if since else None,
                                               until=until.timestamp() if until else None,
                                               category=filters.category, keep=keep, cap=cap)
        if more:
            cut.append(f"{project.slug}: the newest {cap:,}")
        for row in rows:
            # the index's public rows are on their public places already (event_rule)
            rendered = render_report(report_of_row(row), key=key, timezone=project.timezone)
            found.append((row.t, row.id, rendered))
    found.sort(key=lambda item: (item[0], item[1]))
    answer = wrap_content([row for _, _, row in found], params)
    answer["truncated"] = bool(cut)
    if cut:
        answer["data"]["message"] = (f"Successful request. More reports pass these filters than one answer holds "
                                     f"({'; '.join(cut)} are listed, list_max_reports): narrow date_init/date_end.")
    return answer
