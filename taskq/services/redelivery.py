"""Queued runs whose message is nowhere are sent again, under the start claim.

A run's outbox row says its message was sent; that does not make the message exist. Redis
(the broker) losing its data takes every queued message with it, and a worker SIGKILLed
between taking a message (BRPOP) and recording it as unacknowledged takes that one. Each
pass (beat, one runner at a time) looks at runs waiting for a worker's start (``queued``,
``scheduled``, ``starting``) for longer than
``redeliver_after_seconds`` whose row was published, asks the broker and the live workers
whether each message still exists, and republishes only the ones that exist nowhere.

Republishing makes the run a new incarnation first (a compare-and-set on the run still
queued in the incarnation it was read in), so the lost original, should it ever come back,
is refused by the worker's start claim: the job never runs twice.

A whole worker that died (SIGKILL, host loss) holds messages in the broker's unacknowledged
set until the visibility timeout (an hour by default): an entry delivered longer than half
of ``worker_lost_after_seconds`` ago that no live worker reports holding is one of those,
and its run is republished the same way; the runs it was running are failed by
:func:`taskq.services.worker_loss.fail_lost_runs`, in the same pass.
"""

from __future__ import annotations

import logging

from taskq import constants
from taskq.ports import Context
from taskq.services.outbox import publish
from taskq.services.unschedulable import mark_unschedulable
from taskq.services.worker_loss import fail_lost_runs, stale_after

log = logging.getLogger(__name__)

REASON = ("republished: its message was in no queue or live worker (lost, or held by a "
          "dead worker)")


def redeliver_lost(rt: Context, *, batch: int = 500) -> int:
    """Republish queued runs whose message was lost; how many were sent."""
    with rt.coord.single_runner(constants.REDELIVER_LOCK, timeout=60) as mine:
        if not mine:
            return 0
        try:
            fail_lost_runs(rt)
        except Exception as exc:  # the database away: the next pass tries again
            log.warning("taskq: failing the runs of dead workers failed: %s", exc)
        try:
            mark_unschedulable(rt)
        except Exception as exc:
            log.warning("taskq: marking runs on queues without a worker failed: %s", exc)
        return _sweep(rt, batch)


def _sweep(rt: Context, batch: int) -> int:
    older = rt.store.recent_before(min(rt.settings.redeliver_after_seconds,
                                       stale_after(rt)))
    after, sent = 0, 0
    while True:
        page = rt.store.queued_published(older_than=older, after_id=after, limit=batch)
        if not page:
            break
        after = page[-1][0]
        items = [item for _, item in page]
        held = rt.publisher.held(items)
        for item in items:
            if item.run_uuid in held:
                continue
            claimed = rt.store.claim_redelivery(item, REASON)
            if claimed is None:  # a worker claimed it meanwhile, or it was stopped
                continue
            if publish(rt, claimed, mark=False):
                sent += 1
                log.warning("taskq: run %s was queued with its message lost; republished "
                            "as incarnation %d", claimed.run_uuid, claimed.incarnation)
        if len(page) < batch:
            break
    return sent
