"""SQL for the statuses no Celery signal gives: a stopped or failed run resumed, and runs
queued on a queue no live worker consumes (the beat sweep's ``unschedulable``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from taskq import constants
from taskq.core import events as ev
from taskq.core.statuses import RESUMABLE, Status
from taskq.core.stored import OutboxItem
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
                       RUNS.c.pipeline_uuid, RUNS.c.tags)
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
                        finished_at=None, worker=None, updated_at=now)
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
