"""The registries' tables (models, datasets) and the state the poller last emitted for
each watched entity. Their own module to keep :mod:`taskq.store.models` a page; they share
its ``Base``, and :mod:`taskq.store.registry` imports them, so ``Base.metadata`` always has
them once the store is loaded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from taskq.store.models import Base
from taskq.store.types import StorableString, StorableText

# -- registries: models, datasets, polling (migration 0005) ------------------------------


class _RegistryEntity:
    """Columns shared by models and datasets. ``updated_at`` is the change watermark: any
    writer (taskq's API, or plain SQL) must set it to the current UTC time on every change,
    so the poller sees the row (docs/entity-triggers.md)."""

    id: Mapped[str] = mapped_column(StorableString(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(StorableString(64))
    name: Mapped[str] = mapped_column(StorableString(256))
    project: Mapped[str | None] = mapped_column(StorableString(128))
    version: Mapped[str | None] = mapped_column(StorableString(64))
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    uri: Mapped[str | None] = mapped_column(StorableText)
    #: ``metadata`` is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegisteredModel(_RegistryEntity, Base):
    __tablename__ = "models"
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # latest of each, 0011
    __table_args__ = (Index("ix_models_updated", "updated_at", "id"),
                      Index("ix_models_ns_project", "namespace", "project", "name"))


class RegisteredDataset(_RegistryEntity, Base):
    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_updated", "updated_at", "id"),
                      Index("ix_datasets_ns_project", "namespace", "project", "name"))


class EntityState(Base):
    """The state last emitted as an event for one model, dataset or run (for runs: tags and
    the metric summary; statuses are in ``run_events``). The poller compares a changed row
    with it, so a change the API already emitted is not emitted again, and a change made by
    another writer becomes exactly one event."""

    __tablename__ = "entity_states"

    family: Mapped[str] = mapped_column(StorableString(16), primary_key=True)
    entity_id: Mapped[str] = mapped_column(StorableString(64), primary_key=True)
    namespace: Mapped[str] = mapped_column(StorableString(64))
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventName(Base):
    """Each custom event name ever published in a namespace (``events.<name>``), kept apart
    from the event log so that telling a trigger "this name matches nothing yet" reads a
    short table, not every stored event; it outlives the events' retention."""

    __tablename__ = "event_names"

    namespace: Mapped[str] = mapped_column(StorableString(64), primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(256), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
