"""SQL for AND-join triggers: arm an input with an event, fire once every input has one.

Everything happens in one transaction with the trigger's row locked, so two evaluators that
see the two last missing events at the same moment still produce one firing, and a crash at
any point leaves either nothing or the whole firing committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update

from taskq.core import events as ev
from taskq.core.planning import join_key
from taskq.core.stored import FiringRecord, TriggerRef
from taskq.core.times import utcnow
from taskq.store.base import FIRINGS, StoreBase
from taskq.store.models import JoinArm, Trigger

ARMS = cast(Table, JoinArm.__table__)
TRIGGERS = cast(Table, Trigger.__table__)

#: What the planner returns for a satisfied join: attributes run, outbox, error, skipped.
JoinPlanner = Callable[[dict[str, ev.Event]], Any]


class JoinsMixin(StoreBase):
    def join_and_fire(self, *, trigger: TriggerRef, input_key: str, dedup_key: str,
                      event: ev.Event, keys: Sequence[str], expired_before: datetime | None,
                      plan: JoinPlanner) -> FiringRecord | None:
        """Arm ``input_key`` with ``event``; if every key of ``keys`` is now armed, record the
        firing (and its run and outbox row) and consume the arms. Returns the firing, or None
        while the join still waits. A redelivered event returns the firing it completed."""
        with self.tx() as conn:
            locked = conn.execute(self._for_update(
                select(TRIGGERS.c.id).where(TRIGGERS.c.id == trigger.id))).first()
            if locked is None:
                return None  # deleted meanwhile
            arm_id = conn.execute(
                self._insert_ignore(ARMS)
                .on_conflict_do_nothing(index_elements=["trigger_id", "dedup_key"])
                .returning(ARMS.c.id),
                dict(trigger_id=trigger.id, input_key=input_key, dedup_key=dedup_key,
                     event_id=event.id, event=event.model_dump(mode="json"),
                     event_at=event.timestamp, state="armed", firing_id=None,
                     created_at=utcnow())).scalar()
            if arm_id is None:
                return self._completed_by(conn, trigger.id, dedup_key)
            if expired_before is not None:
                conn.execute(update(ARMS).where(
                    ARMS.c.trigger_id == trigger.id, ARMS.c.state == "armed",
                    ARMS.c.event_at < expired_before).values(state="expired"))
            armed = conn.execute(
                select(ARMS.c.id, ARMS.c.input_key, ARMS.c.dedup_key, ARMS.c.event_id,
                       ARMS.c.event, ARMS.c.event_at)
                .where(ARMS.c.trigger_id == trigger.id, ARMS.c.state == "armed")
                .order_by(ARMS.c.event_at, ARMS.c.id)).all()
            latest = {row.input_key: row for row in armed}  # the latest event per input wins
            if any(k not in latest for k in keys):
                return None
            chosen = [latest[k] for k in keys]
            events = {row.input_key: ev.Event.model_validate(row.event) for row in chosen}
            last = max(events.values(), key=lambda e: e.timestamp)
            p = plan(events)
            record = self._record_firing_in(
                conn, trigger=trigger, dedup_key=join_key([r.dedup_key for r in chosen]),
                event=last, run=p.run, outbox=p.outbox, error=p.error, skipped=p.skipped,
                event_ids=[r.event_id for r in chosen])
            conn.execute(update(ARMS).where(ARMS.c.id.in_([r.id for r in armed]))
                         .values(state="consumed", firing_id=record.firing_id))
            return record

    def _completed_by(self, conn: Any, trigger_id: int, dedup_key: str) -> FiringRecord | None:
        arm = conn.execute(select(ARMS.c.firing_id).where(
            ARMS.c.trigger_id == trigger_id, ARMS.c.dedup_key == dedup_key)).first()
        if arm is None or arm.firing_id is None:
            return None
        firing = conn.execute(select(FIRINGS.c.id, FIRINGS.c.run_uuid).where(
            FIRINGS.c.id == arm.firing_id)).first()
        if firing is None:
            return None
        pending = firing.run_uuid is not None and self._unsent(conn, firing.run_uuid)
        return FiringRecord(firing.id, firing.run_uuid, False, pending)

    def join_state(self, trigger_id: int) -> list[dict[str, Any]]:
        """The inputs a join has seen and not used yet: what `taskq triggers show` explains."""
        with self.read() as conn:
            rows = conn.execute(select(ARMS.c.input_key, ARMS.c.event_id, ARMS.c.event_at,
                                       ARMS.c.state)
                                .where(ARMS.c.trigger_id == trigger_id, ARMS.c.state == "armed")
                                .order_by(ARMS.c.id))
            return [{"input": r.input_key, "event_id": r.event_id,
                     "at": r.event_at.isoformat() if r.event_at else None, "state": r.state}
                    for r in rows]
