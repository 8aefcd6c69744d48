"""SQL for the model and dataset registries, and the poller's reads.

Every change made through the API commits the row, its new emitted state and the event row
in one transaction (the entity row locked), so the event exists exactly when the change
does. The poller reads rows by an indexed ``(updated_at, id)`` watermark and re-checks a
row under the same lock before emitting, so a change is emitted once, by whichever path
sees it first.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, or_, select, update

from taskq.core import events as ev
from taskq.core import model_metrics
from taskq.core import watched as entities
from taskq.core.stored import Change, Watermark
from taskq.core.times import utcnow
from taskq.core.watched import Family
from taskq.errors import NotFound
from taskq.store.base import StoreBase
from taskq.store.entity_models import EntityState, RegisteredDataset, RegisteredModel
from taskq.store.models import JobTemplate, Run

MODELS = cast(Table, RegisteredModel.__table__)
DATASETS = cast(Table, RegisteredDataset.__table__)
STATES = cast(Table, EntityState.__table__)
RUNS_T = cast(Table, Run.__table__)
TEMPLATES = cast(Table, JobTemplate.__table__)
REGISTRY_TABLES = {Family.MODELS: MODELS, Family.DATASETS: DATASETS}



def _row_dict(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    m["metadata"] = m.pop("metadata", None) or {}
    return m


class RegistryMixin(StoreBase):
    #: Rows the poller's reads returned, since this Store was built (benchmarks read it).
    poll_rows_read = 0

    # -- API writes ---------------------------------------------------------------------

    def register_entity(self, family: Family, *, namespace: str, name: str,
                        project: str | None, version: str | None, tags: Sequence[str],
                        uri: str | None, metadata: dict[str, Any], published: bool
                        ) -> tuple[dict[str, Any], ev.Event | None]:
        now = utcnow()
        entity_id = uuid.uuid4().hex
        with self.tx() as conn:
            conn.execute(insert(REGISTRY_TABLES[family]), dict(
                id=entity_id, namespace=namespace, name=name, project=project,
                version=version, tags=entities.clean_tags(tags), uri=uri, metadata=metadata,
                published=published, published_at=now if published else None,
                archived=False, created_at=now, updated_at=now))
            event = self._emit_registry_change(conn, family, entity_id, "api", now)
            view = self._entity_view(conn, family, entity_id)
        return view, event

    def change_entity(self, family: Family, entity_id: str, namespace: str, change: Change
                      ) -> tuple[dict[str, Any], ev.Event | None]:
        """Apply ``change`` to the locked row; emit the event if anything watched moved."""
        table = REGISTRY_TABLES[family]
        now = utcnow()
        with self.tx() as conn:
            row = conn.execute(self._for_update(select(table).where(
                table.c.id == entity_id, table.c.namespace == namespace))).first()
            if row is None:
                raise NotFound(f"id: no {entities.SINGULAR[family]} {entity_id!r} in "
                               f"namespace {namespace!r}")
            values = change(_row_dict(row))
            if values:
                conn.execute(update(table).where(table.c.id == entity_id)
                             .values(**values, updated_at=now))
            event = self._emit_registry_change(conn, family, entity_id, "api", now)
            view = self._entity_view(conn, family, entity_id)
        return view, event

    def log_model_metric(self, entity_id: str, namespace: str, name: str, value: float,
                         step: int | None) -> tuple[dict[str, Any], ev.Event]:
        """Store the value on the locked model row and its event in one commit. Metrics are
        not watched state: the poller never emits them, and no ``model_updated`` follows."""
        now = utcnow()
        with self.tx() as conn:
            row = conn.execute(self._for_update(select(MODELS).where(
                MODELS.c.id == entity_id, MODELS.c.namespace == namespace))).first()
            if row is None:
                raise NotFound(f"id: no model {entity_id!r} in namespace {namespace!r}")
            before = dict(row.metrics or {})
            metrics = model_metrics.updated(before, name, value, step, now)
            conn.execute(update(MODELS).where(MODELS.c.id == entity_id)
                         .values(metrics=metrics, updated_at=now))
            view = self._entity_view(conn, Family.MODELS, entity_id)
            event = model_metrics.event(view, name, value, step, before.get(name), now)
            self._insert_event(conn, event, previous=None)
        return view, event

    def sync_entity(self, family: Family, entity_id: str) -> ev.Event | None:
        """The poller found a row that differs from its emitted state: emit it (once)."""
        table = REGISTRY_TABLES[family]
        with self.tx() as conn:
            locked = conn.execute(self._for_update(
                select(table.c.id).where(table.c.id == entity_id))).first()
            if locked is None:
                return None
            return self._emit_registry_change(conn, family, entity_id, "poll", utcnow())

    def _emit_registry_change(self, conn: Connection, family: Family, entity_id: str,
                              source: str, now: datetime) -> ev.Event | None:
        table = REGISTRY_TABLES[family]
        row = conn.execute(select(table).where(table.c.id == entity_id)).one()
        state = conn.execute(select(STATES.c.revision, STATES.c.state).where(
            STATES.c.family == family.value, STATES.c.entity_id == entity_id)).first()
        data = _row_dict(row)
        new = entities.snapshot(data)
        revision = (state.revision if state else 0) + 1
        event = entities.registry_event(family, entities.entity_view(data),
                                        state.state if state else None, new,
                                        revision=revision, source=source, at=now)
        if event is None:
            return None
        self._save_state(conn, family, entity_id, data["namespace"], revision, new, now)
        self._insert_event(conn, event, previous=None)
        return event

    def _save_state(self, conn: Connection, family: Family, entity_id: str, namespace: str,
                    revision: int, state: dict[str, Any], now: datetime) -> None:
        values = dict(namespace=namespace, revision=revision, state=state, updated_at=now)
        stmt = self._insert_ignore(STATES).values(family=family.value, entity_id=entity_id,
                                                  **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["family", "entity_id"],
                                                set_=values))

    # -- reads --------------------------------------------------------------------------

    def _entity_view(self, conn: Connection, family: Family, entity_id: str
                     ) -> dict[str, Any]:
        table = REGISTRY_TABLES[family]
        return entities.entity_view(_row_dict(conn.execute(
            select(table).where(table.c.id == entity_id)).one()))

    def get_entity(self, family: Family, entity_id: str, namespace: str
                   ) -> dict[str, Any] | None:
        table = REGISTRY_TABLES[family]
        with self.read() as conn:
            row = conn.execute(select(table).where(table.c.id == entity_id,
                                                   table.c.namespace == namespace)).first()
        return entities.entity_view(_row_dict(row)) if row else None

    def list_entities(self, family: Family, *, namespace: str, project: str | None = None,
                      name: str | None = None, published: bool | None = None,
                      archived: bool | None = False, limit: int = 100
                      ) -> list[dict[str, Any]]:
        table = REGISTRY_TABLES[family]
        stmt = select(table).where(table.c.namespace == namespace)
        if project is not None:
            stmt = stmt.where(table.c.project == project)
        if name is not None:
            stmt = stmt.where(table.c.name == name)
        if published is not None:
            stmt = stmt.where(table.c.published.is_(published))
        if archived is not None:
            stmt = stmt.where(table.c.archived.is_(archived))
        stmt = stmt.order_by(table.c.updated_at.desc(), table.c.id.desc()).limit(limit)
        with self.read() as conn:
            return [entities.entity_view(_row_dict(r)) for r in conn.execute(stmt)]

    # -- the poller's reads -------------------------------------------------------------

    def changed_since(self, family: Family, mark: Watermark, limit: int) -> list[dict[str, Any]]:
        """Rows after ``mark`` in (updated_at, id) order: an index range scan, so the rows
        read follow the rows changed, not the table's size."""
        table = RUNS_T if family == Family.RUNS else REGISTRY_TABLES[family]
        cols = ([table.c.id, table.c.uuid, table.c.namespace, table.c.status, table.c.tags,
                 table.c.metrics, table.c.updated_at] if family == Family.RUNS
                else list(table.c))
        last: Any = (int(mark.id) if mark.id else 0) if family == Family.RUNS else mark.id
        stmt = (select(*cols).where(table.c.updated_at >= mark.at,
                                    or_(table.c.updated_at > mark.at, table.c.id > last))
                .order_by(table.c.updated_at, table.c.id).limit(limit))
        with self.read() as conn:
            rows = [_row_dict(r) for r in conn.execute(stmt)]
        self.poll_rows_read += len(rows)
        return rows

    def emitted_states(self, family: Family, ids: Sequence[str]
                       ) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        with self.read() as conn:
            rows = conn.execute(select(STATES.c.entity_id, STATES.c.state).where(
                STATES.c.family == family.value, STATES.c.entity_id.in_(list(ids)))).all()
        self.poll_rows_read += len(rows)
        return {r.entity_id: r.state for r in rows}

    def count_entities(self, family: Family) -> int:
        table = RUNS_T if family == Family.RUNS else REGISTRY_TABLES[family]
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
