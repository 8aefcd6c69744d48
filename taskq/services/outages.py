"""Bad events apart from a broken infrastructure.

Each adapter knows its own outage errors (``Store.is_outage``, ``EventLog.is_outage``,
``Publisher.is_outage``); this module asks them all, following ``raise ... from`` chains,
so a service never names an adapter's exception. An outage is retried with backoff for as
long as it takes and never counts against an event's delivery budget.
"""

from __future__ import annotations

from taskq.ports import Context

#: Python's own socket errors, whichever client raised them unwrapped.
_SOCKET_ERRORS = (ConnectionError, TimeoutError)


def is_outage(rt: Context, exc: BaseException) -> bool:
    """True if ``exc`` (or what caused it) says a service is away, not that the work is
    wrong."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if (isinstance(seen, _SOCKET_ERRORS) or rt.store.is_outage(seen)
                or rt.bus.is_outage(seen) or rt.publisher.is_outage(seen)):
            return True
        seen = seen.__cause__
    return False


class Backoff:
    """Waits that double from ``first`` up to ``cap`` seconds; ``reset`` after a success."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = max(first, cap)
        self._next = first

    def next(self) -> float:
        wait = self._next
        self._next = min(self.cap, self._next * 2)
        return wait

    def reset(self) -> None:
        self._next = self.first
