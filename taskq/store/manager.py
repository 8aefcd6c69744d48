"""Every SQL statement taskq runs. Callers get plain dicts and dataclasses, never sessions.

The methods that matter for exactly-once are :meth:`Store.transition` (a compare-and-set on
the run's status plus the event row, in one transaction) and :meth:`Store.record_firing`
(firing row, cloned run and outbox row in one transaction, the firing unique per
(trigger, dedup key)).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from taskq.core import events as ev
from taskq.core.planning import Delivery, FiringWrite, NewRun
from taskq.core.statuses import ACTIVE, FINAL, Status, allowed_from, check_transition
from taskq.core.stored import FiringRecord, OutboxItem, StoredRun, Transition, TriggerRef
from taskq.core.times import iso as _iso
from taskq.core.times import utcnow
from taskq.errors import AlreadyExists, NotFound
from taskq.store.base import (
    RUN_SUMMARY_COLUMNS,
    RUNS,
    Rows,
    StoreBase,
    not_waiting,
    run_summary,
    stored_run,
)
from taskq.store.delivery import DeliveryMixin
from taskq.store.entity_runs import EntityRunsMixin
from taskq.store.joins import JoinsMixin
from taskq.store.lifecycle import LifecycleMixin
from taskq.store.models import Cursor, Firing, Outbox, Run, RunEvent
from taskq.store.names import NamesMixin
from taskq.store.outbox import OutboxMixin
from taskq.store.pipelines import PipelinesMixin
from taskq.store.triggers import TriggersMixin

__all__ = ["AlreadyExists", "FiringRecord", "NotFound", "OutboxItem", "Store", "Transition",
           "run_summary", "utcnow"]


class Store(TriggersMixin, OutboxMixin, DeliveryMixin, PipelinesMixin, EntityRunsMixin,
            JoinsMixin, NamesMixin, LifecycleMixin, StoreBase):
    """The one SQL adapter: runs and events here; triggers, the outbox, joins, pipelines
    and watched entities in the mixins it combines (one engine, one set of tables)."""

    # -- runs -----------------------------------------------------------------------------
    def create_run(self, *, uuid: str, job: str, namespace: str, project: str | None,
                   queue: str, agent: str, task_name: str, params: dict[str, Any],
                   tags: Sequence[str] = (), trigger_context: dict[str, Any] | None = None,
                   outbox: bool = True, eta: datetime | None = None,
                   approval: bool = False) -> list[ev.Event]:
        """A manual run: the run, its compiled and queued (or scheduled) events and its
        outbox row in one transaction (no outbox row for a run executed in the calling
        process: ``taskq run``). With ``approval`` it waits ``created``, its row held."""
        with self.tx() as conn:
            events = self._insert_run(conn, uuid=uuid, job=job, namespace=namespace,
                                      project=project, queue=queue, params=params, tags=tags,
                                      trigger_context=trigger_context, eta=eta,
                                      approval=approval)
            if outbox:
                self._insert_outbox(conn, run_uuid=uuid, task_name=task_name, queue=queue,
                                    agent=agent, eta=eta)
        return events

    def get_run(self, uuid: str) -> StoredRun | None:
        with self.read() as conn:
            row = conn.execute(select(Run).where(Run.uuid == uuid)).first()
        return stored_run(row) if row else None

    def list_runs(self, *, job: str | None = None, namespace: str | None = None,
                  status: str | None = None, trigger: str | None = None,
                  limit: int = 50) -> list[StoredRun]:
        stmt = select(Run).order_by(Run.id.desc()).limit(limit)
        if job:
            stmt = stmt.where(Run.job == job)
        if namespace:
            stmt = stmt.where(Run.namespace == namespace)
        if status:
            stmt = stmt.where(Run.status == status)
        if trigger:
            stmt = stmt.where(Run.trigger_name == trigger)
        with self.read() as conn:
            return [stored_run(r) for r in conn.execute(stmt)]

    def transition(self, uuid: str, new: Status, *, reason: str | None = None,
                   outputs: dict[str, Any] | None = None,
                   metrics: list[dict[str, Any]] | None = None,
                   event_id: str | None = None,
                   attempt: int | None = None,
                   only_from: frozenset[Status] | None = None,
                   incarnation: int | None = None,
                   worker: str | None = None,
                   via: Sequence[Status] = ()) -> Transition | None:
        """Apply ``new`` if the lifecycle allows it; write the event row in the same commit.

        ``attempt`` (1 for the first delivery, Celery's ``retries + 1`` after) makes worker
        signals exact: RUNNING is claimed only by the next attempt, so a redelivered message
        for an attempt that already started is refused; other statuses apply only from the
        attempt that is current. Returns None when the change does not apply (a duplicate or
        late signal): the normal, idempotent outcome, not an error. ``incarnation`` (the
        message's) must equal the run's: a stale message of a run that a trigger re-enqueued
        (``reuse_task``) is refused. ``worker`` (at RUNNING) names the claiming worker.
        ``via``: statuses passed through on the way, each its own event row in this commit
        (those the run is already past are left out): the start claim writes ``starting``
        and ``initializing`` this way, and the worker-lost sweep ``unknown``, at no extra
        transaction.
        """
        now = utcnow()
        with self.tx() as conn:
            row = conn.execute(self._for_update(
                select(RUNS.c.status, RUNS.c.outputs, RUNS.c.metrics, RUNS.c.attempts,
                       RUNS.c.incarnation)
                .where(RUNS.c.uuid == uuid))).first()
            if row is None:
                return None
            if incarnation is not None and (row.incarnation or 0) != incarnation:
                return None
            current = Status(row.status)
            if only_from is not None and current not in only_from:
                return None
            if attempt is not None:
                expected = attempt - 1 if new == Status.RUNNING else attempt
                if row.attempts != expected:
                    return None
            # A retry may start before the previous attempt's RETRYING commits: the attempt
            # counter, not the status, proves it is a new start.
            new_attempt = (new == Status.RUNNING and attempt is not None
                           and current in ACTIVE)
            passed: list[Status] = []
            if not new_attempt:
                for step in via:
                    at = passed[-1] if passed else current
                    if at != step and at in allowed_from(step) and (
                            step in allowed_from(new)):
                        passed.append(step)
                last = passed[-1] if passed else current
                if last == new or last not in allowed_from(new):
                    return None
                check_transition(last, new)
            values: dict[str, Any] = {"status": new.value, "updated_at": now}
            if reason is not None or new in FINAL or new == Status.RUNNING:
                values["status_reason"] = reason
            if new == Status.RUNNING:
                values["started_at"] = now
                values["attempts"] = RUNS.c.attempts + 1
                values["worker"] = worker
            if new in FINAL:
                values["finished_at"] = now
            if outputs:
                values["outputs"] = {**(row.outputs or {}), **outputs}
            if metrics:
                values["metrics"] = [*(row.metrics or []), *metrics]
            updated = conn.execute(
                update(RUNS).where(RUNS.c.uuid == uuid, RUNS.c.status == current.value)
                .values(**values).returning(*RUN_SUMMARY_COLUMNS)).first()
            if updated is None:  # lost a race on PostgreSQL without the row lock
                return None
            summary = run_summary(updated)
            earlier, rows = [], []
            for before, step in zip([current, *passed], passed, strict=False):
                step_run = {**summary, "status": step.value,
                            "previous_status": before.value}
                earlier.append(ev.run_status_event(event_id=ev.new_event_id(), run=step_run,
                                                   status=step, timestamp=now))
                rows.append((earlier[-1], before.value))
            previous = passed[-1] if passed else current
            summary["previous_status"] = previous.value
            event = ev.run_status_event(event_id=event_id or ev.new_event_id(), run=summary,
                                        status=new, timestamp=now)
            self._insert_events(conn, [*rows, (event, previous.value)])
        return Transition(run=summary, event=event, earlier=tuple(earlier))

    def save_progress(self, uuid: str, *, outputs: dict[str, Any] | None = None,
                      metrics: list[dict[str, Any]] | None = None) -> None:
        with self.tx() as conn:
            row = conn.execute(self._for_update(
                select(Run.outputs, Run.metrics).where(Run.uuid == uuid))).first()
            if row is None:
                return
            values: dict[str, Any] = {"updated_at": utcnow()}
            if outputs:
                values["outputs"] = {**(row.outputs or {}), **outputs}
            if metrics:
                values["metrics"] = [*(row.metrics or []), *metrics]
            conn.execute(update(Run).where(Run.uuid == uuid).values(**values))

    # -- run events: the reconciler's side ------------------------------------------------

    def unconfirmed_events(self, *, older_than: datetime, after_id: int,
                           limit: int = 500) -> list[tuple[int, ev.Event]]:
        stmt = (select(RunEvent.id, RunEvent.body).where(
            RunEvent.confirmed.is_(False), RunEvent.id > after_id,
            RunEvent.created_at < older_than).order_by(RunEvent.id).limit(limit))
        with self.read() as conn:
            return [(i, ev.Event.model_validate(body)) for i, body in conn.execute(stmt)]

    def confirm_events(self, event_ids: Sequence[str]) -> int:
        if not event_ids:
            return 0
        with self.tx() as conn:
            res = conn.execute(update(RunEvent).where(
                RunEvent.event_id.in_(list(event_ids)), RunEvent.confirmed.is_(False))
                .values(confirmed=True))
            return int(res.rowcount or 0)

    def oldest_unconfirmed_id(self) -> int | None:
        with self.read() as conn:
            return conn.execute(select(func.min(RunEvent.id)).where(
                RunEvent.confirmed.is_(False))).scalar()

    def max_event_id(self, created_before: datetime | None = None) -> int:
        stmt = select(func.coalesce(func.max(RunEvent.id), 0))
        if created_before is not None:
            stmt = stmt.where(RunEvent.created_at < created_before)
        with self.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def run_events(self, run_uuid: str) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(select(RunEvent).where(RunEvent.run_uuid == run_uuid)
                                .order_by(RunEvent.id))
            return [{"event_id": r.event_id, "kind": r.kind, "status": r.status,
                     "previous_status": r.previous_status, "at": _iso(r.created_at)}
                    for r in rows]

    def get_cursor(self, name: str) -> str | None:
        with self.read() as conn:
            return conn.execute(select(Cursor.value).where(Cursor.name == name)).scalar()

    def set_cursor(self, name: str, value: str) -> None:
        now = utcnow()
        stmt = self._insert_ignore(Cursor).values(name=name, value=value, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["name"],
                                          set_={"value": value, "updated_at": now})
        with self.tx() as conn:
            conn.execute(stmt)

    # -- firings and the outbox -----------------------------------------------------------

    def record_firing(self, *, trigger: TriggerRef, dedup_key: str, event: ev.Event,
                      run: NewRun | None, outbox: Delivery | None,
                      error: str | None = None, skipped: str | None = None) -> FiringRecord:
        """Firing row + cloned run + outbox row, atomically; a repeat returns the first."""
        with self.tx() as conn:
            return self._record_firing_in(conn, trigger=trigger, dedup_key=dedup_key,
                                          event=event, run=run, outbox=outbox, error=error,
                                          skipped=skipped)

    def record_firings(self, writes: Sequence[FiringWrite]) -> list[FiringRecord]:
        """A batch of single firings in one transaction (one commit, not one each); a
        repeat within the batch or of an earlier one returns the first, as alone."""
        rows: Rows = {}
        with self.tx() as conn:
            records = [self._record_firing_in(
                conn, trigger=w.trigger, dedup_key=w.dedup_key, event=w.event, run=w.plan.run,
                outbox=w.plan.outbox, error=w.plan.error, skipped=w.plan.skipped, rows=rows)
                for w in writes]
            self._insert_rows(conn, rows)  # runs, events, outbox: one statement each
            return records

    def record_event(self, event: ev.Event) -> bool:
        """Commit an event that is not a run-status change (a published event, a registry
        change) so the reconciler can re-emit it if its XADD is lost. False if an event
        with this id was already recorded (a client retrying a publish)."""
        with self.tx() as conn:
            self._note_event_names(conn, [event])
            return self._insert_event(conn, event, previous=None, ignore_duplicate=True)

    def record_events(self, events: Sequence[ev.Event]) -> list[bool]:
        """:meth:`record_event` for a batch, in one transaction: for each, False if an
        event with its id was already recorded (before, or earlier in the batch)."""
        with self.tx() as conn:
            self._note_event_names(conn, events)
            return [self._insert_event(conn, e, previous=None, ignore_duplicate=True)
                    for e in events]

    def count(self, what: str) -> int:
        """Rows of a table; ``outbox_pending``: to be sent (held ones are approvals')."""
        table = {"runs": Run, "firings": Firing, "outbox_pending": Outbox,
                 "run_events": RunEvent}[what]
        stmt = select(func.count()).select_from(table)
        if what == "outbox_pending":
            stmt = stmt.join(Run, Run.uuid == Outbox.run_uuid).where(
                Outbox.published.is_(False), not_waiting(Run.approval))
        with self.read() as conn:
            return int(conn.execute(stmt).scalar_one())

