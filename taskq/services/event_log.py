"""The one walk over a range of the event log that replay and what-if share: pages in the
order of record, each resuming after the last one's position (keyset, never OFFSET). And
what every long pass over it wants: the cyclic collector paused."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from taskq.core.logged import LoggedEvent
from taskq.ports import Context

#: Positions a page spans (so at most this many events): large enough that the per-query
#: cost vanishes, small enough that a page's bodies stay a few megabytes.
PAGE = 5000


def pages(rt: Context, *, namespaces: Sequence[str], since: datetime,
          until: datetime | None, page: int = PAGE) -> Iterator[list[LoggedEvent]]:
    """The stored events of ``namespaces`` recorded from ``since`` to ``until``, as the log
    held them when the walk began: what a replay fires while it walks (new run events)
    is not walked again. Windows with no event of the range are skipped silently."""
    span = rt.store.event_span(namespaces=namespaces, since=since, until=until)
    if span is None:
        return
    first, last = span
    for after in range(first - 1, last, page):
        rows = rt.store.events_between(namespaces=namespaces, since=since, until=until,
                                       after_id=after, upto_id=min(after + page, last))
        if rows:
            yield rows


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection during a pass that builds many objects and frees none:
    each full collection walks every one of them again (three quarters of explaining
    100,000 events went to it). Reference counting still frees what is dropped; the
    collector runs again when the pass ends."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
