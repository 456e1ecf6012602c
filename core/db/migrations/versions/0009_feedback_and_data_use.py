"""result_feedback, service_feedback, data_downloads, observation_uses, contributor_uses: co-design
feedback and data-use counts (issue 17)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "result_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("observation_id", sa.Integer(), sa.ForeignKey("observations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=True),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("correction_taxon_id", sa.Integer(), nullable=True),
        sa.Column("correction_label", sa.String(300), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.UniqueConstraint("observation_id", "service", "account_id", name="uq_result_feedback_person"),
    )
    op.create_index("ix_result_feedback_service", "result_feedback", ["service", "created_at"])
    op.create_index("ix_result_feedback_observation_id", "result_feedback", ["observation_id"])
    op.create_index("ix_result_feedback_project", "result_feedback", ["project"])
    op.create_index("ix_result_feedback_account_id", "result_feedback", ["account_id"])

    op.create_table(
        "service_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("project", sa.String(64), nullable=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_note", sa.Text(), nullable=True),
        sa.Column("state_changed_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_service_feedback_service", "service_feedback", ["service", "id"])
    op.create_index("ix_service_feedback_project", "service_feedback", ["project"])
    op.create_index("ix_service_feedback_account_id", "service_feedback", ["account_id"])

    op.create_table(
        "data_downloads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("text", sa.String(500), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
    )
    op.create_index("ix_data_download_project_at", "data_downloads", ["project", "at"])

    op.create_table(
        "observation_uses",
        sa.Column("observation_id", sa.Integer(), sa.ForeignKey("observations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("purpose", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "contributor_uses",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("project", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("purpose", sa.String(16), primary_key=True),
        sa.Column("downloads", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for name in ("contributor_uses", "observation_uses", "data_downloads", "service_feedback", "result_feedback"):
        op.drop_table(name)
