"""observations.assess_due_at: quality checks and grading still owed (recovered by the workers)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:00:00

Rows that exist at upgrade keep NULL: they count as assessed, so the workers' recovery loop
does not assess the whole table again after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DUE = sa.text("assess_due_at IS NOT NULL")


def upgrade() -> None:
    op.add_column("observations", sa.Column("assess_due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_observation_assess_due", "observations", ["assess_due_at"], unique=False,
                    sqlite_where=DUE, postgresql_where=DUE)


def downgrade() -> None:
    op.drop_index("ix_observation_assess_due", table_name="observations")
    with op.batch_alter_table("observations") as batch_op:
        batch_op.drop_column("assess_due_at")
