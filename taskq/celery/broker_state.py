"""Whether a run's message still exists, asked of a Redis broker and its live workers.

kombu's Redis transport keeps a queue as lists (one per priority step) and a delivered,
unacknowledged message in the ``unacked`` hash. Between a worker's BRPOP and that HSET the
message exists only in the worker's memory: a worker SIGKILLed there (or Redis losing its
data) loses it for good. This module answers "is it anywhere?" so that such a run can be
republished; a run whose message is somewhere is never touched.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Celery

from taskq.core.stored import OutboxItem

log = logging.getLogger(__name__)

#: How long a broadcast to the workers waits for their replies (seconds).
INSPECT_TIMEOUT = 1.0
#: Unacknowledged this long (s) and reported by no live worker: held by a dead worker.
#: The app's settings say half of ``worker_lost_after_seconds``; this is for other apps.
DEAD_HOLDER_AFTER = 30.0


def _task_id(raw: Any) -> str | None:
    """The task id of a stored message (a queue entry, or an ``unacked`` hash value)."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if isinstance(data, list) and data:  # unacked: [message, exchange, routing key]
        data = data[0]
    if not isinstance(data, dict):
        return None
    headers = data.get("headers") or {}
    found = headers.get("id") or (data.get("properties") or {}).get("correlation_id")
    return str(found) if found else None


def _in_broker(channel: Any, queues: Iterable[str], wanted: set[str],
               delivered_before: float) -> set[str]:
    """The wanted task ids in a queue, or unacknowledged since ``delivered_before`` or
    later. An older unacknowledged one is left out: a live worker holding it reports it
    (asked next); one held by a dead worker would wait for the visibility timeout."""
    client = channel.client  # prefixes keys itself when a global_keyprefix is set
    found: set[str] = set()
    # The queues first, then the unacked hash: a message moving between them (a worker
    # taking it) is then seen in the second place it reaches.
    for queue in queues:
        keys = dict.fromkeys(channel._q_for_pri(queue, pri) for pri in channel.priority_steps)
        for key in keys:
            for raw in client.lrange(key, 0, -1):
                task_id = _task_id(raw)
                if task_id in wanted:
                    found.add(task_id)
    delivered = dict(client.zrange(channel.unacked_index_key, 0, -1, withscores=True))
    for tag, raw in client.hscan_iter(channel.unacked_key, count=1000):
        task_id = _task_id(raw)
        # No index entry: written between the two (kombu writes both at once): recent.
        if task_id in wanted and float(delivered.get(tag, time.time())) >= delivered_before:
            found.add(task_id)
    return found


def _held_by_workers(app: Celery, wanted: set[str]) -> set[str]:
    """Task ids a live worker reports as active, reserved or scheduled. A dead worker does
    not answer: what it held is gone with it."""
    replies = app.control.inspect(timeout=INSPECT_TIMEOUT).query_task(*sorted(wanted)) or {}
    held: set[str] = set()
    for tasks in replies.values():
        held.update(task_id for task_id in (tasks or {}) if task_id in wanted)
    return held


def held(app: Celery, items: Sequence[OutboxItem]) -> set[str]:
    """The run uuids among ``items`` whose message the broker or a live worker holds (an
    unacknowledged one only if recent, or a live worker reports it), or
    that cannot be checked now (a broker that is not Redis, or unreachable): only a run
    known to have no message anywhere is left out, and only such a run is republished."""
    wanted = {item.run_uuid for item in items}
    if not wanted:
        return set()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)
            if conn.transport.driver_type != "redis":
                return wanted
            settings = getattr(app, "taskq_settings", None)
            after = (settings.worker_lost_after_seconds / 2 if settings is not None
                     else DEAD_HOLDER_AFTER)
            found = _in_broker(conn.default_channel, sorted({i.queue for i in items}), wanted,
                               time.time() - after)
        rest = wanted - found
        if rest:
            found |= _held_by_workers(app, rest)
    except Exception as exc:  # an unreachable broker: look again next time
        log.warning("taskq: could not inspect the broker for %d queued run(s): %s",
                    len(wanted), exc)
        return wanted
    return found
