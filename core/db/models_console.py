"""The console's own tables: per-project switches changed at run time, and background exports.

Kept apart from ``core.db.models`` (same ``Base``, migration 0007), so the console's state is one
module to read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models import Base, utcnow


class ProjectSwitch(Base):
    """A project's switch set in the console (``comments`` off...); registry.yaml's setting wins
    where it says off (``core.project_switches``). No row: the registry's value."""

    __tablename__ = "project_switches"

    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    on: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ExportJob(Base):
    """An export prepared in the background (``core.export_jobs``): what was asked, how far it is,
    and the file it wrote (under ``<data_dir>/exports``, removed when it expires)."""

    __tablename__ = "export_jobs"
    __table_args__ = (Index("ix_export_job_project", "project", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True,
                                                   index=True)
    """Who asked (None: the command line); an erased person's jobs go with the account."""
    actor: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The filters as asked (``core.filters`` names and values)."""
    gbif_only: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    """queued, running, done, failed."""
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    file_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime] = mapped_column()
