"""event_names: each custom event name published in a namespace, filled from the log

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_names",
        sa.Column("namespace", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    )
    events = sa.table("run_events", sa.column("namespace", sa.String),
                      sa.column("kind", sa.String), sa.column("body", sa.JSON),
                      sa.column("created_at", sa.DateTime(timezone=True)))
    ref = events.c.body["ref"].as_string()
    refs = (sa.select(events.c.namespace, ref.label("ref"), events.c.created_at)
            .where(events.c.kind == "custom_event").subquery())
    names = (sa.select(refs.c.namespace, sa.func.substr(refs.c.ref, 8),
                       sa.func.min(refs.c.created_at))
             .where(refs.c.ref.like("events.%"))
             .group_by(refs.c.namespace, refs.c.ref))
    op.execute(sa.table("event_names", sa.column("namespace"), sa.column("name"),
                        sa.column("first_at"))
               .insert().from_select(["namespace", "name", "first_at"], names))


def downgrade() -> None:
    op.drop_table("event_names")
