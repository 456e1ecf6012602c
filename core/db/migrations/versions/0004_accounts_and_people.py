"""People, not tokens: accounts with memberships, consents, comments, sign-in failures; each
observation's licence, location privacy and imported-contributor key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:40:00

``contributors`` becomes ``accounts`` (same ids: observations keep pointing at their person);
each token's contributor becomes an account with the membership its token had (an operator
token's account gets the operator flag), so every existing token keeps working.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE contributors RENAME TO accounts")
    op.execute("ALTER TABLE accounts RENAME COLUMN name TO display_name")
    op.add_column("accounts", sa.Column("email", sa.String(320), nullable=True))
    op.add_column("accounts", sa.Column("password_hash", sa.String(200), nullable=True))
    op.add_column("accounts", sa.Column("is_operator", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("accounts", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("uq_account_email", "accounts", ["email"], unique=True)

    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "project", name="uq_membership_project"),
    )
    op.create_index("ix_memberships_project", "memberships", ["project"])

    op.execute("ALTER TABLE api_tokens RENAME COLUMN contributor_id TO account_id")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.alter_column("role", existing_type=sa.String(32), nullable=True)
        batch_op.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="api"))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("choice", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("agreed", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consents_account_id", "consents", ["account_id"])
    op.create_index("ix_consent_project_choice", "consents", ["project", "choice"])

    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_failures_account_id", "sign_in_failures", ["account_id"])
    op.create_index("ix_sign_in_failures_address", "sign_in_failures", ["address"])
    op.create_index("ix_sign_in_failures_at", "sign_in_failures", ["at"])

    op.add_column("observations", sa.Column("source_contributor", sa.String(64), nullable=True))
    op.add_column("observations", sa.Column("licence", sa.String(32), nullable=True))
    op.add_column("observations", sa.Column("location_privacy", sa.String(16), nullable=False, server_default="open"))
    op.add_column("observations", sa.Column("comments_locked", sa.Boolean(), nullable=False,
                                            server_default=sa.false()))
    op.create_index("ix_observations_source_contributor", "observations", ["source_contributor"])

    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("observation_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["observation_id"], ["observations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_comment_observation", "comments", ["observation_id", "id"])
    op.create_index("ix_comments_project", "comments", ["project"])
    op.create_index("ix_comments_account_id", "comments", ["account_id"])

    _memberships_from_tokens()


def _memberships_from_tokens() -> None:
    """Each token's account gets the role its token had: operator flag, or a membership."""
    conn = op.get_bind()
    now = sa.func.current_timestamp()
    memberships = sa.table("memberships", sa.column("account_id"), sa.column("project"), sa.column("role"),
                           sa.column("created_at"))
    accounts = sa.table("accounts", sa.column("id"), sa.column("is_operator"))
    seen: set[tuple[int, str]] = set()
    for account_id, role, project in conn.execute(
            sa.text("SELECT account_id, role, project FROM api_tokens WHERE account_id IS NOT NULL ORDER BY id")):
        if role == "operator":
            conn.execute(accounts.update().where(accounts.c.id == account_id).values(is_operator=True))
        elif project is not None and (account_id, project) not in seen:
            seen.add((account_id, project))
            conn.execute(memberships.insert().values(account_id=account_id, project=project, role=role,
                                                     created_at=now))


def downgrade() -> None:
    op.drop_table("comments")
    op.drop_index("ix_observations_source_contributor", table_name="observations")
    with op.batch_alter_table("observations") as batch_op:
        for column in ("comments_locked", "location_privacy", "licence", "source_contributor"):
            batch_op.drop_column(column)
    op.drop_table("sign_in_failures")
    op.drop_table("consents")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("kind")
    op.execute("UPDATE api_tokens SET role = 'contributor' WHERE role IS NULL")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.alter_column("role", existing_type=sa.String(32), nullable=False)
    op.execute("ALTER TABLE api_tokens RENAME COLUMN account_id TO contributor_id")
    op.drop_table("memberships")
    op.drop_index("uq_account_email", table_name="accounts")
    with op.batch_alter_table("accounts") as batch_op:
        for column in ("last_seen_at", "is_operator", "password_hash", "email"):
            batch_op.drop_column(column)
    op.execute("ALTER TABLE accounts RENAME COLUMN display_name TO name")
    op.execute("ALTER TABLE accounts RENAME TO contributors")
