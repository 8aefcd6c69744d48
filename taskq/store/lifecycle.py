"""SQL for the statuses no Celery signal gives: a stopped or failed run resumed, a waiting
run approved or invalidated, and runs queued on a queue no live worker consumes (the beat
sweep's ``unschedulable``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from taskq import constants
from taskq.core import events as ev
from taskq.core.statuses import APPROVAL_WAITING, APPROVED, INVALIDATED, RESUMABLE, Status
from taskq.core.stored import OutboxItem
from taskq.core.times import aware as _aware
from taskq.core.times import utcnow
from taskq.store.base import OUTBOX, RUN_SUMMARY_COLUMNS, RUNS, StoreBase, run_summary


class LifecycleMixin(StoreBase):
    def resume_run(self, uuid: str, reason: str) -> tuple[list[ev.Event], OutboxItem] | None:
        """A stopped or failed run goes ``resuming`` then ``queued`` as a new incarnation
        (its attempt counter starts again), both events and the outbox row reset in one
        commit: a compare-and-set on the final status read, so of two resumes racing one
        applies. The start claim refuses any message of an older incarnation. None if the
        run is not a job run in a resumable status."""
        with self.tx() as conn:
            row = conn.execute(self._for_update(
                select(RUNS.c.status, RUNS.c.job, RUNS.c.queue, RUNS.c.params, RUNS.c.kind,
                       RUNS.c.pipeline_uuid, RUNS.c.tags, RUNS.c.approval)
                .where(RUNS.c.uuid == uuid))).first()
            if (row is None or Status(row.status) not in RESUMABLE or row.kind != "job"
                    or row.pipeline_uuid is not None
                    or constants.LOCAL_TAG in (row.tags or [])):
                return None
            now = utcnow()
            updated = conn.execute(
                update(RUNS).where(RUNS.c.uuid == uuid, RUNS.c.status == row.status)
                .values(status=Status.QUEUED.value, status_reason=reason, attempts=0,
                        incarnation=RUNS.c.incarnation + 1, started_at=None,
                        finished_at=None, worker=None, updated_at=now,
                        # A run stopped while it waited: resuming it is the approval.
                        approval=APPROVED if row.approval == APPROVAL_WAITING
                        else row.approval)
                .returning(*RUN_SUMMARY_COLUMNS)).first()
            if updated is None:  # lost a race on PostgreSQL without the row lock
                return None
            summary = run_summary(updated)
            events = []
            for before, status in ((Status(row.status), Status.RESUMING),
                                   (Status.RESUMING, Status.QUEUED)):
                events.append(ev.run_status_event(
                    event_id=ev.new_event_id(), status=status, timestamp=now,
                    run={**summary, "status": status.value, "previous_status": before.value}))
                self._insert_event(conn, events[-1], previous=before.value)
            item = self._reset_outbox(conn, uuid, row, summary["incarnation"], now)
        return events, item

    def decide_approval(self, uuid: str, *, approve: bool, actor: str, reason: str | None
                        ) -> tuple[list[ev.Event], OutboxItem | None] | None:
        """A waiting run approved — its ``run_approved_actor`` event, then ``compiled`` and
        ``queued`` (``scheduled`` with an eta), its outbox row released to be sent — or
        invalidated — ``run_invalidated_actor``, then ``skipped``, its outbox row gone — in
        one commit: a compare-and-set on ``created`` and ``waiting`` (the row locked on
        PostgreSQL), so of racing decisions one applies. None if it is not waiting."""
        waiting = (RUNS.c.uuid == uuid, RUNS.c.status == Status.CREATED.value,
                   RUNS.c.approval == APPROVAL_WAITING)
        with self.tx() as conn:
            row = conn.execute(self._for_update(
                select(*RUN_SUMMARY_COLUMNS).where(*waiting))).first()
            box = conn.execute(select(OUTBOX.c.task_name, OUTBOX.c.queue, OUTBOX.c.agent,
                                      OUTBOX.c.eta).where(OUTBOX.c.run_uuid == uuid)).first()
            if row is None:
                return None
            now = utcnow()
            final = (Status.SKIPPED if not approve else
                     Status.SCHEDULED if box is not None and box.eta is not None
                     else Status.QUEUED)
            values: dict[str, object] = dict(
                status=final.value, approval=APPROVED if approve else INVALIDATED,
                updated_at=now)
            if not approve:
                values.update(status_reason=reason, finished_at=now)
            updated = conn.execute(update(RUNS).where(*waiting).values(**values)
                                   .returning(*RUN_SUMMARY_COLUMNS)).first()
            if updated is None:  # lost a race on PostgreSQL without the row lock
                return None
            decided = ev.run_event(
                event_id=ev.new_event_id(), timestamp=now, run=run_summary(row),
                kind="run_approved_actor" if approve else "run_invalidated_actor",
                fields={"actor": actor, "reason": reason})
            self._insert_event(conn, decided, previous=None)
            steps = (((Status.CREATED, Status.COMPILED), (Status.COMPILED, final)) if approve
                     else ((Status.CREATED, final),))
            summary = run_summary(updated)
            events = [decided, *(self._insert_status_event(conn, summary, before, status, now)
                                 for before, status in steps)]
            item = None
            if not approve:
                conn.execute(delete(OUTBOX).where(OUTBOX.c.run_uuid == uuid))
            elif box is not None:
                # From now on the relay's: a crash before the send below is sent by it.
                conn.execute(update(OUTBOX).where(OUTBOX.c.run_uuid == uuid)
                             .values(created_at=now, published=False))
                item = OutboxItem(run_uuid=uuid, task_name=box.task_name, queue=box.queue,
                                  agent=box.agent, params=summary["params"], attempts=0,
                                  incarnation=summary["incarnation"], eta=_aware(box.eta))
        return events, item

    def _reset_outbox(self, conn: Connection, uuid: str, row: object, incarnation: int,
                      now: datetime) -> OutboxItem:
        values = dict(published=False, attempts=0, last_error=None, created_at=now,
                      published_at=None, eta=None)
        conn.execute(update(OUTBOX).where(OUTBOX.c.run_uuid == uuid).values(**values))
        box = conn.execute(select(OUTBOX.c.task_name, OUTBOX.c.queue, OUTBOX.c.agent)
                           .where(OUTBOX.c.run_uuid == uuid)).first()
        job, queue, params = (getattr(row, k) for k in ("job", "queue", "params"))
        if box is None:  # a dev run that never went through the outbox
            box_values = dict(task_name=constants.job_task_name(job), queue=queue,
                              agent="default")
            conn.execute(insert(OUTBOX), dict(run_uuid=uuid, **box_values, **values))
            task_name, agent = box_values["task_name"], "default"
        else:
            task_name, queue, agent = box.task_name, box.queue, box.agent
        return OutboxItem(run_uuid=uuid, task_name=task_name, queue=queue, agent=agent,
                          params=params or {}, attempts=0, incarnation=incarnation)

    def queued_before(self, *, before: datetime,
                      limit: int = 500) -> list[tuple[str, str, int]]:
        """(uuid, queue, incarnation) of runs ``queued`` since before ``before``: the
        unschedulable sweep asks whether a live worker consumes each queue."""
        stmt = (select(RUNS.c.uuid, RUNS.c.queue, RUNS.c.incarnation)
                .where(RUNS.c.status == Status.QUEUED.value, RUNS.c.updated_at < before)
                .order_by(RUNS.c.id).limit(limit))
        with self.read() as conn:
            return [(r.uuid, r.queue, int(r.incarnation or 0)) for r in conn.execute(stmt)]
