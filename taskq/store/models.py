"""SQLAlchemy 2 typed tables. Migrations in ``migrations/versions`` must match these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from taskq.store.types import StorableString, StorableText

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class JobTemplate(Base):
    __tablename__ = "job_templates"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_job_templates_ns_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(StorableString(128))
    namespace: Mapped[str] = mapped_column(StorableString(64))
    project: Mapped[str | None] = mapped_column(StorableString(128))
    queue: Mapped[str] = mapped_column(StorableString(128))
    task_name: Mapped[str] = mapped_column(StorableString(256))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str | None] = mapped_column(StorableText)
    #: Preset names applied to every hook that runs this job (before the hook's own).
    presets: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    #: Every run of this job waits for ``taskq runs approve`` before it is queued.
    approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_job_created", "namespace", "job", "created_at"),
        Index("ix_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(StorableString(36), unique=True)
    job: Mapped[str] = mapped_column(StorableString(128))
    project: Mapped[str | None] = mapped_column(StorableString(128))
    namespace: Mapped[str] = mapped_column(StorableString(64))
    status: Mapped[str] = mapped_column(StorableString(32))
    status_reason: Mapped[str | None] = mapped_column(StorableText)
    queue: Mapped[str] = mapped_column(StorableString(256))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    celery_task_id: Mapped[str | None] = mapped_column(StorableString(64))
    # Lineage: which trigger and which event(s) created this run (None for a manual run).
    trigger_id: Mapped[int | None] = mapped_column(ForeignKey("triggers.id", ondelete="SET NULL"))
    trigger_name: Mapped[str | None] = mapped_column(StorableString(128))
    firing_id: Mapped[int | None] = mapped_column(BigId)
    event_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    trigger_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Bumped when a trigger with reuse_task re-enqueues this run (the one way out of a
    #: final status); the worker's start claim refuses messages of another incarnation.
    incarnation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The worker that claimed the current attempt (its liveness: was the run lost?).
    worker: Mapped[str | None] = mapped_column(StorableString(255))
    #: "job", or "pipeline" for a DAG run (its operations are runs with ``pipeline_uuid``).
    kind: Mapped[str] = mapped_column(StorableString(16), default="job", server_default="job")
    pipeline_uuid: Mapped[str | None] = mapped_column(StorableString(36), index=True)
    op_name: Mapped[str | None] = mapped_column(StorableString(128))
    #: None (no approval needed), waiting, approved or invalidated: a waiting run is
    #: ``created`` and its outbox row is held (the relay skips it) until it is approved.
    approval: Mapped[str | None] = mapped_column(StorableString(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunEvent(Base):
    """Every committed event, in commit order: the source of truth behind the stream.

    Run-status changes carry their run's uuid; published events and registry changes
    (models, datasets) have none."""

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_unconfirmed", "confirmed", "id"),
                      Index("ix_run_events_unevaluated", "evaluated", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(StorableString(64), unique=True)
    run_uuid: Mapped[str | None] = mapped_column(StorableString(36), index=True)
    kind: Mapped[str] = mapped_column(StorableString(128))
    status: Mapped[str | None] = mapped_column(StorableString(32))
    previous_status: Mapped[str | None] = mapped_column(StorableString(32))
    namespace: Mapped[str] = mapped_column(StorableString(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Seen in the stream by the reconciler (or re-emitted by it).
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: An evaluator committed every firing this event causes (or decided it causes none):
    #: what survives Redis losing its data. Until then the reconciler may emit it again.
    evaluated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Trigger(Base):
    __tablename__ = "triggers"
    # AUTOINCREMENT on SQLite: a deleted trigger's id is never reused, because cloned run
    # uuids are derived from (trigger id, dedup key).
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_triggers_ns_name"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(StorableString(128))
    namespace: Mapped[str] = mapped_column(StorableString(64))
    kind: Mapped[str] = mapped_column(StorableString(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    job: Mapped[str] = mapped_column(StorableString(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    queue: Mapped[str | None] = mapped_column(StorableString(256))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Failed evaluations in a row (a firing resets it), and why it was quarantined.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    quarantined: Mapped[str | None] = mapped_column(StorableText)
    quarantined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TriggerRevision(Base):
    """A trigger as one change left it: what `taskq triggers explain` judges events by."""

    __tablename__ = "trigger_revisions"
    __table_args__ = (Index("ix_trigger_revisions_name", "namespace", "name", "id"),
                      Index("ix_trigger_revisions_version", "trigger_id", "version"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    trigger_id: Mapped[int] = mapped_column(BigId)  # no foreign key: it outlives the trigger
    name: Mapped[str] = mapped_column(StorableString(128))
    namespace: Mapped[str] = mapped_column(StorableString(64))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(StorableString(16))
    kind: Mapped[str] = mapped_column(StorableString(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    job: Mapped[str] = mapped_column(StorableString(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    queue: Mapped[str | None] = mapped_column(StorableString(256))
    enabled: Mapped[bool] = mapped_column(Boolean)
    quarantined: Mapped[str | None] = mapped_column(StorableText)
    source: Mapped[str] = mapped_column(StorableString(32))  # python, cli, yaml, ...
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Firing(Base):
    """One row per (trigger, dedup key): the uniqueness that makes dispatch exactly-once."""

    __tablename__ = "firings"
    __table_args__ = (UniqueConstraint("trigger_id", "dedup_key", name="uq_firings_trigger_key"),
                      # `taskq runs show`: every firing about one run, by key prefix.
                      Index("ix_firings_dedup_key", "dedup_key"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    trigger_id: Mapped[int] = mapped_column(ForeignKey("triggers.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(StorableString(256))
    event_id: Mapped[str] = mapped_column(StorableString(64))
    event_kind: Mapped[str] = mapped_column(StorableString(128))
    run_uuid: Mapped[str | None] = mapped_column(StorableString(36))
    #: fired | error
    outcome: Mapped[str] = mapped_column(StorableString(16))
    reason: Mapped[str | None] = mapped_column(StorableText)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    trigger_version: Mapped[int | None] = mapped_column(Integer)


class Outbox(Base):
    """Runs committed but maybe not yet published to Celery; the relay drains what is left."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "published", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(StorableString(36), unique=True)
    task_name: Mapped[str] = mapped_column(StorableString(256))
    queue: Mapped[str] = mapped_column(StorableString(256))
    agent: Mapped[str] = mapped_column(StorableString(64))
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(StorableText)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: A scheduled run's start time (Celery's ``eta``), kept for every re-send.
    eta: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Cursor(Base):
    """Named watermarks (reconciler position, later the pollers')."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(StorableString(128), primary_key=True)
    value: Mapped[str] = mapped_column(StorableString(256))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JoinArm(Base):
    """One event an AND-join trigger has seen and not yet used: the partially satisfied
    state of ``trigger_on_finish=[a, b]`` / ``trigger_on=[x, y]``, kept in SQL so it
    survives restarts. Unique per (trigger, dedup key): a redelivered event arms once."""

    __tablename__ = "join_arms"
    __table_args__ = (UniqueConstraint("trigger_id", "dedup_key", name="uq_join_arms_key"),
                      Index("ix_join_arms_state", "trigger_id", "state", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    trigger_id: Mapped[int] = mapped_column(ForeignKey("triggers.id", ondelete="CASCADE"))
    input_key: Mapped[str] = mapped_column(StorableString(256))
    dedup_key: Mapped[str] = mapped_column(StorableString(256))
    event_id: Mapped[str] = mapped_column(StorableString(64))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: armed | consumed (by ``firing_id``) | expired (by the trigger's reset)
    state: Mapped[str] = mapped_column(StorableString(16))
    firing_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- pipelines (migration 0004) ----------------------------------------------------------


class Pipeline(Base):
    """The spec a pipeline run was started with; its state is the status of its runs."""

    __tablename__ = "pipelines"

    run_uuid: Mapped[str] = mapped_column(StorableString(36), primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(128))
    namespace: Mapped[str] = mapped_column(StorableString(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# Runs: the poller's watermark, and "known project" look-ups.
Index("ix_runs_updated", Run.__table__.c.updated_at, Run.__table__.c.id)
Index("ix_runs_ns_project", Run.__table__.c.namespace, Run.__table__.c.project)
