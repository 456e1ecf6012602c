"""observations (project, status, id): exports and lists page a project's observations of one
status by id without reading every row, whatever the planner's statistics say

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 13:40:00

Replaces ``ix_observation_project_status`` (project, status), which it covers.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_observation_project_status_id", "observations", ["project", "status", "id"])
    op.drop_index("ix_observation_project_status", table_name="observations")


def downgrade() -> None:
    op.create_index("ix_observation_project_status", "observations", ["project", "status"])
    op.drop_index("ix_observation_project_status_id", table_name="observations")
