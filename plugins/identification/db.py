"""The identification service's own tables, on their own metadata; ``create_tables`` makes the
missing ones at start-up (on SQLite and PostgreSQL alike; the engine's migrations do not know
them). The taxa they point at are the engine's (``core.taxonomy``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, false, true)

from core.db.models import Account, Observation, Taxon, UTCDateTime

metadata = MetaData()
# the engine's tables, referred to by column: they live on the engine's metadata, not this one
_observations, _accounts, _taxa = Observation.__table__, Account.__table__, Taxon.__table__

identifications = Table(
    "identifications", metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("observation_id", Integer, ForeignKey(_observations.c.id, ondelete="CASCADE"), nullable=False),
    Column("project", String(64), nullable=False),
    Column("account_id", Integer, ForeignKey(_accounts.c.id, ondelete="SET NULL"), nullable=True, index=True),
    Column("taxon_id", Integer, ForeignKey(_taxa.c.id), nullable=False, index=True),
    Column("body", Text, nullable=True),
    Column("vision", Boolean, nullable=False, server_default=false()),
    # the person's latest identification of the observation, not withdrawn (iNaturalist's "current")
    Column("current", Boolean, nullable=False, server_default=true()),
    Column("withdrawn", Boolean, nullable=False, server_default=false()),
    # an explicit disagreement: "not the community taxon's descendants, only this ancestor"
    Column("disagreement", Boolean, nullable=True),
    # the observation's taxon when this was made (iNaturalist's previous_observation_taxon): what an
    # explicit disagreement disagrees with
    Column("previous_taxon_id", Integer, ForeignKey(_taxa.c.id), nullable=True),
    Column("category", String(16), nullable=True),
    Column("own", Boolean, nullable=False, server_default=false()),
    Column("expert", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_identification_observation", "observation_id", "current"),
)

quality_votes = Table(
    "quality_votes", metadata,
    Column("id", Integer, primary_key=True),
    Column("observation_id", Integer, ForeignKey(_observations.c.id, ondelete="CASCADE"), nullable=False),
    Column("account_id", Integer, ForeignKey(_accounts.c.id, ondelete="CASCADE"), nullable=False, index=True),
    # wild, location, date, evidence, recent, needs_id ("no further ID possible" is needs_id: disagree)
    Column("metric", String(32), nullable=False),
    Column("agree", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("observation_id", "account_id", "metric", name="uq_quality_vote"),
)

# one row per observation with identifications: what the rules decided, kept for lists and queues
observation_taxa = Table(
    "observation_taxa", metadata,
    Column("observation_id", Integer, ForeignKey(_observations.c.id, ondelete="CASCADE"), primary_key=True),
    Column("project", String(64), nullable=False, index=True),
    # the observation's taxon: the community taxon, or the observer's when they opted out
    Column("taxon_id", Integer, ForeignKey(_taxa.c.id), nullable=True),
    Column("community_taxon_id", Integer, ForeignKey(_taxa.c.id), nullable=True),
    Column("community_score", Float, nullable=True),
    Column("prefers_community_taxon", Boolean, nullable=False, server_default=true()),
    Column("identifications_count", Integer, nullable=False, server_default="0"),
    Column("agreements", Integer, nullable=False, server_default="0"),
    Column("disagreements", Integer, nullable=False, server_default="0"),
    # the observation's grade as the service last audited it (store.audit_grade): a grade change that
    # follows an identification or a vote is audited once, however many requests race to it
    Column("audited_grade", String(16), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# what an expert wants in their queue: a taxon (and its descendants), a place (a box), or both
expert_subscriptions = Table(
    "expert_subscriptions", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey(_accounts.c.id, ondelete="CASCADE"), nullable=False, index=True),
    Column("taxon_id", Integer, ForeignKey(_taxa.c.id), nullable=True),
    Column("west", Float, nullable=True),
    Column("south", Float, nullable=True),
    Column("east", Float, nullable=True),
    Column("north", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)


def create_tables(engine: Any) -> None:
    """Create the plugin's tables that do not exist yet (idempotent, safe in every process)."""
    metadata.create_all(engine.db, checkfirst=True)
