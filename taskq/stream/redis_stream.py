"""The event stream: one Redis Stream read through one consumer group.

Delivery is at-least-once by construction (an entry stays in the pending list until XACK),
which is why firings are deduplicated in SQL rather than here.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

import redis

from taskq import constants
from taskq.core.delivery import StreamState
from taskq.core.events import Event
from taskq.core.stored import Entry
from taskq.stream import outages
from taskq.stream.dead_letters import DeadLetters

log = logging.getLogger(__name__)

_clients: dict[tuple[int, str], redis.Redis] = {}
_lock = threading.Lock()


def get_redis(url: str) -> redis.Redis:
    """One client per (process, url); short timeouts because signal handlers call this."""
    key = (os.getpid(), url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            # The read timeout must outlast the longest XREADGROUP BLOCK (capped at 30 s by
            # settings), or an idle evaluator would see timeouts instead of empty reads.
            client = redis.Redis.from_url(url, socket_timeout=45, socket_connect_timeout=2,
                                          health_check_interval=30)
            _clients[key] = client
        return client


def consumer_name() -> str:
    """Stable per process, so a restarted evaluator with the same pid re-reads its own PEL."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _sid(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


#: Set each entry's delivery count back by the delivery an outage cost it, if ``consumer``
#: (ARGV[2]) still owns it; XCLAIM ... JUSTID does not count a delivery itself, and resets
#: the idle time so no other evaluator reclaims an entry this one is still retrying.
_REFUND = """
local kept = {}
for i = 3, #ARGV, 2 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'RETRYCOUNT', ARGV[i + 1],
               'JUSTID')
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
"""


class EventBus(DeadLetters):
    def __init__(self, client: redis.Redis, *, stream: str = constants.EVENTS_STREAM,
                 group: str = constants.EVALUATOR_GROUP) -> None:
        self.r = client
        self.stream = stream
        self.group = group
        self._group_ready = False

    def append(self, event: Event) -> str:
        sid = self.r.xadd(self.stream, event.to_fields(),  # type: ignore[arg-type]
                          maxlen=constants.EVENTS_STREAM_MAXLEN, approximate=True)
        return _sid(sid)

    def append_many(self, events: Sequence[Event]) -> list[str]:
        pipe = self.r.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.stream, event.to_fields(),  # type: ignore[arg-type]
                      maxlen=constants.EVENTS_STREAM_MAXLEN, approximate=True)
        return [_sid(s) for s in pipe.execute()]

    def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # "0": a group created after events were appended still evaluates them.
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _regroup_on_nogroup(self, exc: redis.ResponseError) -> None:
        """The stream or group vanished (Redis restarted without its data, or was flushed):
        recreate it on the next call instead of failing forever."""
        if "NOGROUP" not in str(exc):
            raise exc
        self._group_ready = False
        log.warning("taskq: consumer group missing, recreating it: %s", exc)
        self.ensure_group()

    def read(self, consumer: str, *, count: int = 100, block_ms: int | None = 1000,
             pending: bool = False) -> list[Entry]:
        """New entries (``>``), or with ``pending`` this consumer's own un-acked ones."""
        try:
            return self._read(consumer, count=count, block_ms=block_ms, pending=pending)
        except redis.ResponseError as exc:
            self._regroup_on_nogroup(exc)
            return []

    def _read(self, consumer: str, *, count: int, block_ms: int | None,
              pending: bool) -> list[Entry]:
        self.ensure_group()
        start = "0" if pending else ">"
        resp: Any = self.r.xreadgroup(self.group, consumer, {self.stream: start}, count=count,
                                      block=None if pending else block_ms)
        entries = self._entries(resp)
        # Re-reading the pending list is a delivery too: report Redis's count, or a loop
        # restarted under the same name would never reach max_deliveries.
        return self._with_counts(consumer, entries) if pending else entries

    def read_then_get(self, consumer: str, key: str, *, count: int = 100,
                      block_ms: int = 1000) -> tuple[list[Entry], Any]:
        """New entries, and the value of ``key`` read *after* they arrived, in one round trip.

        A pipelined command after a blocking XREADGROUP runs when the read returns, so the
        evaluator learns of trigger changes made before an event without a second request.
        """
        self.ensure_group()
        pipe = self.r.pipeline(transaction=False)
        pipe.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        pipe.get(key)
        try:
            resp, value = pipe.execute()
        except redis.ResponseError as exc:
            self._regroup_on_nogroup(exc)
            return [], self.r.get(key)
        return self._entries(resp), value

    def _entries(self, resp: Any) -> list[Entry]:
        out: list[Entry] = []
        for _stream, entries in resp or []:
            for sid, fields in entries:
                if fields:  # a pending entry trimmed away comes back with no fields
                    out.append(Entry(_sid(sid), fields))
                else:
                    self.ack([_sid(sid)])
        return out

    def claim_stale(self, consumer: str, *, min_idle_ms: int, count: int = 100) -> list[Entry]:
        """XAUTOCLAIM what a crashed evaluator left pending, with each entry's delivery count."""
        try:
            return self._claim_stale(consumer, min_idle_ms=min_idle_ms, count=count)
        except redis.ResponseError as exc:
            self._regroup_on_nogroup(exc)
            return []

    def _claim_stale(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Entry]:
        self.ensure_group()
        claimed: list[Entry] = []
        cursor = "0-0"
        while True:
            resp: Any = self.r.xautoclaim(self.stream, self.group, consumer, min_idle_ms,
                                          start_id=cursor, count=count)
            cursor = _sid(resp[0])
            claimed.extend(Entry(_sid(sid), f) for sid, f in resp[1] if f)
            if cursor == "0-0" or len(claimed) >= count:
                break
        return self._with_counts(consumer, claimed)

    def _with_counts(self, consumer: str, entries: list[Entry]) -> list[Entry]:
        """The entries with each one's delivery count, as the pending list has it."""
        if not entries:
            return entries
        ordered = sorted(entries, key=lambda e: tuple(map(int, e.stream_id.split("-"))))
        pending: Any = self.r.xpending_range(
            self.stream, self.group, ordered[0].stream_id, ordered[-1].stream_id,
            len(entries) + 500, consumername=consumer)  # its other pending ones too
        counts = {_sid(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [Entry(e.stream_id, e.fields, counts.get(e.stream_id, 1)) for e in entries]

    def ack(self, stream_ids: Sequence[str]) -> None:
        if stream_ids:
            pipe = self.r.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *stream_ids)
            pipe.hdel(constants.EVENT_FAILURES, *stream_ids)  # one round trip with the ack
            pipe.execute()

    def refund(self, consumer: str, entries: Sequence[Entry]) -> list[str]:
        if not entries:
            return []
        args: list[Any] = [self.group, consumer]
        for e in entries:
            args += [e.stream_id, max(0, e.deliveries - 1)]
        kept: Any = self.r.eval(_REFUND, 1, self.stream, *args)
        return [_sid(k) for k in kept]

    def counts(self) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xlen(constants.DEAD_LETTER_STREAM)
        length, dead = pipe.execute()
        try:
            summary: Any = self.r.xpending(self.stream, self.group)
            pending = int(summary["pending"])
        except redis.ResponseError:  # no group yet: nothing was ever read
            pending = 0
        return {"length": int(length), "pending": pending, "dead": int(dead)}

    def is_outage(self, exc: BaseException) -> bool:
        return outages.is_outage(exc)

    def scan(self, after: str, count: int = 1000) -> list[tuple[str, Event | None]]:
        """Entries after ``after`` (exclusive), decoded where possible; the reconciler's view."""
        resp: Any = self.r.xrange(self.stream, min=f"({after}" if after != "0" else "-",
                                  count=count)
        return [_decoded(sid, fields) for sid, fields in resp]

    def stream_state(self) -> StreamState:
        """The stream's last generated id and the group's last delivered one, in one trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.xinfo_stream(self.stream)
        pipe.xinfo_groups(self.stream)
        info, groups = pipe.execute(raise_on_error=False)
        if isinstance(info, redis.ResponseError):
            return StreamState(exists=False)  # "no such key"
        group_last = None
        for g in groups if not isinstance(groups, Exception) else []:
            if _sid(g["name"]) == self.group:
                group_last = _sid(g["last-delivered-id"])
        return StreamState(exists=True, last_id=_sid(info["last-generated-id"]),
                           group_last_id=group_last)

    def tail(self, last_id: str = "$", block_ms: int = 1000,
             count: int = 100) -> list[tuple[str, Event | None]]:
        """What ``taskq events tail`` shows: entries after ``last_id`` (no consumer group)."""
        resp: Any = self.r.xread({self.stream: last_id}, count=count, block=block_ms)
        return [_decoded(sid, fields) for _stream, entries in resp or [] for sid, fields in entries]


def _decoded(sid: Any, fields: dict[Any, Any]) -> tuple[str, Event | None]:
    try:
        return _sid(sid), Event.from_fields(fields)
    except Exception:  # EventError, or a RecursionError on a payload nested too deep
        return _sid(sid), None
