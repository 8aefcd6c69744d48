"""Runs queued on a queue no live worker consumes are ``unschedulable``, once.

Nothing fails in such a case: the message waits in the broker for a worker that may never
come (a typo in a trigger's queue, a worker pool scaled to zero). Every worker beats for the
queues it consumes (``worker_loss.beat``); each redelivery pass (beat, one runner) marks the
runs ``queued`` longer than ``unschedulable_after_seconds`` whose queue has no live consumer.
A compare-and-set from ``queued`` on the incarnation read, so the event is written once; the
run stays startable, and a worker that comes later claims it as usual.
"""

from __future__ import annotations

import logging
import time

from taskq.core.statuses import Status
from taskq.ports import Context
from taskq.services.recording import record
from taskq.services.worker_loss import consumed_key, watched_long_enough

log = logging.getLogger(__name__)

_FROM = frozenset({Status.QUEUED})


def mark_unschedulable(rt: Context) -> int:
    """Mark the runs waiting on queues nobody consumes; how many. 0 disables it."""
    after = rt.settings.unschedulable_after_seconds
    if not after or not watched_long_enough(rt, time.time()):
        return 0
    consumed: dict[str, bool] = {}
    marked = 0
    for uuid, queue, incarnation in rt.store.queued_before(before=rt.store.recent_before(after)):
        if queue not in consumed:
            consumed[queue] = rt.coord.get_value(consumed_key(queue)) is not None
        if consumed[queue]:
            continue
        reason = (f"queued for more than {after:g}s on queue {queue!r}, which no live worker "
                  "consumes")
        if record(rt, uuid, Status.UNSCHEDULABLE, reason=reason, incarnation=incarnation,
                  only_from=_FROM):
            marked += 1
            log.warning("taskq: run %s is unschedulable: %s", uuid, reason)
    return marked
