"""pipelines: DAG runs and their operations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False,
                                   server_default="job"))
        batch.add_column(sa.Column("pipeline_uuid", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("op_name", sa.String(length=128), nullable=True))
        batch.create_index("ix_runs_pipeline_uuid", ["pipeline_uuid"])
    op.create_table(
        "pipelines",
        sa.Column("run_uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid"),
    )


def downgrade() -> None:
    op.drop_table("pipelines")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_pipeline_uuid")
        batch.drop_column("op_name")
        batch.drop_column("pipeline_uuid")
        batch.drop_column("kind")
