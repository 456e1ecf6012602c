"""Co-design tables (migration 0009): feedback on services' results and on the services
themselves, and how often data was downloaded and why.

Kept apart from ``core.db.models`` (same ``Base``). No table here records who downloaded: a
download keeps its purpose and size, observations and contributors keep counts per day.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models import Base, utcnow


class ResultFeedback(Base):
    """One person's current verdict on one service's result for one observation (a later one
    replaces it), with the model that gave the result."""

    __tablename__ = "result_feedback"
    __table_args__ = (
        UniqueConstraint("observation_id", "service", "account_id", name="uq_result_feedback_person"),
        Index("ix_result_feedback_service", "service", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id", ondelete="CASCADE"), index=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    service: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    """Who said it; None once their account is erased (the verdict stays, authorless)."""
    verdict: Mapped[str] = mapped_column(String(16))
    """agree or disagree."""
    correction_taxon_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    correction_label: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ServiceFeedback(Base):
    """A rating, comment or feature request sent to a service's maintainers, tagged with the
    sender's role as their memberships said when they sent it."""

    __tablename__ = "service_feedback"
    __table_args__ = (Index("ix_service_feedback_service", "service", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    role: Mapped[str] = mapped_column(String(32))
    """operator, moderator, expert or contributor."""
    kind: Mapped[str] = mapped_column(String(32))
    """rating, comment or feature_request."""
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="new")
    """new, planned, done or declined."""
    state_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    """What the maintainers say with the state (shown to the sender)."""
    state_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DataDownload(Base):
    """One download of a project's data: how, why and how many observations. Never who."""

    __tablename__ = "data_downloads"
    __table_args__ = (Index("ix_data_download_project_at", "project", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))
    """research, education, policy, commercial, other, or unstated."""
    text: Mapped[str | None] = mapped_column(String(500), nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ObservationUse(Base):
    """How many downloads of ``day`` (UTC) for ``purpose`` held this observation."""

    __tablename__ = "observation_uses"

    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id", ondelete="CASCADE"),
                                                primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ContributorUse(Base):
    """How many downloads of ``day`` for ``purpose`` held at least one observation of this
    contributor in ``project`` (what their feed says: "used in 12 downloads")."""

    __tablename__ = "contributor_uses"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
