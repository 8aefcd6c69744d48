"""The database is the source of truth; the reconciler makes the stream agree with it.

Signal handlers commit a status change and then XADD it. If Redis was unreachable in between,
the event exists only in SQL. Each pass (driven by beat, one at a time under a Redis lock):

1. reads the stream from its cursor and marks the events it finds there as confirmed;
2. re-appends every unconfirmed event older than the grace period, above the watermark, in
   commit order, and marks it confirmed;
3. advances the watermark (the id below which every event is confirmed), so the next pass
   reads only what changed.

An event re-appended while its first XADD was merely slow is evaluated once anyway: firings
are unique per (trigger, event).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from taskq import constants
from taskq.ports import Context

log = logging.getLogger(__name__)

WATERMARK = "reconcile.watermark"
WATERMARK_SETTLE_SECONDS = 120.0
#: Hooks attached to one run are deleted this long after the run ended.
RUN_HOOK_RETENTION_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class ReconcileResult:
    confirmed: int
    reemitted: int
    watermark: int


def reconcile(rt: Context, *, batch: int = 1000) -> ReconcileResult | None:
    with rt.coord.single_runner(constants.RECONCILE_LOCK, timeout=120) as mine:
        return _reconcile(rt, batch) if mine else None


def _reconcile(rt: Context, batch: int) -> ReconcileResult:
    store, bus = rt.store, rt.bus
    # Only events committed a grace period before the scan began can be missing for real:
    # anything newer may be appended a moment after the scan passed its place.
    older = store.recent_before(rt.settings.reconcile_grace_seconds)
    cursor = rt.coord.get_value(constants.RECONCILE_STREAM_CURSOR) or "0"
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

    watermark = int(store.get_cursor(WATERMARK) or 0)
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
    oldest = store.oldest_unconfirmed_id()
    if oldest is not None:
        settled = min(settled, oldest - 1)
    watermark = max(watermark, settled)
    store.set_cursor(WATERMARK, str(watermark))
    if store.prune_run_hooks(finished_before=store.recent_before(RUN_HOOK_RETENTION_SECONDS)):
        rt.coord.bump_triggers()
    return ReconcileResult(confirmed, reemitted, watermark)

