"""every event in the event log (not only run statuses); AND-join state for triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("run_events") as batch:
        batch.alter_column("run_uuid", existing_type=sa.String(length=36), nullable=True)
    op.create_table(
        "join_arms",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("trigger_id", BigId, nullable=False),
        sa.Column("input_key", sa.String(length=256), nullable=False),
        sa.Column("dedup_key", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("firing_id", BigId, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["trigger_id"], ["triggers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trigger_id", "dedup_key", name="uq_join_arms_key"),
    )
    op.create_index("ix_join_arms_state", "join_arms", ["trigger_id", "state", "id"])


def downgrade() -> None:
    op.drop_index("ix_join_arms_state", table_name="join_arms")
    op.drop_table("join_arms")
    op.execute("DELETE FROM run_events WHERE run_uuid IS NULL")
    with op.batch_alter_table("run_events") as batch:
        batch.alter_column("run_uuid", existing_type=sa.String(length=36), nullable=False)
