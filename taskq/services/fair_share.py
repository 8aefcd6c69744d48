"""The order an evaluator takes a batch in: namespaces take turns, the next entry always the
oldest of the namespace that has spent least time so far, so one tenant's costly events
cannot hold the others' behind them. Within a namespace, stream order is kept."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence

from taskq.core.events import Event
from taskq.core.stored import Entry


def decode_quietly(entry: Entry) -> Event | Exception:
    """The event, or why it cannot be decoded (an EventError, or e.g. a RecursionError of a
    payload too deep): the evaluator decides what each means."""
    try:
        return entry.decode()
    except Exception as exc:
        return exc


def fair_order(entries: Sequence[Entry]) -> Iterator[tuple[Entry, Event | Exception]]:
    """Each entry with its decoding; the time the caller spends on it (until it asks for the
    next) is charged to its namespace. Undecodable entries form a namespace of their own."""
    queues: dict[str, deque[tuple[Entry, Event | Exception]]] = {}
    for entry in entries:
        decoded = decode_quietly(entry)
        ns = decoded.namespace if isinstance(decoded, Event) else ""
        queues.setdefault(ns, deque()).append((entry, decoded))
    spent = dict.fromkeys(queues, 0.0)
    while queues:
        ns = min(queues, key=spent.__getitem__) if len(queues) > 1 else next(iter(queues))
        entry, decoded = queues[ns].popleft()
        if not queues[ns]:
            del queues[ns]
        started = time.perf_counter()
        yield entry, decoded
        spent[ns] += time.perf_counter() - started
