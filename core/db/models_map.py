"""The public map's own table: how many visitors accepted a project's licence, per day.

Only a count is kept: never who accepted (no account, no address, no cookie id), so the table
says how much the open data is taken, and nothing about anyone.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models import Base


class LicenceAcceptance(Base):
    """``count`` visitors accepted ``licence`` of ``project`` on ``day`` (UTC) before a download."""

    __tablename__ = "licence_acceptances"
    __table_args__ = (UniqueConstraint("project", "licence", "day", name="uq_licence_acceptance_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    licence: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(Integer, default=0)
