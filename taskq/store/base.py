"""The store's foundation: engine, transactions, and the write primitives that several
parts of the store share (a run with its queued event and outbox row, an event row, a
firing). Public methods live in :mod:`taskq.store.manager` and its mixins.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from taskq.core import events as ev
from taskq.core.planning import Delivery, NewRun
from taskq.core.statuses import APPROVAL_WAITING, RUN_STATUS_PREFIX, Status
from taskq.core.stored import FiringRecord, OutboxItem, StoredRun, StoredTrigger, TriggerRef
from taskq.core.times import aware as _aware
from taskq.core.times import iso as _iso
from taskq.core.times import utcnow
from taskq.store import outages
from taskq.store.engine import get_engine
from taskq.store.entity_models import EventName
from taskq.store.models import Firing, Outbox, Run, RunEvent

# Hot paths (status transitions, firings, the outbox) use Core tables, not ORM entities: the
# ORM's bulk-insert machinery costs about a millisecond per statement, which is the whole
# latency budget of a firing.
RUNS = cast(Table, Run.__table__)
RUN_EVENTS = cast(Table, RunEvent.__table__)
EVENT_NAMES = cast(Table, EventName.__table__)
FIRINGS = cast(Table, Firing.__table__)
OUTBOX = cast(Table, Outbox.__table__)
#: A batch's rows not inserted yet, per table (see ``_record_firing_in``).
Rows = dict[Table, list[dict[str, Any]]]

RUN_SUMMARY_COLUMNS = tuple(RUNS.c[name] for name in (
    "uuid", "job", "project", "namespace", "status", "status_reason", "queue", "params",
    "outputs", "tags", "trigger_name", "attempts", "created_at", "started_at", "finished_at",
    "incarnation", "kind", "pipeline_uuid", "op_name"))


def run_summary(row: Any) -> dict[str, Any]:
    """The run as it travels in events and reaches templates: JSON-safe, no metrics blob."""
    m = row._mapping
    started, finished, created = (_aware(m["started_at"]), _aware(m["finished_at"]),
                                  _aware(m["created_at"]))
    duration = (finished - started).total_seconds() if started and finished else None
    return {
        "uuid": m["uuid"], "job": m["job"], "project": m["project"],
        "namespace": m["namespace"], "status": m["status"], "reason": m["status_reason"],
        "queue": m["queue"], "params": m["params"] or {}, "outputs": m["outputs"] or {},
        "tags": list(m["tags"] or []), "trigger": m["trigger_name"], "attempts": m["attempts"],
        "created_at": _iso(created), "started_at": _iso(started),
        "finished_at": _iso(finished), "duration": duration,
        "incarnation": m["incarnation"] or 0,
        "kind": m["kind"] or "job", "pipeline": m["pipeline_uuid"], "op": m["op_name"],
    }


class StoreBase:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = get_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def is_outage(self, exc: BaseException) -> bool:
        return outages.is_outage(exc)

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(taskq_read_only=True)
            with conn.begin():
                yield conn

    def _insert_ignore(self, table: Any) -> Any:
        mod = postgresql if self.dialect == "postgresql" else sqlite
        return mod.insert(table)

    def _for_update(self, stmt: Any) -> Any:
        return stmt.with_for_update() if self.dialect == "postgresql" else stmt

    def _insert_run(self, conn: Connection, *, uuid: str, job: str, namespace: str,
                    project: str | None, queue: str, params: dict[str, Any],
                    tags: Sequence[str] = (), trigger: TriggerRef | None = None,
                    firing_id: int | None = None, event_ids: Sequence[str] = (),
                    trigger_context: dict[str, Any] | None = None,
                    eta: datetime | None = None, approval: bool = False,
                    rows: Rows | None = None) -> list[ev.Event]:
        """Insert a run that goes out through the outbox, hence already ``queued``
        (``scheduled`` with an ``eta``): its ``compiled`` and ``queued`` events, in order.

        The outbox row committed in the same transaction guarantees the Celery publish, so
        the run is queued from this commit on; recording it here (not in after_task_publish)
        keeps a write, and its row lock, off the path to the worker's start. Its params were
        resolved and checked before this insert, so ``compiled`` is an event row of the
        same commit, not a transaction of its own.

        A run that needs ``approval`` stays ``created`` (its one event) and ``waiting``; its
        outbox row, inserted by the caller, is held until ``Store.approve_run``.
        """
        now = utcnow()
        final = (Status.CREATED if approval else
                 Status.SCHEDULED if eta is not None else Status.QUEUED)
        self._put(conn, RUNS, dict(
            uuid=uuid, job=job, namespace=namespace, project=project, queue=queue,
            approval=APPROVAL_WAITING if approval else None,
            status=final.value, status_reason=None, params=params, outputs={}, metrics=[],
            tags=list(tags), celery_task_id=uuid,
            trigger_id=trigger.id if trigger else None,
            trigger_name=trigger.name if trigger else None,
            firing_id=firing_id, event_ids=list(event_ids), trigger_context=trigger_context,
            attempts=0, created_at=now, updated_at=now, started_at=None, finished_at=None,
        ), rows)
        summary = {
            "uuid": uuid, "job": job, "project": project, "namespace": namespace,
            "reason": None, "queue": queue, "params": params, "outputs": {},
            "tags": list(tags), "trigger": trigger.name if trigger else None, "attempts": 0,
            "created_at": now.isoformat(), "started_at": None, "finished_at": None,
            "duration": None, "incarnation": 0, "kind": "job", "pipeline": None, "op": None,
        }
        steps: tuple[tuple[Status | None, Status], ...] = (
            ((None, Status.CREATED),) if approval else
            ((Status.CREATED, Status.COMPILED), (Status.COMPILED, final)))
        return [self._insert_status_event(conn, summary, before, status, now, rows)
                for before, status in steps]

    def _insert_status_event(self, conn: Connection, summary: dict[str, Any],
                             before: Status | None, status: Status, now: datetime,
                             rows: Rows | None = None) -> ev.Event:
        """One status change of the run ``summary`` as an event row of this commit."""
        previous = before.value if before is not None else None
        event = ev.run_status_event(
            event_id=ev.new_event_id(), status=status, timestamp=now,
            run={**summary, "status": status.value, "previous_status": previous})
        self._put(conn, RUN_EVENTS, self._event_row(event, previous), rows)
        return event

    @staticmethod
    def _put(conn: Connection, table: Table, row: dict[str, Any], rows: Rows | None) -> None:
        """Insert the row now, or (``rows`` given) with the rest of its batch's rows."""
        if rows is None:
            conn.execute(insert(table), row)
        else:
            rows.setdefault(table, []).append(row)

    @staticmethod
    def _insert_rows(conn: Connection, rows: Rows) -> None:
        """A batch's deferred rows, one statement per table, parents first."""
        for table in (RUNS, RUN_EVENTS, OUTBOX):
            if rows.get(table):
                conn.execute(insert(table), rows[table])

    @staticmethod
    def _event_row(event: ev.Event, previous: str | None) -> dict[str, Any]:
        is_run = event.ref.startswith("runs.") and event.kind.startswith(RUN_STATUS_PREFIX)
        return dict(
            event_id=event.id, run_uuid=event.payload.get("uuid") if is_run else None,
            kind=event.kind, status=event.payload.get("status") if is_run else None,
            previous_status=previous, namespace=event.namespace,
            body=event.model_dump(mode="json"), created_at=event.timestamp, confirmed=False,
            evaluated=False)

    def _insert_events(self, conn: Connection,
                       events: Sequence[tuple[ev.Event, str | None]]) -> None:
        """Several events of one commit in one statement (a start claim's ``starting``,
        ``initializing`` and ``running``): one round trip, not one per status."""
        if events:
            conn.execute(insert(RUN_EVENTS), [self._event_row(e, p) for e, p in events])

    def _note_event_names(self, conn: Connection, events: Sequence[ev.Event]) -> None:
        """The custom event names among ``events``, each once (see ``EventName``)."""
        names = {(e.namespace, e.ref.partition(".")[2]): e.timestamp for e in events
                 if e.kind == ev.CUSTOM_EVENT_KIND and e.ref.startswith("events.")}
        if names:
            conn.execute(self._insert_ignore(EVENT_NAMES).on_conflict_do_nothing(
                index_elements=["namespace", "name"]),
                [{"namespace": ns, "name": name, "first_at": at}
                 for (ns, name), at in sorted(names.items())])

    def _insert_event(self, conn: Connection, event: ev.Event, *, previous: str | None,
                      ignore_duplicate: bool = False) -> bool:
        values = self._event_row(event, previous)
        if not ignore_duplicate:
            conn.execute(insert(RUN_EVENTS), values)
            return True
        stmt = self._insert_ignore(RUN_EVENTS).on_conflict_do_nothing(
            index_elements=["event_id"]).returning(RUN_EVENTS.c.id)
        return conn.execute(stmt, values).scalar() is not None

    def _record_firing_in(self, conn: Connection, *, trigger: TriggerRef, dedup_key: str,
                          event: ev.Event, run: NewRun | None,
                          outbox: Delivery | None, error: str | None = None,
                          skipped: str | None = None,
                          event_ids: Sequence[str] | None = None,
                          rows: Rows | None = None) -> FiringRecord:
        """The firing row (unique per trigger + dedup key), and with it the cloned run and
        its outbox row, inside the caller's transaction. A repeat returns the first.

        With ``rows``, the firing row is inserted now (its unique key decides at once, so a
        repeat inside a batch meets the first) and the run, event and outbox rows are left
        there for the caller to insert with the batch's (:meth:`_insert_rows`)."""
        firing_id = conn.execute(
            self._insert_ignore(FIRINGS)
            .on_conflict_do_nothing(index_elements=["trigger_id", "dedup_key"])
            .returning(FIRINGS.c.id),
            dict(trigger_id=trigger.id, dedup_key=dedup_key, event_id=event.id,
                 event_kind=event.kind, run_uuid=run.uuid if run else None,
                 outcome="error" if error else "skipped" if skipped else "fired",
                 reason=error or skipped, created_at=utcnow(),
                 trigger_version=trigger.version)).scalar()
        if firing_id is None:
            existing = conn.execute(select(FIRINGS.c.id, FIRINGS.c.run_uuid).where(
                FIRINGS.c.trigger_id == trigger.id, FIRINGS.c.dedup_key == dedup_key)).one()
            pending = existing.run_uuid is not None and self._unsent(conn, existing.run_uuid)
            return FiringRecord(existing.id, existing.run_uuid, False, pending)
        queued: list[ev.Event] = []
        if run is not None and outbox is not None:
            queued = self._insert_run(
                conn, uuid=run.uuid, job=run.job, namespace=run.namespace,
                project=run.project, queue=run.queue, params=run.params, tags=run.tags,
                trigger_context=run.trigger_context, firing_id=firing_id, trigger=trigger,
                event_ids=list(event_ids or [event.id]), approval=run.approval, rows=rows)
            self._insert_outbox(conn, run_uuid=run.uuid, task_name=outbox.task_name,
                                queue=outbox.queue, agent=outbox.agent, rows=rows)
        return FiringRecord(firing_id, run.uuid if run else None, True,
                            run is not None and not run.approval, tuple(queued), error)

    def _unsent(self, conn: Connection, run_uuid: str) -> bool:
        """The run's outbox row waits to be sent (not sent yet, not held for approval)."""
        return conn.execute(
            select(OUTBOX.c.id).join(RUNS, RUNS.c.uuid == OUTBOX.c.run_uuid)
            .where(OUTBOX.c.run_uuid == run_uuid, OUTBOX.c.published.is_(False),
                   not_waiting(RUNS.c.approval))).first() is not None

    def _insert_outbox(self, conn: Connection, *, run_uuid: str, task_name: str, queue: str,
                       agent: str, eta: datetime | None = None,
                       rows: Rows | None = None) -> None:
        self._put(conn, OUTBOX, dict(
            run_uuid=run_uuid, task_name=task_name, queue=queue, agent=agent,
            published=False, attempts=0, last_error=None, created_at=utcnow(),
            published_at=None, eta=eta), rows)

    def recent_before(self, seconds: float) -> datetime:
        return utcnow() - timedelta(seconds=seconds)


def not_waiting(column: Any) -> Any:
    """SQL: the run's approval is not ``waiting`` (its outbox row may be sent)."""
    return or_(column.is_(None), column != APPROVAL_WAITING)


def stored_run(r: Any) -> StoredRun:
    return StoredRun(
        uuid=r.uuid, job=r.job, project=r.project, namespace=r.namespace, status=r.status,
        reason=r.status_reason, queue=r.queue, params=r.params or {},
        outputs=r.outputs or {}, metrics=list(r.metrics or []), tags=list(r.tags or []),
        celery_task_id=r.celery_task_id, trigger_name=r.trigger_name,
        trigger_id=r.trigger_id, firing_id=r.firing_id, event_ids=list(r.event_ids or []),
        trigger_context=r.trigger_context, attempts=r.attempts,
        incarnation=r.incarnation or 0, kind=r.kind or "job",
        pipeline_uuid=r.pipeline_uuid, op_name=r.op_name, created_at=_iso(r.created_at),
        started_at=_iso(r.started_at), finished_at=_iso(r.finished_at),
        approval=getattr(r, "approval", None))


def stored_trigger(t: Any) -> StoredTrigger:
    return StoredTrigger(id=t.id, name=t.name, namespace=t.namespace, kind=t.kind,
                         spec=t.spec or {}, job=t.job, params=t.params or {}, queue=t.queue,
                         enabled=t.enabled, version=t.version, created_at=_iso(t.created_at),
                         failures=t.failures or 0, quarantined=t.quarantined,
                         quarantined_at=_iso(t.quarantined_at))


def _outbox_item(row: Any) -> OutboxItem:
    return OutboxItem(run_uuid=row.run_uuid, task_name=row.task_name, queue=row.queue,
                      agent=row.agent, params=row.params or {}, attempts=row.attempts,
                      incarnation=getattr(row, "incarnation", 0) or 0,
                      eta=_aware(getattr(row, "eta", None)))
