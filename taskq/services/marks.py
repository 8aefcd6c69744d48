"""What the evaluator writes after the ack: the outbox rows it published and the events it
decided, marked in one transaction per batch so the hot path makes no write of its own.

They are marked once the stream has been quiet for MARK_IDLE_MS (so the write does not
collide with the worker claiming the run), when MARK_BATCH rows or EVALUATED_BATCH events
wait, or when the oldest has waited MARK_MAX_WAIT (well under the relay's grace). A crash
before the mark costs nothing: the relay publishes an unmarked row at most once more, and an
unmarked event is at worst evaluated again (its firings are unique).
"""

from __future__ import annotations

import logging
import time

from taskq.ports import Context
from taskq.services.health import describe
from taskq.services.outages import is_outage

log = logging.getLogger(__name__)

MARK_IDLE_MS = 50
MARK_BATCH = 100
EVALUATED_BATCH = 1000
MARK_MAX_WAIT = 0.5


class Marks:
    def __init__(self) -> None:
        #: Run uuids whose outbox row was published (``fire`` appends to this list).
        self.published: list[str] = []
        #: Event ids whose every firing is committed.
        self.evaluated: list[str] = []
        self.since = 0.0

    def __bool__(self) -> bool:
        return bool(self.published or self.evaluated)

    def start(self) -> None:
        if not self:
            self.since = time.monotonic()

    def decided(self, event_id: str) -> None:
        self.start()
        self.evaluated.append(event_id)

    def due(self, *, read_any: bool) -> bool:
        return bool(self) and (not read_any or len(self.published) >= MARK_BATCH
                               or len(self.evaluated) >= EVALUATED_BATCH
                               or time.monotonic() - self.since >= MARK_MAX_WAIT)

    def flush(self, rt: Context) -> None:
        if not self:
            return
        try:
            rt.store.mark_done(published=self.published, evaluated=self.evaluated)
            self.published.clear()
            self.evaluated.clear()
        except Exception as exc:  # the relay covers unmarked rows; try again next time
            log.warning("taskq: marking %d outbox rows and %d events failed: %s",
                        len(self.published), len(self.evaluated), describe(exc),
                        exc_info=not is_outage(rt, exc))
