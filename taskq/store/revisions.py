"""Trigger revisions (written in the transaction of each change) and the reads
`taskq triggers explain` needs: the events of a window, and the firings, join arms and runs
that record what the evaluator did about them. None of this is on the evaluator's path."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Table,
    Text,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY

from taskq.core import events as ev
from taskq.core.logged import LoggedEvent
from taskq.core.revisions import Revision, change_source
from taskq.core.stored import StoredTrigger
from taskq.core.times import aware, utcnow
from taskq.store.base import FIRINGS, RUN_EVENTS, RUNS, StoreBase
from taskq.store.models import JoinArm, Trigger, TriggerRevision

REVISIONS = cast(Table, TriggerRevision.__table__)
_TRIGGERS = cast(Table, Trigger.__table__)
_ARMS = cast(Table, JoinArm.__table__)


class RevisionsMixin(StoreBase):
    def _revise(self, conn: Connection, trigger_id: int, action: str,
                source: str | None = None) -> None:
        """Keep the trigger row as this change left it (read in the change's transaction)."""
        t = conn.execute(select(_TRIGGERS).where(_TRIGGERS.c.id == trigger_id)).first()
        if t is None:
            return
        conn.execute(insert(REVISIONS), dict(
            trigger_id=t.id, name=t.name, namespace=t.namespace,
            version=t.version + (1 if action == "deleted" else 0), action=action,
            kind=t.kind, spec=t.spec or {}, job=t.job, params=t.params or {}, queue=t.queue,
            enabled=bool(t.enabled), quarantined=t.quarantined,
            source=source or change_source(), created_at=utcnow()))

    def _revise_created(self, conn: Connection, triggers: Sequence[StoredTrigger]) -> None:
        """The ``created`` revisions of triggers added together, in one statement."""
        if triggers:
            source, now = change_source(), utcnow()
            conn.execute(insert(REVISIONS), [dict(
                trigger_id=t.id, name=t.name, namespace=t.namespace, version=t.version,
                action="created", kind=t.kind, spec=t.spec, job=t.job, params=t.params,
                queue=t.queue, enabled=t.enabled, quarantined=None, source=source,
                created_at=now) for t in triggers])

    def trigger_revisions(self, name: str, namespace: str) -> list[Revision]:
        """Every revision of the triggers named ``name`` (an entry `taskq apply` replaced
        is a new trigger of the same name: its history goes on), oldest first."""
        stmt = (select(REVISIONS).where(REVISIONS.c.name == name,
                                        REVISIONS.c.namespace == namespace)
                .order_by(REVISIONS.c.id))
        with self.read() as conn:
            return [Revision(id=r.id, trigger_id=r.trigger_id, name=r.name,
                             namespace=r.namespace, version=r.version, action=r.action,
                             kind=r.kind, spec=r.spec or {}, job=r.job, params=r.params or {},
                             queue=r.queue, enabled=bool(r.enabled),
                             quarantined=r.quarantined, source=r.source,
                             at=aware(r.created_at) or utcnow())
                    for r in conn.execute(stmt)]

    # -- what explain reads ---------------------------------------------------------------

    def stored_events(self, *, namespaces: Sequence[str], since: datetime | None = None,
                      event_id: str | None = None, limit: int = 100,
                      before_id: int | None = None) -> list[tuple[int, ev.Event, bool]]:
        """Recorded events (newest ``limit`` before the position ``before_id``, returned
        oldest first): each one's position in the log, the event, and whether an evaluator
        has finished with it. A keyset page: no OFFSET, so an old page costs a new one's."""
        newest = select(RUN_EVENTS.c.id).where(RUN_EVENTS.c.namespace.in_(list(namespaces)))
        if event_id is not None:
            newest = newest.where(RUN_EVENTS.c.event_id == event_id)
        if since is not None:
            newest = newest.where(RUN_EVENTS.c.created_at >= since)
        if before_id is not None:
            newest = newest.where(RUN_EVENTS.c.id < before_id)
        # Positions first, then their rows: a planner that sorts what it selects (PostgreSQL
        # before its first ANALYZE) sorts integers, not every older body.
        page = newest.order_by(RUN_EVENTS.c.id.desc()).limit(limit).scalar_subquery()
        stmt = select(RUN_EVENTS.c.id, sql_cast(RUN_EVENTS.c.body, Text),
                      RUN_EVENTS.c.evaluated).where(RUN_EVENTS.c.id.in_(page)
                                                    ).order_by(RUN_EVENTS.c.id.desc())
        with self.read() as conn:
            rows = conn.execute(stmt).all()
        # The body as text, parsed and validated in one step (pydantic's JSON parser).
        return [(seq, ev.Event.model_validate_json(body), bool(evaluated))
                for seq, body, evaluated in reversed(rows)]

    def events_between(self, *, namespaces: Sequence[str], since: datetime,
                       until: datetime | None, after_id: int = 0, upto_id: int | None = None
                       ) -> list[LoggedEvent]:
        """Recorded events in a time range, in the order of record (by id), those after
        ``after_id`` up to ``upto_id``: what a replay walks, a window of positions at a
        time. A bounded id range, not ``ORDER BY id LIMIT``: a planner that misjudges the
        filters (PostgreSQL before its first ANALYZE) sorted every remaining row for each
        page. The database extracts the ref; the body stays JSON text, decoded only for
        the events that may match."""
        body = RUN_EVENTS.c.body
        stmt = select(RUN_EVENTS.c.id, RUN_EVENTS.c.namespace, RUN_EVENTS.c.kind,
                      body["ref"].as_string(), sql_cast(body, Text)).where(
            *self._window(namespaces, since, until), RUN_EVENTS.c.id > after_id)
        if upto_id is not None:
            stmt = stmt.where(RUN_EVENTS.c.id <= upto_id)
        with self.read() as conn:
            rows = conn.execute(stmt.order_by(RUN_EVENTS.c.id)).all()
        return [LoggedEvent.of(*r) for r in rows]

    def event_span(self, *, namespaces: Sequence[str], since: datetime,
                   until: datetime | None) -> tuple[int, int] | None:
        """The first and last position of the range's events (None when it has none)."""
        with self.read() as conn:
            lo, hi = conn.execute(select(func.min(RUN_EVENTS.c.id), func.max(RUN_EVENTS.c.id))
                                  .where(*self._window(namespaces, since, until))).one()
        return None if lo is None else (int(lo), int(hi))

    def _among(self, column: ColumnElement[Any], values: Sequence[str]
               ) -> ColumnElement[bool]:
        """``column IN values`` for a page's thousands of keys: on PostgreSQL one array
        parameter (``= ANY``), as rendering and binding each value cost more than the
        query; SQLite has no arrays, and binds its own quickly."""
        if self.dialect != "postgresql":
            return column.in_(list(values))
        return column == any_(bindparam(None, list(values), type_=ARRAY(String())))

    @staticmethod
    def _window(namespaces: Sequence[str], since: datetime, until: datetime | None
                ) -> list[ColumnElement[bool]]:
        return [RUN_EVENTS.c.namespace.in_(list(namespaces)), RUN_EVENTS.c.created_at >= since,
                *([RUN_EVENTS.c.created_at <= until] if until is not None else [])]

    def find_event(self, event_id: str) -> ev.Event | None:
        with self.read() as conn:
            body = conn.execute(select(RUN_EVENTS.c.body).where(
                RUN_EVENTS.c.event_id == event_id)).scalar()
        return ev.Event.model_validate(body) if body is not None else None

    def decision_records(self, trigger_ids: Sequence[int], dedup_keys: Sequence[str],
                         event_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The firings under ``dedup_keys``, the join arms of ``event_ids`` and the firings
        those arms were consumed by, and the runs of all those firings."""
        ids, keys, events = list(trigger_ids), list(dedup_keys), list(event_ids)
        with self.read() as conn:
            arms = [dict(r._mapping) for r in conn.execute(
                select(_ARMS.c.trigger_id, _ARMS.c.input_key, _ARMS.c.dedup_key,
                       _ARMS.c.event_id, _ARMS.c.event_at, _ARMS.c.state, _ARMS.c.firing_id,
                       _ARMS.c.event)
                .where(_ARMS.c.trigger_id.in_(ids),
                       or_(self._among(_ARMS.c.event_id, events), _ARMS.c.state == "armed")))]
            consumed = [a["firing_id"] for a in arms if a["firing_id"] is not None]
            firings = [dict(r._mapping) for r in conn.execute(
                select(FIRINGS).where(FIRINGS.c.trigger_id.in_(ids), or_(
                    self._among(FIRINGS.c.dedup_key, keys), FIRINGS.c.id.in_(consumed))))]
            uuids = [f["run_uuid"] for f in firings if f["run_uuid"]]
            runs = [dict(r._mapping) for r in conn.execute(
                select(RUNS.c.uuid, RUNS.c.status, RUNS.c.queue).where(
                    self._among(RUNS.c.uuid, uuids)))] if uuids else []
        return {"firings": firings, "arms": arms, "runs": runs}
