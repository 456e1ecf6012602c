"""taxa and taxon_names: the engine's taxonomy (``core.taxonomy``)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "taxa",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scientific_name", sa.String(300), nullable=False),
        sa.Column("rank", sa.String(32), nullable=False),
        sa.Column("rank_level", sa.Float(), nullable=False),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("taxa.id"), nullable=True),
        sa.Column("ancestry", sa.String(2000), nullable=True),
        sa.Column("gbif_key", sa.BigInteger(), nullable=True),
        sa.Column("iconic_taxon_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "source_id", name="uq_taxon_source"),
    )
    op.create_index("ix_taxa_parent_id", "taxa", ["parent_id"])
    op.create_index("ix_taxon_scientific_name", "taxa", ["scientific_name"])
    op.create_table(
        "taxon_names",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("taxon_id", sa.Integer(), sa.ForeignKey("taxa.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("lexicon", sa.String(32), nullable=False),
        sa.Column("search", sa.String(300), nullable=False),
        sa.Column("preferred", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.UniqueConstraint("taxon_id", "lexicon", "name", name="uq_taxon_name"),
    )
    op.create_index("ix_taxon_names_taxon_id", "taxon_names", ["taxon_id"])
    op.create_index("ix_taxon_name_search", "taxon_names", ["search"],
                    postgresql_ops={"search": "text_pattern_ops"})


def downgrade() -> None:
    op.drop_table("taxon_names")
    op.drop_table("taxa")
