"""runs.approval, job_templates.approval: runs that wait for `taskq runs approve`

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_templates") as batch:
        batch.add_column(sa.Column("approval", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("approval", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("approval")
    with op.batch_alter_table("job_templates") as batch:
        batch.drop_column("approval")
