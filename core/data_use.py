"""Data-use notifications (issue 17, as Cos4Cloud's DUNS did): why data was downloaded, and how
often each observation and each contributor's data was.

A download (an export, the map's open-data file, a Darwin Core Archive, a large page of the
iNaturalist-compatible API) may carry a purpose: research, education, policy, commercial or
other, with free text; a project asks for it as its ``download_purpose`` setting says (off,
optional, required). ``record_download`` keeps one row for the download (purpose, size, channel;
**never who**), adds one to each observation's count of the day and purpose, and one to each
contributor's count of downloads that held any of their observations (what their feed says).
Counting is one ``INSERT ... SELECT ... ON CONFLICT`` for the whole download: the ids travel as one
value (an array, a JSON list), or an export's own conditions select the rows.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Iterator, TypeVar

from sqlalchemy import (ColumnElement, Integer, String, and_, any_, bindparam, column, extract, func, literal,
                        select)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import Observation, utcnow
from core.db.models_codesign import ContributorUse, DataDownload, ObservationUse
from core.db.session import transaction
from core.engine import Engine
from core.errors import NotFound, ValidationFailed
from core.export import ExportOptions, record_conditions
from core.types import Problem, ProjectContext

PURPOSES = ("research", "education", "policy", "commercial", "other")
UNSTATED = "unstated"
"""The purpose recorded for a download that gave none (where the project does not require one)."""
SETTINGS = ("off", "optional", "required")
CHANNELS = ("export", "dwca", "open_data", "console", "inat_api", "cli")
MAX_TEXT = 500
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purpose:
    """A download's purpose as checked: one of PURPOSES or UNSTATED, and the free text."""

    purpose: str = UNSTATED
    text: str | None = None


def setting(engine: Engine, project: str) -> str:
    """The project's ``download_purpose`` setting (registry.yaml): off, optional or required."""
    spec = next((p for p in engine.registry.projects if p.slug == project), None)
    if spec is None:
        raise NotFound(f"unknown project {project!r}", code="unknown_project")
    return str(getattr(spec, "download_purpose", "optional"))


def _invalid(path: str, message: str, code: str) -> ValidationFailed:
    """A 422 whose message is the problem's own (not a draft's "the observation was refused")."""
    error = ValidationFailed([Problem((path,), message, code)])
    error.message, error.args = message, (message,)
    return error


def check_purpose(engine: Engine, project: str, purpose: str | None, text: str | None = None) -> Purpose:
    """The purpose of a download of ``project`` as given (text alone: ``other``); ValidationFailed
    (422) for an unknown one, text over MAX_TEXT characters, or none where the project requires one."""
    text = (text or "").strip() or None
    if (purpose is None or purpose == "") and text is not None:
        purpose = "other"  # a purpose in the person's own words
    if purpose is None or purpose == "":
        if setting(engine, project) == "required":
            raise _invalid("purpose", f"project {project!r} asks why its data is downloaded: give purpose, one of "
                           f"{', '.join(PURPOSES)}", "purpose_required")
        return Purpose()
    if purpose not in PURPOSES:
        raise _invalid("purpose", f"unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}", "unknown_purpose")
    if text is not None and len(text) > MAX_TEXT:
        raise _invalid("purpose_text", f"the purpose's text has at most {MAX_TEXT} characters, this one {len(text)}",
                       "purpose_text_too_long")
    return Purpose(purpose, text)


def _count_observations(session: Session, where: ColumnElement[bool], params: dict[str, Any], day: date,
                        purpose: str) -> tuple[int, set[int]]:
    """Add one to the day's count of each observation ``where`` selects; return how many, and
    their contributors."""
    insert = pg_insert if _dialect(session) == "postgresql" else sqlite_insert
    uses = ObservationUse.__table__
    chosen = select(Observation.id, literal(day, uses.c.day.type), literal(purpose), literal(1)).where(where)
    statement = insert(uses).from_select(["observation_id", "day", "purpose", "count"], chosen)
    session.execute(statement.on_conflict_do_update(index_elements=["observation_id", "day", "purpose"],
                                                    set_={"count": uses.c.count + 1}), params)
    # (rowcount of an INSERT ... SELECT ... ON CONFLICT is not told by every driver: counted)
    counted = session.scalar(select(func.count()).select_from(Observation).where(where), params) or 0
    return counted, set(session.scalars(select(Observation.contributor_id).distinct()
                                        .where(where, Observation.contributor_id.is_not(None)), params))


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _among(session: Session, ids: list[int]) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """``Observation.id`` among ``ids``, sent as one value (a PostgreSQL array, SQLite's
    ``json_each`` of a JSON list) rather than one bound value per id."""
    if _dialect(session) == "postgresql":
        return Observation.id == any_(bindparam("ids", type_=ARRAY(Integer))), {"ids": ids}
    listed = select(column("value", Integer)).select_from(func.json_each(bindparam("ids", type_=String)))
    return Observation.id.in_(listed.scalar_subquery()), {"ids": json.dumps(ids)}


def _count_contributors(session: Session, project: str, contributors: Iterable[int], day: date, purpose: str) -> None:
    rows = [{"account_id": a, "project": project, "day": day, "purpose": purpose, "downloads": 1}
            for a in sorted(contributors)]
    if not rows:
        return
    insert = pg_insert if _dialect(session) == "postgresql" else sqlite_insert
    uses = ContributorUse.__table__
    session.execute(insert(uses).on_conflict_do_update(
        index_elements=["account_id", "project", "day", "purpose"], set_={"downloads": uses.c.downloads + 1}), rows)


def _record(engine: Engine, project: str, where: ColumnElement[bool] | list[int], given: Purpose, channel: str) -> int:
    if channel not in CHANNELS:
        raise ValueError(f"unknown download channel {channel!r}; one of {', '.join(CHANNELS)}")
    now = utcnow()
    day = now.date()
    with transaction(engine.sessions) as session:
        condition, params = _among(session, where) if isinstance(where, list) else (where, {})
        rows, contributors = _count_observations(session, and_(Observation.project == project, condition), params,
                                                 day, given.purpose)
        _count_contributors(session, project, contributors, day, given.purpose)
        download = DataDownload(project=project, channel=channel, purpose=given.purpose, text=given.text,
                                rows=rows, at=now)
        session.add(download)
        session.flush()
        return download.id


def record_download(engine: Engine, project: str, observation_ids: Iterable[int], purpose: str | None,
                    text: str | None = None, channel: str = "export") -> int:
    """Record one download of ``project``'s observations ``observation_ids`` (ids of other
    projects are ignored) for ``purpose`` (checked as ``check_purpose`` does: ValidationFailed for
    a bad or missing one). Stores no downloader. Returns the download's id."""
    given = check_purpose(engine, project, purpose, text)
    return _record(engine, project, sorted(set(observation_ids)), given, channel)


def record_selection(engine: Engine, project: str, where: ColumnElement[bool], given: Purpose,
                     channel: str = "export") -> int:
    """Record one download of the observations ``where`` selects (an export's own conditions,
    ``core.export.record_conditions``): one statement, whatever the size."""
    return _record(engine, project, where, given, channel)


def counted(chunks: Iterable[T], record: Callable[[], object]) -> Iterator[T]:
    """``chunks``, then ``record()`` once the last one has left: a download counts when complete.
    A failure to record is logged, never the reader's (the data has been sent)."""
    yield from chunks
    try:
        record()
    except Exception:  # noqa: BLE001
        log.exception("a download was sent but could not be counted")


def counted_export(engine: Engine, project: ProjectContext, options: ExportOptions, given: Purpose,
                   chunks: Iterable[T], channel: str = "export") -> Iterator[T]:
    """An export's ``chunks`` (``core.export``, ``core.dwca``), counted once the last has left,
    by the export's own conditions (``core.export.record_conditions``): the same rows it sent."""
    where = and_(*record_conditions(engine, project, options))
    return counted(chunks, lambda: record_selection(engine, project.slug, where, given, channel))


# -- reading ------------------------------------------------------------------------------------


def _month_start(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date().replace(day=1)


def summary_sentence(downloads: int, purposes: dict[str, int], when: str = "this month") -> str:
    """``your observations were used in 12 downloads this month: 9 research, 3 education``."""
    if not downloads:
        return f"your observations were not downloaded {when}"
    parts = ", ".join(f"{n} {p if p != UNSTATED else 'unstated purpose'}"
                      for p, n in sorted(purposes.items(), key=lambda kv: (-kv[1], kv[0])))
    noun = "download" if downloads == 1 else "downloads"
    return f"your observations were used in {downloads} {noun} {when}: {parts}"


def contributor_summary(engine: Engine, account_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """How many downloads this month (UTC) held at least one of the person's observations, by
    purpose, over every project; with the sentence their feed and profile show."""
    start = _month_start(now or utcnow())
    query = (select(ContributorUse.purpose, func.sum(ContributorUse.downloads))
             .where(ContributorUse.account_id == account_id, ContributorUse.day >= start)
             .group_by(ContributorUse.purpose))
    with transaction(engine.readers) as session:
        purposes = {p: int(n) for p, n in session.execute(query)}
        total = int(session.scalar(select(func.coalesce(func.sum(ContributorUse.downloads), 0))
                                   .where(ContributorUse.account_id == account_id)) or 0)
    downloads = sum(purposes.values())
    return {"month": start.strftime("%Y-%m"), "downloads": downloads, "purposes": purposes,
            "all_time_downloads": total, "text": summary_sentence(downloads, purposes)}


def observation_summary(engine: Engine, observation_id: int) -> dict[str, Any]:
    """How many downloads held the observation, in all and by purpose."""
    query = (select(ObservationUse.purpose, func.sum(ObservationUse.count))
             .where(ObservationUse.observation_id == observation_id).group_by(ObservationUse.purpose))
    with transaction(engine.readers) as session:
        purposes = {p: int(n) for p, n in session.execute(query)}
    return {"observation_id": observation_id, "downloads": sum(purposes.values()), "purposes": purposes}


def project_totals(engine: Engine, project: str) -> list[dict[str, Any]]:
    """A project's downloads by (UTC) month, oldest first: downloads and observations sent, in all
    and per purpose. Counts only (what its funders' page shows)."""
    year, month = extract("year", DataDownload.at), extract("month", DataDownload.at)
    query = (select(year, month, DataDownload.purpose, func.count(), func.coalesce(func.sum(DataDownload.rows), 0))
             .where(DataDownload.project == project).group_by(year, month, DataDownload.purpose)
             .order_by(year, month, DataDownload.purpose))
    months: dict[str, dict[str, Any]] = defaultdict(lambda: {"downloads": 0, "observations": 0, "purposes": {}})
    with transaction(engine.readers) as session:
        for y, m, purpose, n, rows in session.execute(query):
            entry = months[f"{int(y):04d}-{int(m):02d}"]
            entry["downloads"] += int(n)
            entry["observations"] += int(rows)
            entry["purposes"][purpose] = int(n)
    return [{"month": key, **value} for key, value in sorted(months.items())]
