"""The database is the source of truth; the reconciler makes the stream agree with it.

Signal handlers commit a status change and then XADD it. If Redis was unreachable in between,
the event exists only in SQL. Each pass (driven by beat, one at a time under a Redis lock):

0. checks that Redis still has the data it had (an epoch token kept in SQL and in a Redis
   key, the last stream id seen): if it lost it, every event the database has not recorded
   as *evaluated* is counted as missing from the stream again, whatever was confirmed;
1. reads the stream from its cursor and marks the events it finds there as confirmed;
2. re-appends every unconfirmed event older than the grace period, above the watermark, in
   commit order, and marks it confirmed;
3. advances the watermark (the id below which every event is confirmed and evaluated), so
   the next pass reads only what changed.

"Confirmed" (in the stream) is only ever a hint; "evaluated" (written by the evaluator once
an event's firings are committed) is what decides whether an event was delivered. An event
re-appended while its first XADD was merely slow, or re-emitted after a loss although it had
been evaluated, fires nothing twice: firings are unique per (trigger, event).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from taskq import constants
from taskq.core.delivery import redis_lost
from taskq.ports import Context

log = logging.getLogger(__name__)

WATERMARK = "reconcile.watermark"
#: SQL cursors: the epoch token also kept under ``constants.REDIS_EPOCH`` in Redis, and the
#: last stream id this reconciler saw.
EPOCH = "redis.epoch"
STREAM_SEEN = "reconcile.stream-seen"
WATERMARK_SETTLE_SECONDS = 120.0
#: Hooks attached to one run are deleted this long after the run ended.
RUN_HOOK_RETENTION_SECONDS = 7 * 24 * 3600.0
#: Events pruned per batch, and batches per reconciler pass (TASKQ_EVENT_RETENTION_DAYS).
PRUNE_BATCH, PRUNE_BATCHES = 2000, 5


@dataclass(frozen=True)
class ReconcileResult:
    confirmed: int
    reemitted: int
    watermark: int
    #: Why Redis was found to have lost its data on this pass (None: it had not).
    lost: str | None = None


def reconcile(rt: Context, *, batch: int = 1000) -> ReconcileResult | None:
    with rt.coord.single_runner(constants.RECONCILE_LOCK, timeout=120) as mine:
        return _reconcile(rt, batch) if mine else None


def check_redis(rt: Context) -> str | None:
    """Detect a Redis that lost its data and make SQL stop trusting the stream; the reason.

    The SQL side is repaired first (undecided events unconfirmed, the stream position
    forgotten), the epoch key restored last: a crash in between only repeats the repair.
    """
    store = rt.store
    epoch = store.get_cursor(EPOCH)
    in_redis = rt.coord.get_value(constants.REDIS_EPOCH)
    lost = redis_lost(epoch_sql=epoch, epoch_redis=in_redis,
                      seen_sql=store.get_cursor(STREAM_SEEN), state=rt.bus.stream_state())
    if epoch is None:
        epoch = uuid.uuid4().hex
        store.set_cursor(EPOCH, epoch)
    if lost is not None:
        again = store.unconfirm_unevaluated()
        store.set_cursor(STREAM_SEEN, "0")
        rt.coord.set_value(constants.RECONCILE_STREAM_CURSOR, "0")
        log.warning("taskq: Redis lost its data (%s); %d event(s) not yet evaluated will be "
                    "emitted again", lost, again)
    # Written only when it was not there as it should be: rewriting a key found intact would,
    # if Redis restarted empty between the read and the write, plant it in the new Redis and
    # hide that loss from every later pass.
    if in_redis != epoch:
        rt.coord.set_value(constants.REDIS_EPOCH, epoch)
    return lost


def _reconcile(rt: Context, batch: int) -> ReconcileResult:
    store, bus = rt.store, rt.bus
    lost = check_redis(rt)
    # Only events committed a grace period before the scan began can be missing for real:
    # anything newer may be appended a moment after the scan passed its place.
    older = store.recent_before(rt.settings.reconcile_grace_seconds)
    cursor = rt.coord.get_value(constants.RECONCILE_STREAM_CURSOR) or "0"
    seen = cursor
    confirmed = 0
    while True:
        entries = bus.scan(cursor, count=batch)
        if not entries:
            break
        confirmed += store.confirm_events([e.id for _, e in entries if e is not None])
        cursor = entries[-1][0]
        rt.coord.set_value(constants.RECONCILE_STREAM_CURSOR, cursor)
        if len(entries) < batch:
            break
    if cursor != seen:
        store.set_cursor(STREAM_SEEN, cursor)

    watermark = int(store.get_cursor(WATERMARK) or 0)
    undecided = store.oldest_unevaluated_id()
    if lost is not None and undecided is not None:  # back to the first undecided event
        watermark = min(watermark, undecided - 1)
    reemitted = 0
    while True:
        missing = store.unconfirmed_events(older_than=older, after_id=watermark, limit=batch)
        if not missing:
            break
        bus.append_many([e for _, e in missing])
        store.confirm_events([e.id for _, e in missing])
        reemitted += len(missing)
        if len(missing) < batch:
            break
    if reemitted:
        log.warning("taskq: reconciler re-emitted %d event(s) missing from the stream",
                    reemitted)

    # Advance only past events old enough that no transaction that took a smaller id can
    # still be open (PostgreSQL hands out ids before commit, not in commit order).
    settled = store.max_event_id(created_before=store.recent_before(WATERMARK_SETTLE_SECONDS))
    # Never past an event not yet evaluated: after a loss it must be found again.
    for oldest in (store.oldest_unconfirmed_id(), store.oldest_unevaluated_id()):
        if oldest is not None:
            settled = min(settled, oldest - 1)
    watermark = max(watermark, settled)
    store.set_cursor(WATERMARK, str(watermark))
    if store.prune_run_hooks(finished_before=store.recent_before(RUN_HOOK_RETENTION_SECONDS)):
        rt.coord.bump_triggers()
    prune_events(rt)
    return ReconcileResult(confirmed, reemitted, watermark, lost)


def prune_events(rt: Context) -> int:
    """The event log's retention: a bounded number of batches per pass, so a first pass
    over years of events never holds the lock or a transaction for long."""
    days = rt.settings.event_retention_days
    if days <= 0:
        return 0
    before, pruned = rt.store.recent_before(days * 86400.0), 0
    for _ in range(PRUNE_BATCHES):
        done = rt.store.prune_events(before=before, limit=PRUNE_BATCH)
        pruned += done
        if done < PRUNE_BATCH:
            break
    if pruned:
        log.info("taskq: pruned %d events older than %s days", pruned, days)
    return pruned

