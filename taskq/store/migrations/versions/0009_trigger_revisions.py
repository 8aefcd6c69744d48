"""trigger_revisions: every change to a trigger; firings.trigger_version: the one that fired

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # No foreign key to triggers: a revision outlives its trigger (deleted is one too).
    op.create_table(
        "trigger_revisions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("trigger_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(length=256), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("quarantined", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trigger_revisions_name", "trigger_revisions",
                    ["namespace", "name", "id"])
    op.create_index("ix_trigger_revisions_version", "trigger_revisions",
                    ["trigger_id", "version"])
    with op.batch_alter_table("firings") as batch:
        batch.add_column(sa.Column("trigger_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("firings") as batch:
        batch.drop_column("trigger_version")
    op.drop_index("ix_trigger_revisions_version", table_name="trigger_revisions")
    op.drop_index("ix_trigger_revisions_name", table_name="trigger_revisions")
    op.drop_table("trigger_revisions")
