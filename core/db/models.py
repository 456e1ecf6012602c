"""The engine's tables, as SQLAlchemy 2 typed models."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, false, text, true)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Account(Base):
    """A person: contributor, expert, moderator or administrator of projects (``Membership``),
    or an operator of the whole engine. Observations refer to it as their contributor."""

    __tablename__ = "accounts"
    __table_args__ = (Index("uq_account_email", "email", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    """Stored lower-cased; unique."""
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """argon2id; None: the account cannot sign in with a password."""
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(nullable=True)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="account", order_by="Membership.project", cascade="all, delete-orphan")


class Membership(Base):
    """An account's role in one project: admin, moderator, expert or contributor."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("account_id", "project", name="uq_membership_project"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    project: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(back_populates="memberships")


class ApiToken(Base):
    """A bearer token of an account; only its sha256 is stored.

    ``project`` and ``role`` narrow it: a token works in that project only (None: every project
    of the account) and with at most that role (None: the account's own roles)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    project: Mapped[str | None] = mapped_column(String(64), nullable=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    """api (made with the CLI or the API), session (a web sign-in; expires), device (an app)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Consent(Base):
    """What a person agreed to (or declined), when, and to which version of the text.

    ``choice`` is ``licence`` for the project's data licence, or a choice the project defines
    in registry.yaml (``newsletter``, ``follow_up``...). The newest row per choice holds."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consent_project_choice", "project", "choice"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    project: Mapped[str] = mapped_column(String(64))
    choice: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    agreed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SignInFailure(Base):
    """A failed password sign-in, kept for the attempt limits' window and then pruned."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True,
                                                   index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class MediaBlob(Base):
    """Bytes stored once by their sha256, whatever observations refer to them."""

    __tablename__ = "media_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Observation(Base):
    __tablename__ = "observations"
    __table_args__ = (
        UniqueConstraint("project", "client_id", name="uq_observation_client_id"),
        # exports and lists page one status of a project by id (migration 0005)
        Index("ix_observation_project_status_id", "project", "status", "id"),
        Index("ix_observation_project_time", "project", "observed_at"),
        # what the workers' recovery loop scans: observations not yet assessed since their last
        # change; partial, so that an assessed observation (nearly all of them) has no entry
        Index("ix_observation_assess_due", "assess_due_at", sqlite_where=text("assess_due_at IS NOT NULL"),
              postgresql_where=text("assess_due_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    contributor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True, index=True)
    """The account that made it; None for an anonymous or erased (anonymised) contributor."""
    source_contributor: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """Imported data: a keyed hash of the source's user id (never a name), so per-person analyses
    still work without an account (``core.importing``)."""
    kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    observed_at: Mapped[datetime] = mapped_column()
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    licence: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """One of the project's licences; None: the project's default licence."""
    location_privacy: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    """open, obscured (the public sees the project's obscured cell) or private (staff and the
    contributor only): ``core.privacy``."""
    comments_locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="pending")
    grade: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    assess_due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    """Set, in the same transaction, by a submit or an edit; cleared by the grading transaction
    that assessed that very version (``core.enrichment.assess``). Non-null: quality checks and
    grading are still owed, whatever became of the broker message that asked for them."""

    media: Mapped[list[ObservationMedia]] = relationship(
        back_populates="observation", order_by="ObservationMedia.position", cascade="all, delete-orphan"
    )
    enrichments: Mapped[list[Enrichment]] = relationship(
        back_populates="observation", order_by="Enrichment.plugin", cascade="all, delete-orphan"
    )
    flags: Mapped[list[QualityFlag]] = relationship(
        back_populates="observation", order_by="QualityFlag.id", cascade="all, delete-orphan"
    )


class ObservationMedia(Base):
    __tablename__ = "observation_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("media_blobs.sha256"))
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    observation: Mapped[Observation] = relationship(back_populates="media")
    blob: Mapped[MediaBlob] = relationship(lazy="joined")

    # the blob's facts, read the same way as on a joined row (core.read_model)
    @property
    def content_type(self) -> str:
        return self.blob.content_type

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def width(self) -> int | None:
        return self.blob.width

    @property
    def height(self) -> int | None:
        return self.blob.height


class Enrichment(Base):
    """One service's work on one observation; its state lives here, not in the broker."""

    __tablename__ = "enrichments"
    __table_args__ = (
        UniqueConstraint("observation_id", "plugin", name="uq_enrichment_plugin"),
        Index("ix_enrichment_status", "status", "lease_until"),
        # what ended since a moment (species_id's photo-hash index reads it); partial, so that
        # storing a pending enrichment at submit costs no entry here
        Index("ix_enrichment_finished", "plugin", "finished_at", sqlite_where=text("finished_at IS NOT NULL"),
              postgresql_where=text("finished_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id", ondelete="CASCADE"))
    plugin: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    not_before: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    """When the latest attempt was claimed."""
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """How long the latest attempt's plugin call took (``core.service_health`` reads it)."""

    observation: Mapped[Observation] = relationship(back_populates="enrichments")


class QualityFlag(Base):
    __tablename__ = "quality_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id", ondelete="CASCADE"), index=True)
    plugin: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)

    observation: Mapped[Observation] = relationship(back_populates="flags")


class AuditEntry(Base):
    """Who changed what, when, with the state before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    observation_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(Base):
    """A comment on an observation. Hidden by staff, it is kept (and audited), not deleted."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comment_observation", "observation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id", ondelete="CASCADE"))
    project: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    """None once the author's account is erased (the comment stays, authorless) or deleted."""
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    hidden_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Taxon(Base):
    """A taxon of the engine's taxonomy (``core.taxonomy``), loaded from Darwin Core checklists
    (``observatory taxa import``) or from what installed plugins know (``register_taxa``).

    ``ancestry`` is iNaturalist's: the ancestors' ids from the root down, joined by ``/``, without
    the taxon itself (None for a root). ``rank_level`` is iNaturalist's too (species 10, genus 20,
    family 30, order 40, class 50, phylum 60, kingdom 70), so "lower rank" is a number compare."""

    __tablename__ = "taxa"
    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_taxon_source"),
        Index("ix_taxon_scientific_name", "scientific_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scientific_name: Mapped[str] = mapped_column(String(300))
    rank: Mapped[str] = mapped_column(String(32))
    rank_level: Mapped[float] = mapped_column(Float)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("taxa.id"), nullable=True, index=True)
    ancestry: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    gbif_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    iconic_taxon_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The id of the taxon's iconic group (Aves, Plantae, Fungi...), as iNaturalist groups them."""
    source: Mapped[str] = mapped_column(String(64))
    """Where it came from: a checklist's name, or the plugin that registered it."""
    source_id: Mapped[str] = mapped_column(String(200))
    """The source's own id of the taxon (Darwin Core ``taxonID``)."""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    names: Mapped[list[TaxonName]] = relationship(back_populates="taxon", order_by="TaxonName.id",
                                                  cascade="all, delete-orphan")


class TaxonName(Base):
    """A name of a taxon: its scientific name (``lexicon`` ``scientific``) or a common name in a
    language (``lexicon`` an ISO 639-1 code: ``en``, ``es``, ``ca``...). ``search`` is the name
    lower-cased without accents, what ``GET /api/v1/taxa?q=`` matches by prefix."""

    __tablename__ = "taxon_names"
    __table_args__ = (
        UniqueConstraint("taxon_id", "lexicon", "name", name="uq_taxon_name"),
        Index("ix_taxon_name_search", "search", postgresql_ops={"search": "text_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    taxon_id: Mapped[int] = mapped_column(ForeignKey("taxa.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    lexicon: Mapped[str] = mapped_column(String(32))
    search: Mapped[str] = mapped_column(String(300))
    preferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The name shown for the taxon in that language (one per taxon and lexicon)."""

    taxon: Mapped[Taxon] = relationship(back_populates="names")
