"""SQL for runs as watched entities: metrics and tags as events, the poller's re-check of a
run, and the launch of an entity trigger (firing, run or re-enqueue, outbox: one commit).

A run's status is already an event (``Store.transition``); what is emitted here is the rest
of its state: tags and the metric summary, compared with ``entity_states``. The first time,
the baseline is the tags its last status event carried and no metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from taskq.constants import job_task_name
from taskq.core import events as ev
from taskq.core import watched as entities
from taskq.core.statuses import FINAL, Status
from taskq.core.stored import FiringRecord, TriggerRef
from taskq.core.times import utcnow
from taskq.core.watched import Family
from taskq.store.base import FIRINGS, OUTBOX, RUN_EVENTS, RUN_SUMMARY_COLUMNS, RUNS, run_summary
from taskq.store.joins import TRIGGERS
from taskq.store.registry import STATES, RegistryMixin

#: Builds the launch inside the transaction: attributes run, outbox, error, skipped.
LaunchPlanner = Callable[[], Any]


class EntityRunsMixin(RegistryMixin):
    # -- metrics and tags (the immediate path) ------------------------------------------

    def append_metrics(self, run_uuid: str, points: Sequence[dict[str, Any]]
                       ) -> ev.Event | None:
        """Store logged values and, in the same commit, the ``run_metric`` event."""
        if not points:
            return None
        return self._change_run(run_uuid, lambda row: {
            "metrics": [*(row.metrics or []), *points]})

    def record_run_event(self, run_uuid: str, kind: str, fields: dict[str, Any]
                         ) -> ev.Event | None:
        """An event a running job emits about itself (``alert_*``, ``run_new_artifacts``),
        committed with the run's summary as it is now; None if there is no such run."""
        now = utcnow()
        with self.tx() as conn:
            row = conn.execute(select(*RUN_SUMMARY_COLUMNS).where(
                RUNS.c.uuid == run_uuid)).first()
            if row is None:
                return None
            event = ev.run_event(event_id=ev.new_event_id(), kind=kind, run=run_summary(row),
                                 fields=fields, timestamp=now)
            self._insert_event(conn, event, previous=None)
        return event

    def tag_run(self, run_uuid: str, add: Sequence[str] = (), remove: Sequence[str] = ()
                ) -> ev.Event | None:
        def change(row: Any) -> dict[str, Any]:
            tags = [t for t in entities.clean_tags([*(row.tags or []), *add])
                    if t not in set(remove)]
            return {"tags": tags} if tags != entities.clean_tags(row.tags) else {}

        return self._change_run(run_uuid, change)

    def _change_run(self, run_uuid: str, change: Callable[[Any], dict[str, Any]],
                    source: str = "api") -> ev.Event | None:
        now = utcnow()
        with self.tx() as conn:
            row = self._lock_run(conn, run_uuid)
            if row is None:
                return None
            values = change(row)
            if values:
                conn.execute(update(RUNS).where(RUNS.c.uuid == run_uuid)
                             .values(**values, updated_at=now))
                row = self._lock_run(conn, run_uuid)
            return self._emit_run_change(conn, row, source, now)

    def _lock_run(self, conn: Connection, run_uuid: str) -> Any:
        return conn.execute(self._for_update(
            select(*RUN_SUMMARY_COLUMNS, RUNS.c.metrics).where(RUNS.c.uuid == run_uuid))
        ).first()

    def _emit_run_change(self, conn: Connection, row: Any, source: str, now: datetime
                         ) -> ev.Event | None:
        state = conn.execute(select(STATES.c.revision, STATES.c.state).where(
            STATES.c.family == Family.RUNS.value, STATES.c.entity_id == row.uuid)).first()
        if state is not None:
            revision, prev = state.revision, state.state
        else:
            last = self._last_status_event(conn, row.uuid)
            tags = ((last.body or {}).get("payload") or {}).get("tags") if last else None
            revision, prev = 0, entities.run_state(tags if tags is not None else row.tags, [])
        new = entities.run_state(row.tags, row.metrics)
        summary = run_summary(row)
        event = entities.run_change_event(summary, prev, new, revision=revision + 1,
                                          source=source, at=now)
        if event is None:
            return None
        self._save_state(conn, Family.RUNS, row.uuid, row.namespace, revision + 1, new, now)
        self._insert_event(conn, event, previous=None)
        return event

    def _last_status_event(self, conn: Connection, run_uuid: str) -> Any:
        return conn.execute(select(RUN_EVENTS.c.status, RUN_EVENTS.c.body).where(
            RUN_EVENTS.c.run_uuid == run_uuid, RUN_EVENTS.c.status.is_not(None))
            .order_by(RUN_EVENTS.c.id.desc()).limit(1)).first()

    # -- the poller ---------------------------------------------------------------------

    def emitted_statuses(self, run_uuids: Sequence[str]
                         ) -> dict[str, tuple[str, list[str] | None]]:
        """Each run's last status event: its status and the tags it carried (what the
        event log already says about the run)."""
        if not run_uuids:
            return {}
        latest = (select(func.max(RUN_EVENTS.c.id))
                  .where(RUN_EVENTS.c.run_uuid.in_(list(run_uuids)),
                         RUN_EVENTS.c.status.is_not(None))
                  .group_by(RUN_EVENTS.c.run_uuid))
        with self.read() as conn:
            rows = conn.execute(select(RUN_EVENTS.c.run_uuid, RUN_EVENTS.c.status,
                                       RUN_EVENTS.c.body)
                                .where(RUN_EVENTS.c.id.in_(latest))).all()
        self.poll_rows_read += len(rows)
        return {r.run_uuid: (r.status, ((r.body or {}).get("payload") or {}).get("tags"))
                for r in rows}

    def sync_run(self, run_uuid: str) -> list[ev.Event]:
        """A changed run differs from what was emitted: emit its status (as a status event,
        like a transition would) and its tag / metric change, re-checked under the lock."""
        now = utcnow()
        out: list[ev.Event] = []
        with self.tx() as conn:
            row = self._lock_run(conn, run_uuid)
            if row is None:
                return out
            last = self._last_status_event(conn, run_uuid)
            if last is None or last.status != row.status:
                try:
                    status = Status(row.status)
                except ValueError:
                    status = None  # not a taskq status: nothing to emit for it
                if status is not None:
                    summary = run_summary(row)
                    summary["previous_status"] = last.status if last else None
                    event = ev.run_status_event(event_id=ev.new_event_id(), run=summary,
                                                status=status, timestamp=now)
                    self._insert_event(conn, event, previous=last.status if last else None)
                    out.append(event)
            change = self._emit_run_change(conn, row, "poll", now)
            if change is not None:
                out.append(change)
        return out

    # -- launching an entity trigger ----------------------------------------------------

    def launch_entity_firing(self, *, trigger: TriggerRef, dedup_key: str,
                             event: ev.Event, single_instance: bool,
                             reuse: tuple[str, dict[str, Any], list[str]] | None,
                             plan: LaunchPlanner) -> FiringRecord | None:
        """One transaction, the trigger row locked (so single_instance is decided once):
        a repeat returns the first firing; a still-active previous run is a ``skipped``
        firing with the reason; else the clone (or the re-enqueued run) with its outbox
        row. None if the trigger was deleted meanwhile."""
        with self.tx() as conn:
            if conn.execute(self._for_update(select(TRIGGERS.c.id).where(
                    TRIGGERS.c.id == trigger.id))).first() is None:
                return None
            done = conn.execute(select(FIRINGS.c.id, FIRINGS.c.run_uuid).where(
                FIRINGS.c.trigger_id == trigger.id, FIRINGS.c.dedup_key == dedup_key)
            ).first()
            if done is not None:
                pending = done.run_uuid is not None and self._unsent(conn, done.run_uuid)
                return FiringRecord(done.id, done.run_uuid, False, pending)
            busy = self._previous_active(conn, trigger.id) if single_instance else None
            if busy is not None:
                return self._record_firing_in(
                    conn, trigger=trigger, dedup_key=dedup_key, event=event, run=None,
                    outbox=None, skipped=f"single_instance: the previous run {busy[0]} is "
                                         f"still {busy[1]}")
            if reuse is not None:
                return self._requeue(conn, trigger, dedup_key, event, *reuse)
            p = plan()
            return self._record_firing_in(conn, trigger=trigger, dedup_key=dedup_key,
                                          event=event, run=p.run, outbox=p.outbox,
                                          error=p.error, skipped=p.skipped)

    def _previous_active(self, conn: Connection, trigger_id: int) -> tuple[str, str] | None:
        last = conn.execute(select(FIRINGS.c.run_uuid).where(
            FIRINGS.c.trigger_id == trigger_id, FIRINGS.c.outcome == "fired",
            FIRINGS.c.run_uuid.is_not(None)).order_by(FIRINGS.c.id.desc()).limit(1)).first()
        if last is None:
            return None
        status = conn.execute(select(RUNS.c.status).where(
            RUNS.c.uuid == last.run_uuid)).scalar()
        if status is None or Status(status) in FINAL:
            return None
        return last.run_uuid, status

    def _requeue(self, conn: Connection, trigger: TriggerRef, dedup_key: str,
                 event: ev.Event, run_uuid: str, context: dict[str, Any],
                 tags: list[str]) -> FiringRecord:
        """``reuse_task``: the one way out of a final status. The run gets a new
        incarnation (its attempt counter starts again) and goes back to ``queued``; the
        worker's claim refuses any message of an older incarnation."""
        row = self._lock_run(conn, run_uuid)
        reason = (f"reuse_task: run {run_uuid} does not exist" if row is None else
                  None if Status(row.status) in FINAL else
                  f"reuse_task: run {run_uuid} is still {row.status}")
        if reason is not None or row is None:
            return self._record_firing_in(conn, trigger=trigger, dedup_key=dedup_key,
                                          event=event, run=None, outbox=None, skipped=reason)
        now = utcnow()
        firing_id = conn.execute(insert(FIRINGS).returning(FIRINGS.c.id), dict(
            trigger_id=trigger.id, dedup_key=dedup_key, event_id=event.id,
            event_kind=event.kind, run_uuid=run_uuid, outcome="fired", reason=None,
            created_at=now, trigger_version=trigger.version)).scalar_one()
        updated = conn.execute(update(RUNS).where(RUNS.c.uuid == run_uuid).values(
            status=Status.QUEUED.value, status_reason=None, attempts=0,
            incarnation=RUNS.c.incarnation + 1, started_at=None, finished_at=None,
            updated_at=now, trigger_id=trigger.id, trigger_name=trigger.name,
            firing_id=firing_id, event_ids=[event.id], trigger_context=context,
            tags=entities.clean_tags([*(row.tags or []), *tags]))
            .returning(*RUN_SUMMARY_COLUMNS)).one()
        summary = run_summary(updated)
        summary["previous_status"] = row.status
        queued = ev.run_status_event(event_id=ev.new_event_id(), run=summary,
                                     status=Status.QUEUED, timestamp=now)
        self._insert_event(conn, queued, previous=row.status)
        reset = conn.execute(update(OUTBOX).where(OUTBOX.c.run_uuid == run_uuid).values(
            published=False, attempts=0, last_error=None, created_at=now, published_at=None))
        if not reset.rowcount:  # a run that never went through the outbox (taskq run)
            self._insert_outbox(conn, run_uuid=run_uuid, task_name=job_task_name(row.job),
                                queue=row.queue, agent="default")
        return FiringRecord(firing_id, run_uuid, True, True, (queued,))
