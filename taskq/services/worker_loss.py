"""Runs left running by a worker that died whole are failed within a bound, not an hour.

A worker SIGKILLed with its children (OOM killer, host loss) fires no signal: its run stays
``running`` until the broker redelivers the message after its visibility timeout, which must
stay longer than the longest job. Instead, every worker refreshes a liveness key with a
time to live of half of ``worker_lost_after_seconds`` (``worker.liveness``), and the run
records the worker that claimed it. Each redelivery pass (beat, one runner) fails the runs
whose worker's key is gone: ``unknown`` then ``failed`` "worker lost" (two events, one
commit), a compare-and-set on the attempt and incarnation
read, so a late finish of a worker that was only slow wins or loses cleanly, and the event
makes triggers on failure fire once. The original message, should the broker ever redeliver
it, is refused by the start claim (that attempt already started).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from taskq import constants
from taskq.core.statuses import ACTIVE, Status
from taskq.ports import Context
from taskq.services.recording import record

log = logging.getLogger(__name__)

REASON = ("worker lost: the worker running it stopped sending heartbeats (killed, or its "
          "host lost)")
#: Since when (time.time()) this Redis has kept the liveness keys: a key missing from a
#: Redis that restarted empty says nothing until a live worker had time to beat again.
WATCHING_KEY = f"{constants.PREFIX}:worker:watching"


def stale_after(rt: Context) -> float:
    """A worker silent this long is dead (half the bound: the rest is the sweep's)."""
    return rt.settings.worker_lost_after_seconds / 2


def heartbeat_every(rt: Context) -> float:
    return max(1.0, rt.settings.worker_lost_after_seconds / 6)


def alive_key(hostname: str) -> str:
    return constants.WORKER_ALIVE_PREFIX + hostname


def consumed_key(queue: str) -> str:
    return constants.QUEUE_CONSUMED_PREFIX + queue


def beat(rt: Context, hostname: str, at: float, queues: Sequence[str] = ()) -> None:
    """Say ``hostname`` is alive, and that ``queues`` have a live consumer, for the next
    :func:`stale_after` seconds (``services.unschedulable`` reads the second)."""
    ttl = int(stale_after(rt))
    rt.coord.remember(alive_key(hostname), f"{at:.3f}", ttl_seconds=ttl)
    for queue in queues:
        rt.coord.remember(consumed_key(queue), hostname, ttl_seconds=ttl)


def watched_long_enough(rt: Context, now: float) -> bool:
    """Whether a missing liveness key means anything yet: not on the first pass, nor
    until a live worker had time to beat again after Redis lost its data."""
    watching = rt.coord.get_value(WATCHING_KEY)
    if watching is None:  # first pass, or Redis lost its data (the keys with it)
        rt.coord.set_value(WATCHING_KEY, f"{now:.3f}")
        return False
    return now - float(watching) >= stale_after(rt)


def fail_lost_runs(rt: Context) -> int:
    """Fail the runs whose claiming worker is dead; how many. Called under the
    redelivery sweep's single-runner lock. A run started less than :func:`stale_after`
    ago is left alone (its worker's first heartbeat may still be on its way)."""
    if not watched_long_enough(rt, time.time()):
        return 0
    started_before = rt.store.recent_before(stale_after(rt))
    alive: dict[str, bool] = {}
    failed = 0
    for uuid, worker, attempt, incarnation in rt.store.running_on_workers(
            started_before=started_before):
        if worker not in alive:
            alive[worker] = rt.coord.get_value(alive_key(worker)) is not None
        if alive[worker]:
            continue
        if record(rt, uuid, Status.FAILED, reason=REASON, attempt=attempt,
                  incarnation=incarnation, only_from=ACTIVE, via=(Status.UNKNOWN,)):
            failed += 1
            log.warning("taskq: run %s was running on worker %s, which is gone: failed "
                        "(worker lost)", uuid, worker)
    return failed
