"""SQL for pipelines: create a pipeline and its operation runs, and advance it atomically.

``advance`` locks the pipeline's run row, reads every operation's state, asks the pure
scheduler what to do and applies each answer as a compare-and-set from ``created`` (or from
the pipeline's current status), with its event rows and outbox rows, all in one transaction.
Two advances of one pipeline (the evaluator and beat, or two evaluators) therefore
serialise, and one that repeats work finds nothing left in ``created`` to move.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from taskq.core import events as ev
from taskq.core.statuses import FINAL, Status
from taskq.core.stored import Advanced, OutboxItem, PipelineView, Planner
from taskq.core.times import utcnow
from taskq.store.base import RUN_EVENTS, RUN_SUMMARY_COLUMNS, RUNS, StoreBase, run_summary
from taskq.store.models import Pipeline

PIPELINES = cast(Table, Pipeline.__table__)


_TO = {"skip": Status.SKIPPED, "upstream_failed": Status.UPSTREAM_FAILED,
       "fail": Status.FAILED, "stop": Status.STOPPED}


class PipelinesMixin(StoreBase):
    def create_pipeline(self, *, uuid: str, name: str, namespace: str, project: str | None,
                        spec: dict[str, Any], params: dict[str, Any],
                        ops: Sequence[dict[str, Any]], tags: Sequence[str] = ()) -> None:
        """The pipeline run and one ``created`` run per operation, in one transaction."""
        now = utcnow()
        with self.tx() as conn:
            conn.execute(insert(PIPELINES), dict(run_uuid=uuid, name=name, namespace=namespace,
                                                 spec=spec, params=params, created_at=now))
            rows = [dict(uuid=uuid, job=name, kind="pipeline", pipeline_uuid=None,
                         op_name=None, queue="", params=params, tags=list(tags))]
            rows += [dict(uuid=o["uuid"], job=o["job"], kind="job", pipeline_uuid=uuid,
                          op_name=o["name"], queue=o["queue"], params=o["params"],
                          tags=list(o.get("tags", tags))) for o in ops]
            conn.execute(insert(RUNS), [dict(
                r, namespace=namespace, project=project, status=Status.CREATED.value,
                status_reason=None, outputs={}, metrics=[], celery_task_id=r["uuid"],
                trigger_id=None, trigger_name=None, firing_id=None, event_ids=[],
                trigger_context=None, attempts=0, incarnation=0, created_at=now,
                updated_at=now, started_at=None, finished_at=None) for r in rows])

    def pipeline_view(self, conn: Connection, uuid: str) -> PipelineView | None:
        head = conn.execute(self._for_update(
            select(RUNS.c.status, PIPELINES.c.name, PIPELINES.c.namespace, PIPELINES.c.spec,
                   PIPELINES.c.params)
            .join(PIPELINES, PIPELINES.c.run_uuid == RUNS.c.uuid)
            .where(RUNS.c.uuid == uuid))).first()
        if head is None:
            return None
        rows = conn.execute(select(*RUN_SUMMARY_COLUMNS, RUNS.c.trigger_context)
                            .where(RUNS.c.pipeline_uuid == uuid))
        ops: dict[str, dict[str, Any]] = {}
        by_uuid: dict[str, dict[str, Any]] = {}
        for row in rows:
            summary = run_summary(row)
            summary["reached"] = set()
            summary["trigger_context"] = row.trigger_context
            ops[summary["op"]] = summary
            by_uuid[summary["uuid"]] = summary
        if by_uuid:
            for run_uuid, status in conn.execute(
                    select(RUN_EVENTS.c.run_uuid, RUN_EVENTS.c.status)
                    .where(RUN_EVENTS.c.run_uuid.in_(list(by_uuid)))):
                if status:
                    by_uuid[run_uuid]["reached"].add(status)
        return PipelineView(uuid=uuid, name=head.name, namespace=head.namespace,
                            status=Status(head.status), spec=head.spec,
                            params=head.params or {}, ops=ops)

    def advance_pipeline(self, uuid: str, plan: Planner) -> Advanced | None:
        with self.tx() as conn:
            view = self.pipeline_view(conn, uuid)
            if view is None:
                return None
            actions, status, reason = plan(view)
            events: list[ev.Event] = []
            outbox: list[OutboxItem] = []
            for kind, op, why, start in actions:
                run = view.ops[op]
                if kind == "start":
                    params, queue, agent, task_name, context = start
                    # contextOnly params: current.context, never function arguments; beside
                    # the outside events it waited for (current.trigger), if any.
                    received = run.get("trigger_context") or {}
                    extra = ({"trigger_context": {**received, "context": context}}
                             if context else {})
                    event = self._move(conn, run["uuid"], Status.CREATED, Status.QUEUED, None,
                                       params=params, queue=queue, via=Status.COMPILED,
                                       earlier=events, **extra)
                    if event is not None:
                        self._insert_outbox(conn, run_uuid=run["uuid"], task_name=task_name,
                                            queue=queue, agent=agent)
                        outbox.append(OutboxItem(run_uuid=run["uuid"], task_name=task_name,
                                                 queue=queue, agent=agent, params=params,
                                                 attempts=0))
                else:
                    event = self._move(conn, run["uuid"], Status.CREATED, _TO[kind], why)
                if event is not None:
                    events.append(event)
            if status is not None:
                event = self._move(conn, uuid, view.status, status, reason)
                if event is not None:
                    events.append(event)
        return Advanced(events, outbox)

    def _move(self, conn: Connection, uuid: str, frm: Status, to: Status, reason: str | None,
              via: Status | None = None, earlier: list[ev.Event] | None = None,
              **values: Any) -> ev.Event | None:
        """A compare-and-set from ``frm`` with its event row; None if someone moved first.
        With ``via`` (an operation's ``compiled``), that status's event row first, its event
        appended to ``earlier``."""
        now = utcnow()
        changes: dict[str, Any] = {"status": to.value, "updated_at": now, **values}
        if reason is not None or to in FINAL:
            changes["status_reason"] = reason
        if to == Status.RUNNING:
            changes["started_at"] = now
        if to in FINAL:
            changes["finished_at"] = now
        row = conn.execute(update(RUNS).where(RUNS.c.uuid == uuid, RUNS.c.status == frm.value)
                           .values(**changes).returning(*RUN_SUMMARY_COLUMNS)).first()
        if row is None:
            return None
        summary = run_summary(row)
        if via is not None:
            passed = ev.run_status_event(
                event_id=ev.new_event_id(), status=via, timestamp=now,
                run={**summary, "status": via.value, "previous_status": frm.value})
            self._insert_event(conn, passed, previous=frm.value)
            if earlier is not None:
                earlier.append(passed)
            frm = via
        summary["previous_status"] = frm.value
        event = ev.run_status_event(event_id=ev.new_event_id(), run=summary, status=to,
                                    timestamp=now)
        self._insert_event(conn, event, previous=frm.value)
        return event

    def waiting_pipelines(self, namespace: str) -> list[tuple[str, dict[str, Any], Any]]:
        """Unfinished pipelines of a namespace: (uuid, stored spec, created_at)."""
        with self.read() as conn:
            rows = conn.execute(
                select(RUNS.c.uuid, PIPELINES.c.spec, PIPELINES.c.created_at)
                .join(PIPELINES, PIPELINES.c.run_uuid == RUNS.c.uuid)
                .where(RUNS.c.kind == "pipeline", RUNS.c.namespace == namespace,
                       RUNS.c.status.not_in([s.value for s in FINAL])).order_by(RUNS.c.id))
            return [(r.uuid, r.spec, r.created_at) for r in rows]

    def receive_op_event(self, pipeline_uuid: str, op: str, event: ev.Event,
                         item: dict[str, Any]) -> bool:
        """Record an outside event on an operation still waiting in ``created``, as its
        lineage (``item`` built by the caller); False if it had one of that (ref, kind)
        already or has moved on. Under the operation's row lock, so two evaluators seeing
        the event record it once."""
        with self.tx() as conn:
            row = conn.execute(self._for_update(
                select(RUNS.c.uuid, RUNS.c.status, RUNS.c.trigger_context)
                .where(RUNS.c.pipeline_uuid == pipeline_uuid, RUNS.c.op_name == op))).first()
            if row is None or row.status != Status.CREATED.value:
                return False
            tc = dict(row.trigger_context or {})
            items = list(tc.get("events") or [])
            if any((i["event"]["ref"], i["event"]["kind"]) == (event.ref, event.kind)
                   for i in items):
                return False
            items.insert(0, item)
            tc.update(trigger="pipeline", kind="pipeline", type="EVENT" if len(items) == 1
                      else "MANY-EVENTS", event=item["event"], run=None, events=items)
            conn.execute(update(RUNS).where(RUNS.c.uuid == row.uuid)
                         .values(trigger_context=tc, updated_at=utcnow()))
            return True

    def pipeline_spec(self, uuid: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(select(PIPELINES.c.spec, PIPELINES.c.params, PIPELINES.c.name)
                               .where(PIPELINES.c.run_uuid == uuid)).first()
        return {"spec": row.spec, "params": row.params, "name": row.name} if row else None

    def active_pipelines(self, limit: int = 500) -> list[str]:
        """Pipelines not finished: what beat's tick advances."""
        with self.read() as conn:
            rows = conn.execute(select(RUNS.c.uuid).where(
                RUNS.c.kind == "pipeline",
                RUNS.c.status.not_in([s.value for s in FINAL])).order_by(RUNS.c.id).limit(limit))
            return [r.uuid for r in rows]

    def pipeline_ops(self, uuid: str) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(select(*RUN_SUMMARY_COLUMNS).where(
                RUNS.c.pipeline_uuid == uuid).order_by(RUNS.c.id))
            return [run_summary(r) for r in rows]

    def set_pipeline_stopping(self, uuid: str) -> ev.Event | None:
        with self.tx() as conn:
            status = conn.execute(self._for_update(select(RUNS.c.status).where(
                RUNS.c.uuid == uuid))).scalar()
            if status is None or Status(status) in FINAL or status == Status.STOPPING.value:
                return None
            return self._move(conn, uuid, Status(status), Status.STOPPING, "stopped by user")
