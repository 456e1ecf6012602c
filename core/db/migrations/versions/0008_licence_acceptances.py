"""licence_acceptances: the public map's count of open-data licence acceptances per day

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_acceptances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("licence", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("project", "licence", "day", name="uq_licence_acceptance_day"),
    )


def downgrade() -> None:
    op.drop_table("licence_acceptances")
