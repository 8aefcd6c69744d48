"""run_events.evaluated: the database, not the stream, says which events were evaluated

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_events") as batch:
        batch.add_column(sa.Column("evaluated", sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
    # Events committed before this revision were handled by the stream's own bookkeeping;
    # counting them as evaluated keeps a first Redis loss after the upgrade from re-emitting
    # the whole history (a re-emitted event would fire nothing twice, but costs a pass).
    op.execute(sa.text("UPDATE run_events SET evaluated = :yes").bindparams(yes=True))
    op.create_index("ix_run_events_unevaluated", "run_events", ["evaluated", "id"])


def downgrade() -> None:
    op.drop_index("ix_run_events_unevaluated", table_name="run_events")
    with op.batch_alter_table("run_events") as batch:
        batch.drop_column("evaluated")
