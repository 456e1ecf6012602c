"""Counting acceptances of a project's open-data licence (the public map's download dialog).

One row per project, licence and day holds a number: :func:`count_acceptance` adds one in a
single atomic upsert, so concurrent downloads never lose a count. Nothing about the person is
stored (no account, no address, no cookie id): the counts tell staff how much the data is taken.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.db.models_map import LicenceAcceptance
from core.db.session import transaction
from core.engine import Engine
from core.types import ProjectContext


def count_acceptance(engine: Engine, project: ProjectContext, *, day: date | None = None) -> None:
    """Add one acceptance of ``project``'s licence on ``day`` (today in UTC by default)."""
    day = day or datetime.now(timezone.utc).date()
    table = LicenceAcceptance.__table__
    insert = pg_insert if engine.db.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(project=project.slug, licence=project.licence, day=day, count=1)
    statement = statement.on_conflict_do_update(index_elements=["project", "licence", "day"],
                                                set_={"count": table.c.count + 1})
    with engine.db.begin() as conn:
        conn.execute(statement)


def acceptance_counts(engine: Engine, project: ProjectContext) -> dict[str, Any]:
    """The project's acceptances: the total and one entry per day and licence, newest day first."""
    query = (select(LicenceAcceptance.day, LicenceAcceptance.licence, LicenceAcceptance.count)
             .where(LicenceAcceptance.project == project.slug)
             .order_by(LicenceAcceptance.day.desc(), LicenceAcceptance.licence))
    with transaction(engine.readers) as session:
        days = [{"day": day.isoformat(), "licence": licence, "count": count}
                for day, licence, count in session.execute(query)]
    return {"project": project.slug, "total": sum(d["count"] for d in days), "days": days}
