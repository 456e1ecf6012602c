"""index of enrichments by plugin and end time (only those that ended)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ENDED = sa.text("finished_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_enrichment_finished", "enrichments", ["plugin", "finished_at"], unique=False,
                    sqlite_where=ENDED, postgresql_where=ENDED)


def downgrade() -> None:
    op.drop_index("ix_enrichment_finished", table_name="enrichments")
