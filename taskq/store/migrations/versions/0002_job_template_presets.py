"""job templates carry preset names; firings are indexed by dedup key

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_templates") as batch:
        batch.add_column(sa.Column("presets", sa.JSON(), nullable=False, server_default="[]"))
    op.create_index("ix_firings_dedup_key", "firings", ["dedup_key"])


def downgrade() -> None:
    op.drop_index("ix_firings_dedup_key", table_name="firings")
    with op.batch_alter_table("job_templates") as batch:
        batch.drop_column("presets")
