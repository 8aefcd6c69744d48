"""The transactional outbox: a committed run's task is sent, and re-sent until it is.

A firing commits its run with an outbox row; the evaluator publishes right after the commit,
and the relay (beat) publishes whatever is still unsent after a grace period. A duplicate
send is harmless: the worker's start is a compare-and-set on the run's attempt counter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from taskq import constants, crash_points
from taskq.core.stored import OutboxItem
from taskq.ports import Context

log = logging.getLogger(__name__)


def publish(rt: Context, item: OutboxItem, *, mark: bool = True) -> bool:
    """Send the run's Celery task; on failure leave the outbox row for the relay.

    ``mark=False`` leaves marking the row to the caller. The evaluator batches it, because
    a write right after the publish lands exactly when the worker claims the run and, on
    SQLite, makes the claim wait for the database lock. An unmarked row is at worst
    republished by the relay, and the worker's claim refuses the duplicate.
    """
    if item.queue == constants.SCHEDULER_CALLS_QUEUE:
        # A call for TriggerScheduler.start(): that process claims it from SQL; no worker
        # could import a function of the scheduler script, so nothing is sent.
        if mark:
            rt.store.mark_published(item.run_uuid)
        return True
    try:
        rt.publisher.send(item, headers_for(item))
    except Exception as exc:  # broker down: the relay retries, nothing is lost
        log.warning("taskq: publishing run %s failed, relay will retry: %s", item.run_uuid, exc)
        rt.store.mark_publish_failed(item.run_uuid, repr(exc))
        return False
    crash_points.crash_point(crash_points.AFTER_PUBLISH)
    if mark:
        rt.store.mark_published(item.run_uuid)
    return True


def headers_for(item: OutboxItem) -> dict[str, str]:
    """What the worker's start claim reads from the message (the run, and its incarnation)."""
    headers = {constants.RUN_HEADER: item.run_uuid, constants.QUEUED_HEADER: "1"}
    if item.incarnation:
        headers[constants.INCARNATION_HEADER] = str(item.incarnation)
    return headers


def publish_many(rt: Context, items: Sequence[OutboxItem], *, mark: bool = True) -> list[str]:
    """:func:`publish` for a batch, sent by one ``send_many`` (one Redis pipeline); the
    run uuids sent. All or none: when the broker cannot say every message went out, none is
    marked published, and the relay sends them again (a message that did go out meanwhile
    is refused by the worker's start claim, so each run still starts once)."""
    calls = [i.run_uuid for i in items if i.queue == constants.SCHEDULER_CALLS_QUEUE]
    by_agent: dict[str, list[OutboxItem]] = {}
    for item in items:
        if item.queue != constants.SCHEDULER_CALLS_QUEUE:
            by_agent.setdefault(item.agent, []).append(item)
    sent: list[str] = []
    for group in by_agent.values():  # one agent's broker down leaves the others' sent
        try:
            rt.publisher.send_many([(item, headers_for(item)) for item in group])
        except Exception as exc:  # broker down: the relay retries, nothing is lost
            log.warning("taskq: publishing %d runs failed, relay will retry: %s",
                        len(group), exc)
            for item in group:
                rt.store.mark_publish_failed(item.run_uuid, repr(exc))
            continue
        crash_points.crash_point(crash_points.AFTER_PUBLISH)
        sent += [item.run_uuid for item in group]
    done = calls + sent
    if mark and done:
        rt.store.mark_published(*done)
    return done


def relay_outbox(rt: Context, *, limit: int = 200) -> int:
    """Publish outbox rows older than the grace period; one relay at a time (Redis lock)."""
    with rt.coord.single_runner(constants.RELAY_LOCK, timeout=60) as mine:
        if not mine:
            return 0
        older = rt.store.recent_before(rt.settings.relay_grace_seconds)
        return len(publish_many(rt, rt.store.pending_outbox(older_than=older, limit=limit)))
