"""registries: models, datasets, entity polling

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FAMILIES = ("models", "datasets", "runs")


def _registry_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(f"ix_{name}_updated", name, ["updated_at", "id"])
    op.create_index(f"ix_{name}_ns_project", name, ["namespace", "project", "name"])


def upgrade() -> None:
    _registry_table("models")
    _registry_table("datasets")
    op.create_table(
        "entity_states",
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("family", "entity_id"),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("incarnation", sa.Integer(), server_default="0",
                                   nullable=False))
    op.create_index("ix_runs_updated", "runs", ["updated_at", "id"])
    op.create_index("ix_runs_ns_project", "runs", ["namespace", "project"])
    # The pollers start from now: rows already there were never watched (nothing is missed
    # that anyone was promised), and existing runs are not re-read as if they had changed.
    now = datetime.now(UTC)
    cursors = sa.table("cursors", sa.column("name", sa.String), sa.column("value", sa.String),
                       sa.column("updated_at", sa.DateTime(timezone=True)))
    op.bulk_insert(cursors, [{"name": f"poll.watermark.{family}",
                              "value": f"{now.isoformat()}|", "updated_at": now}
                             for family in FAMILIES])


def downgrade() -> None:
    op.execute("DELETE FROM cursors WHERE name LIKE 'poll.%'")
    op.drop_index("ix_runs_ns_project", table_name="runs")
    op.drop_index("ix_runs_updated", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("incarnation")
    op.drop_table("entity_states")
    for name in ("datasets", "models"):
        op.drop_index(f"ix_{name}_ns_project", table_name=name)
        op.drop_index(f"ix_{name}_updated", table_name=name)
        op.drop_table(name)
