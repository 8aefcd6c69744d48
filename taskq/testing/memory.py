"""In-memory adapters of taskq's ports: a Redis consumer group with XAUTOCLAIM, Redis
coordination and a broker, with their semantics and no server; a test sets what it would
otherwise wait for (idle time, delivery counts, publish failures, lost data)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from taskq import constants
from taskq.core.delivery import StreamState
from taskq.core.events import Event
from taskq.core.stored import Entry

Clock = Callable[[], float]


def _parse_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class PendingEntry:
    """One entry of the consumer group's pending list, as XPENDING reports it."""

    consumer: str
    deliveries: int
    delivered_at: float


class InMemoryEventLog:
    """One stream read through one consumer group, with Redis's semantics.

    A new read moves entries to the reader's pending list; ``pending=True`` re-reads the
    reader's own; :meth:`claim_stale` takes any entry idle long enough, the claimer's own
    included (as XAUTOCLAIM does: that is how a poison entry reaches ``max_deliveries`` with
    a single evaluator). Idle time comes from ``clock`` so a test advances it instead of
    sleeping. Nothing blocks: ``block_ms`` is accepted and ignored.
    """

    def __init__(self, coord: InMemoryCoordination | None = None, *,
                 clock: Clock = time.monotonic) -> None:
        self.coord = coord
        self.clock = clock
        self._fields: dict[str, dict[str, str]] = {}
        self._ids: list[str] = []
        self._next = 0  # index in _ids of the first entry the group has not delivered
        self._pending: dict[str, PendingEntry] = {}
        self._dead: list[dict[str, str]] = []
        self._failures: dict[str, str] = {}
        self._last = (0, 0)
        self._dead_seq = 0

    # -- writing --------------------------------------------------------------------------

    def append_raw(self, fields: dict[str, str]) -> str:
        """Append fields as they are, so a test can put an undecodable entry in the stream."""
        ms = int(time.time() * 1000)
        self._last = (ms, 0) if ms > self._last[0] else (self._last[0], self._last[1] + 1)
        stream_id = f"{self._last[0]}-{self._last[1]}"
        self._fields[stream_id] = dict(fields)
        self._ids.append(stream_id)
        return stream_id

    def append(self, event: Event) -> str:
        return self.append_raw(event.to_fields())

    def append_many(self, events: Sequence[Event]) -> list[str]:
        return [self.append(e) for e in events]

    # -- the consumer group ---------------------------------------------------------------

    def _deliver(self, stream_id: str, consumer: str) -> Entry:
        entry = self._pending[stream_id]
        entry.consumer = consumer
        entry.deliveries += 1
        entry.delivered_at = self.clock()
        return Entry(stream_id, dict(self._fields[stream_id]), entry.deliveries)

    def _pending_ids(self, accept: Callable[[PendingEntry], bool]) -> list[str]:
        return sorted((sid for sid, p in self._pending.items() if accept(p)), key=_parse_id)

    def read(self, consumer: str, *, count: int = 100, block_ms: int | None = 1000,
             pending: bool = False) -> list[Entry]:
        if pending:
            mine = self._pending_ids(lambda p: p.consumer == consumer)[:count]
            return [self._deliver(sid, consumer) for sid in mine]
        new = self._ids[self._next:self._next + count]
        self._next += len(new)
        now = self.clock()
        for sid in new:
            self._pending[sid] = PendingEntry(consumer, 1, now)
        return [Entry(sid, dict(self._fields[sid]), 1) for sid in new]

    def read_then_get(self, consumer: str, key: str, *, count: int = 100,
                      block_ms: int = 1000) -> tuple[list[Entry], Any]:
        entries = self.read(consumer, count=count, block_ms=block_ms)
        return entries, (self.coord.get_value(key) if self.coord is not None else None)

    def claim_stale(self, consumer: str, *, min_idle_ms: int,
                    count: int = 100) -> list[Entry]:
        now = self.clock()
        stale = self._pending_ids(lambda p: (now - p.delivered_at) * 1000 >= min_idle_ms)
        return [self._deliver(sid, consumer) for sid in stale[:count]]

    def ack(self, stream_ids: Sequence[str]) -> None:
        for sid in stream_ids:
            self._pending.pop(sid, None)
            self._failures.pop(sid, None)

    def refund(self, consumer: str, entries: Sequence[Entry]) -> list[str]:
        kept = []
        for e in entries:
            p = self._pending.get(e.stream_id)
            if p is not None and p.consumer == consumer:
                p.deliveries, p.delivered_at = max(0, e.deliveries - 1), self.clock()
                kept.append(e.stream_id)
        return kept

    def is_outage(self, exc: BaseException) -> bool:
        return False  # nothing here is ever away; services treat socket errors as outages

    def note_failure(self, stream_id: str, error: str) -> None:
        self._failures[stream_id] = error

    def failure_of(self, stream_id: str) -> str | None:
        return self._failures.get(stream_id)

    def dead_letter(self, entry: Entry, reason: str) -> None:
        record = {"id": f"dead-{self._dead_seq}", "reason": reason,
                  "stream_id": entry.stream_id}
        self._dead_seq += 1
        record.update({f"original.{k}": str(v) for k, v in entry.fields.items()})
        self._dead.append(record)
        self.ack([entry.stream_id])

    def replay_dead(self, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        wanted = None if ids is None else set(ids)
        out, kept = [], []
        for d in self._dead:
            if wanted is not None and d["id"] not in wanted:
                kept.append(d)
                continue
            fields = {k[len("original."):]: v for k, v in d.items()
                      if k.startswith("original.")}
            out.append((d["id"], self.append_raw(fields)))
        self._dead = kept
        return out

    def counts(self) -> dict[str, int]:
        return {"length": len(self._ids), "pending": len(self._pending),
                "dead": len(self._dead)}

    def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        """Newest first, like XREVRANGE on the dead-letter stream."""
        return [dict(d) for d in reversed(self._dead)][:count]

    def scan(self, after: str, count: int = 1000) -> list[tuple[str, Event | None]]:
        start = (-1, -1) if after == "0" else _parse_id(after)
        out: list[tuple[str, Event | None]] = []
        for sid in (i for i in self._ids if _parse_id(i) > start):
            try:
                out.append((sid, Event.from_fields(self._fields[sid])))
            except Exception:  # as the Redis adapter: undecodable for whatever reason
                out.append((sid, None))
            if len(out) >= count:
                break
        return out

    def stream_state(self) -> StreamState:
        if not self._ids and self._last == (0, 0):
            return StreamState(exists=False)
        delivered = self._ids[self._next - 1] if self._next else "0-0"
        return StreamState(exists=True, last_id=f"{self._last[0]}-{self._last[1]}",
                           group_last_id=delivered)

    def lose_data(self) -> None:
        """What a Redis restarted without persistence shows: no stream, no pending list."""
        self._fields.clear()
        self._ids.clear()
        self._next = 0
        self._pending.clear()
        self._last = (0, 0)

    # -- for assertions -------------------------------------------------------------------

    def pending_entries(self) -> dict[str, tuple[str, int]]:
        """Every un-acked entry: stream id -> (consumer, deliveries)."""
        return {sid: (self._pending[sid].consumer, self._pending[sid].deliveries)
                for sid in self._pending_ids(lambda p: True)}

    def undelivered(self) -> int:
        return len(self._ids) - self._next


class InMemoryCoordination:
    """Values, locks and members in dicts. The trigger version is a string under
    ``TRIGGERS_VERSION``, so :meth:`trigger_version` and a linked event log's
    ``read_then_get`` see the same value (as both read one Redis key). Locks never expire: a
    unit test's holder cannot be killed, so neither the lease nor ``timeout`` is observable."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.held: set[str] = set()
        self.expiries: dict[str, int] = {}
        self.live: dict[str, float] = {}
        self.reports: dict[str, str] = {}

    def trigger_version(self) -> Any:
        return self.values.get(constants.TRIGGERS_VERSION)

    def bump_triggers(self) -> None:
        current = int(self.values.get(constants.TRIGGERS_VERSION, "0"))
        self.values[constants.TRIGGERS_VERSION] = str(current + 1)

    @contextmanager
    def single_runner(self, name: str, *, timeout: float) -> Iterator[bool]:
        if name in self.held:
            yield False
            return
        self.held.add(name)
        try:
            yield True
        finally:
            self.held.discard(name)

    def get_value(self, key: str) -> str | None:
        return self.values.get(key)

    def set_value(self, key: str, value: str) -> None:
        self.values[key] = value

    def remember(self, key: str, value: str, *, ttl_seconds: int) -> None:
        """Never expires by itself: a unit test pops ``values`` to move time."""
        self.values[key] = value
        self.expiries[key] = ttl_seconds

    def heartbeat(self, member: str, at: float) -> None:
        self.live[member] = at

    def prune_members(self, before: float) -> None:
        # ZREMRANGEBYSCORE 0 before: inclusive.
        self.live = {m: at for m, at in self.live.items() if at > before}

    def is_member(self, member: str) -> bool:
        return member in self.live

    def member_count(self) -> int:
        return len(self.live)

    def leave(self, member: str) -> None:
        self.live.pop(member, None)

    def members(self) -> dict[str, float]:
        return dict(self.live)

    def set_health(self, member: str, value: str) -> None:
        self.reports[member] = value

    def health(self) -> dict[str, str]:
        return dict(self.reports)

    def clear_health(self) -> None:
        self.reports.clear()

    def lose_data(self) -> None:
        self.values.clear()
        self.held.clear()
        self.live.clear()
        self.reports.clear()
