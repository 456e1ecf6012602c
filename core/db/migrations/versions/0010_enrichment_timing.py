"""enrichments: started_at and duration_ms of the latest attempt (service health)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0010"
# 0009 (feedback and data use) is written at the same time as this one; until it is in the tree
# this revision follows 0008, so that the chain has one head either way
down_revision = "0009" if any(Path(__file__).parent.glob("0009_*.py")) else "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows that exist keep NULL: their time was not measured, and health leaves them out of the durations
    op.add_column("enrichments", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("enrichments", sa.Column("duration_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrichments") as batch:
        batch.drop_column("duration_ms")
        batch.drop_column("started_at")
