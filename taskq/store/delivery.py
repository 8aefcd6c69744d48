"""What the database remembers about delivery, so that Redis losing its data loses nothing:
which events were evaluated, and which queued runs' messages must be sent again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update

from taskq.core.statuses import ACTIVE, AWAITING_START
from taskq.core.stored import OutboxItem
from taskq.core.times import utcnow
from taskq.store.base import OUTBOX, RUN_EVENTS, RUNS, StoreBase, _outbox_item
from taskq.store.joins import ARMS

_AWAITING = sorted(s.value for s in AWAITING_START)


class DeliveryMixin(StoreBase):
    def mark_done(self, *, published: Sequence[str] = (),
                  evaluated: Sequence[str] = ()) -> None:
        """Outbox rows published and events evaluated, in one transaction: the evaluator's
        one batched write, made when the stream is quiet (see ``services/evaluator``)."""
        if not published and not evaluated:
            return
        with self.tx() as conn:
            if published:
                conn.execute(update(OUTBOX).where(OUTBOX.c.run_uuid.in_(list(published)))
                             .values(published=True, published_at=utcnow(),
                                     attempts=OUTBOX.c.attempts + 1))
            if evaluated:
                conn.execute(update(RUN_EVENTS).where(
                    RUN_EVENTS.c.event_id.in_(list(evaluated)),
                    RUN_EVENTS.c.evaluated.is_(False)).values(evaluated=True))

    def unconfirm_unevaluated(self) -> int:
        """Redis lost its data: an event not yet evaluated is no longer in the stream,
        whatever was confirmed before, so the reconciler emits it again."""
        with self.tx() as conn:
            res = conn.execute(update(RUN_EVENTS).where(
                RUN_EVENTS.c.evaluated.is_(False), RUN_EVENTS.c.confirmed.is_(True))
                .values(confirmed=False))
            return int(res.rowcount or 0)

    def oldest_unevaluated_id(self) -> int | None:
        with self.read() as conn:
            return conn.execute(select(func.min(RUN_EVENTS.c.id)).where(
                RUN_EVENTS.c.evaluated.is_(False))).scalar()

    def count_unevaluated(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(RUN_EVENTS).where(
                RUN_EVENTS.c.evaluated.is_(False))).scalar_one())

    def queued_published(self, *, older_than: datetime, after_id: int = 0,
                         limit: int = 500) -> list[tuple[int, OutboxItem]]:
        """Runs still waiting for a worker's start (``queued``, ``scheduled``, received
        and waiting for its eta: ``starting``) since before ``older_than`` whose outbox row
        says their message was sent (unsent rows are the relay's), by outbox id."""
        stmt = (select(OUTBOX, RUNS.c.params, RUNS.c.incarnation)
                .join(RUNS, RUNS.c.uuid == OUTBOX.c.run_uuid)
                .where(RUNS.c.status.in_(_AWAITING), RUNS.c.updated_at < older_than,
                       OUTBOX.c.published.is_(True), OUTBOX.c.id > after_id)
                .order_by(OUTBOX.c.id).limit(limit))
        with self.read() as conn:
            return [(row.id, _outbox_item(row)) for row in conn.execute(stmt)]

    def claim_redelivery(self, item: OutboxItem, reason: str) -> OutboxItem | None:
        """Make the run a new incarnation if it is still queued in the one ``item`` names
        (a compare-and-set: a worker that claims it meanwhile wins). The message sent next
        carries the new incarnation, so the start claim refuses the lost original should it
        ever come back; None if the run moved on."""
        now = utcnow()
        with self.tx() as conn:
            res = conn.execute(update(RUNS).where(
                RUNS.c.uuid == item.run_uuid, RUNS.c.status.in_(_AWAITING),
                RUNS.c.incarnation == item.incarnation)
                .values(incarnation=RUNS.c.incarnation + 1, updated_at=now))
            if not res.rowcount:
                return None
            conn.execute(update(OUTBOX).where(OUTBOX.c.run_uuid == item.run_uuid).values(
                attempts=OUTBOX.c.attempts + 1, published_at=now, last_error=reason[:2000]))
        return OutboxItem(run_uuid=item.run_uuid, task_name=item.task_name, queue=item.queue,
                          agent=item.agent, params=item.params, attempts=item.attempts + 1,
                          incarnation=item.incarnation + 1, eta=item.eta)

    def running_on_workers(self, *, started_before: datetime,
                           limit: int = 1000) -> list[tuple[str, str, int, int]]:
        """(uuid, worker, attempt, incarnation) of runs running since before
        ``started_before`` whose claiming worker is known: the worker-loss sweep asks
        whether each worker is still alive."""
        stmt = (select(RUNS.c.uuid, RUNS.c.worker, RUNS.c.attempts, RUNS.c.incarnation)
                .where(RUNS.c.status.in_([s.value for s in ACTIVE]),
                       RUNS.c.worker.is_not(None), RUNS.c.started_at < started_before)
                .order_by(RUNS.c.id).limit(limit))
        with self.read() as conn:
            return [(r.uuid, str(r.worker), int(r.attempts or 0), int(r.incarnation or 0))
                    for r in conn.execute(stmt)]

    def prune_events(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest events recorded before ``before`` that an
        evaluator has decided (an undecided one is kept whatever its age: it may still be
        owed its firings), with the join arms they no longer wait on. The retention of the
        event log; bounded, so one pass never holds a long transaction."""
        with self.tx() as conn:
            ids = [r.id for r in conn.execute(
                select(RUN_EVENTS.c.id).where(RUN_EVENTS.c.created_at < before,
                                              RUN_EVENTS.c.evaluated.is_(True))
                .order_by(RUN_EVENTS.c.id).limit(limit))]
            if ids:
                conn.execute(delete(RUN_EVENTS).where(RUN_EVENTS.c.id.in_(ids)))
            conn.execute(delete(ARMS).where(ARMS.c.state != "armed",
                                                 ARMS.c.event_at < before))
        return len(ids)
