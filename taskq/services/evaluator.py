"""The trigger-evaluation loop: stream entry -> matching rules -> durable firings -> XACK.

An entry is acknowledged only after every firing it causes is committed, so a crash at any
point leaves it pending; another evaluator (or this one restarted) reclaims it with
XAUTOCLAIM and re-evaluates it, and the unique firing rows make the second pass a no-op
except for publishing whatever the first pass committed but did not send.

Redis may lose the stream, pending list and all: what survives is the database's record of
which events were evaluated (``run_events.evaluated``), which the reconciler trusts instead
of the stream. It is written after the ack, batched with the outbox marks, so the hot path
makes no extra write; an event acked but not yet marked is at worst evaluated again.

Bad events apart from a broken infrastructure (:mod:`taskq.services.outages`):

- an outage (database, Redis, broker away or refusing) stops the batch: the entries not yet
  evaluated are *held*, their deliveries refunded, and retried with backoff for as long as
  it takes; the evaluator reads nothing new meanwhile and reports itself degraded
  (:mod:`taskq.services.health`). Nothing is dead-lettered for an outage;
- an entry that cannot be decoded as an event is dead-lettered at once with the reason;
  any other failure of an entry (a RecursionError while decoding a deep payload, an
  observer's error) is remembered as that entry's own error and the entry is delivered
  again, until its budget (``max_deliveries``) is spent and it is dead-lettered with it;
- a trigger whose evaluation raises is recorded as an error firing for that event and the
  other triggers go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from taskq import constants
from taskq.core.budget import RuleBudget, rule_alarm
from taskq.core.events import Event, is_local
from taskq.core.matching import Match, RuleIndex, Skip
from taskq.core.stored import Entry
from taskq.core.triggers.base import KindRegistry
from taskq.errors import EventError
from taskq.ports import Context
from taskq.services.fair_share import decode_quietly, fair_order
from taskq.services.firing import record_skip
from taskq.services.firings import Firings
from taskq.services.health import EvaluatorHealth, describe
from taskq.services.marks import MARK_IDLE_MS, Marks
from taskq.services.outages import Backoff, is_outage
from taskq.services.quarantine import Quarantine
from taskq.services.rules import Observer, Stats, load_rules

log = logging.getLogger(__name__)

#: How often the rule set is re-checked in the database even if no version bump was seen.
DB_RECHECK_SECONDS = 5.0
#: How often a running loop looks for entries abandoned by dead evaluators.
CLAIM_EVERY_SECONDS = 2.0
#: The first wait after an outage; it doubles up to ``settings.outage_retry_max_seconds``.
OUTAGE_FIRST_WAIT = 0.5


class Evaluator:
    def __init__(self, rt: Context, consumer: str, *, kinds: KindRegistry,
                 observers: Sequence[Observer] = ()) -> None:
        self.rt = rt
        self.consumer = consumer
        self.kinds = kinds
        self.observers = tuple(observers)
        self.index = RuleIndex()
        self.stats = Stats()
        self.health = EvaluatorHealth(rt, consumer)
        self.backoff = Backoff(OUTAGE_FIRST_WAIT, rt.settings.outage_retry_max_seconds)
        #: Entries delivered to this loop that an outage kept it from evaluating.
        self.held: list[Entry] = []
        self.marks = Marks()
        self.quarantine = Quarantine()
        self.firings = Firings(rt, kinds, stats=self.stats, marks=self.marks,
                               quarantine=self.quarantine)
        #: Events of the batch evaluated, decided once its firings commit.
        self._decided: list[str] = []
        self._version: Any = object()
        self._fingerprint: Any = None
        self._checked_db = 0.0

    # -- rules ----------------------------------------------------------------------------

    def refresh(self, force: bool = False, version: Any = None, known: bool = False) -> None:
        """Reload rules when the Redis version moved, or the DB fingerprint changed."""
        if not known:
            version = self.rt.coord.trigger_version()
        now = time.monotonic()
        stale_db = now - self._checked_db >= DB_RECHECK_SECONDS
        if not force and version == self._version and not stale_db:
            return
        fingerprint = self.rt.store.triggers_fingerprint()
        self._checked_db = now
        if force or version != self._version or fingerprint != self._fingerprint:
            self.index, self.firings.templates, failing = load_rules(self.rt, self.kinds)
            self.quarantine.loaded(failing)
            self.stats.reloads += 1
        self._version, self._fingerprint = version, fingerprint

    # -- one entry ------------------------------------------------------------------------

    def handle(self, entry: Entry, decoded: Event | Exception | None = None) -> bool:
        """True when the entry may be acknowledged (False: it was dead-lettered)."""
        event = decoded if decoded is not None else decode_quietly(entry)
        if entry.deliveries > self.rt.settings.max_deliveries:
            own = self.rt.bus.failure_of(entry.stream_id)
            self._dead_letter(entry, f"delivered {entry.deliveries} times without being "
                                     f"evaluated; last error: {own or 'none recorded'}")
            if isinstance(event, Event):  # decided, with its reason: never emitted again
                self.marks.decided(event.id)
            return False
        if isinstance(event, EventError):  # malformed for good: no delivery will fix it
            self._dead_letter(entry, str(event))
            return False
        if isinstance(event, Exception):  # e.g. too deep to decode: counts against its budget
            raise event
        for match in self.matches(event):
            self.firings.fire(match)
        for observer in self.observers:
            observer.observe(self.rt, event)
        self.stats.processed += 1
        self._decided.append(event.id)
        return True

    def _dead_letter(self, entry: Entry, reason: str) -> None:
        self.rt.bus.dead_letter(entry, reason)
        self.stats.dead_lettered += 1

    def _failed(self, entry: Entry, exc: Exception) -> None:
        """Not an outage: the entry's own error, kept for its dead letter; it stays
        pending and is delivered again."""
        self.stats.errors += 1
        self.stats.last_error = describe(exc)
        log.error("taskq: evaluating %s failed (delivery %d of %d); it stays pending: %s",
                  entry.stream_id, entry.deliveries, self.rt.settings.max_deliveries,
                  self.stats.last_error, exc_info=exc)
        try:
            self.rt.bus.note_failure(entry.stream_id, f"{type(exc).__name__}: {exc}")
        except Exception as again:
            log.warning("taskq: remembering the error of %s failed: %s", entry.stream_id,
                        describe(again))

    def matches(self, event: Event) -> list[Match]:
        """The rules that fire; each rule's check gets TASKQ_RULE_CHECK_SECONDS, and one
        that fails or overruns is recorded as skipped for this event, not retried."""
        if is_local(event):
            return []
        skipped: list[Skip] = []
        with RuleBudget(self.rt.settings.rule_check_seconds, time.monotonic) as budget:
            found = self.index.match(event, budget=budget, skipped=skipped)
        for skip in skipped:
            if record_skip(self.rt, self.kinds.for_rule(skip.rule), skip).created:
                self.quarantine.failed(self.rt, skip.rule, skip.reason)
            self.stats.rules_skipped += 1
        return self.quarantine.active(found)

    def process(self, entries: list[Entry]) -> None:
        """Namespaces take turns (:func:`fair_order`), so one tenant's costly events cannot
        hold the others' behind them. The batch's single firings commit together
        (:class:`Firings`), and only then are its entries acknowledged. An outage stops the
        batch: its entries not acknowledged are held (deliveries refunded), what it planned
        is dropped (planned again when they are retried) and the outage raised."""
        done: list[str] = []
        settled: set[str] = set()  # left pending (failed) or dead-lettered: not held
        if entries:
            for observer in self.observers:
                observer.begin_batch(self.rt)
        try:
            for entry, decoded in fair_order(entries):
                try:
                    if self.handle(entry, decoded):
                        done.append(entry.stream_id)
                    else:
                        settled.add(entry.stream_id)
                except Exception as exc:
                    if is_outage(self.rt, exc):
                        raise
                    self._failed(entry, exc)
                    settled.add(entry.stream_id)
            self.firings.flush()
        except Exception as exc:
            if is_outage(self.rt, exc):
                self.firings.discard()
                self._decided.clear()
                self.held = [*(e for e in entries if e.stream_id not in settled), *self.held]
                self._refund()
            raise
        for event_id in self._decided:
            self.marks.decided(event_id)
        self._decided.clear()
        self.rt.bus.ack(done)

    def _refund(self) -> None:
        """Give back the deliveries an outage cost the held entries and keep them this
        loop's (their idle time restarts, so nobody reclaims them while it retries)."""
        if not self.held:
            return
        try:
            mine = set(self.rt.bus.refund(self.consumer, self.held))
        except Exception as exc:  # Redis away: they are refunded on the next try
            log.debug("taskq: refunding deliveries failed: %s", describe(exc))
            return
        self.held = [e for e in self.held if e.stream_id in mine]

    # -- the loop -------------------------------------------------------------------------

    def run_once(self, block_ms: int | None = None) -> int:
        block = block_ms if block_ms is not None else self.rt.settings.evaluator_block_ms
        if self.marks:  # never block for long with rows left to mark
            block = min(block, MARK_IDLE_MS)
        entries, version = self.rt.bus.read_then_get(
            self.consumer, constants.TRIGGERS_VERSION, block_ms=max(1, block))
        self.refresh(version=version, known=True)
        self.process(entries)
        if self.marks.due(read_any=bool(entries)):
            self.flush_marks()
        return len(entries)

    def flush_marks(self) -> None:
        self.marks.flush(self.rt)

    def recover(self) -> int:
        """Own pending entries first (a restart with the same name), then abandoned ones."""
        self.refresh()
        mine = self.rt.bus.read(self.consumer, count=500, pending=True)
        self.process(mine)
        stale = self.rt.bus.claim_stale(self.consumer,
                                        min_idle_ms=self.rt.settings.claim_idle_ms)
        self.process(stale)
        return len(mine) + len(stale)

    def retry_held(self) -> int:
        held, self.held = self.held, []
        self.process(held)
        return len(held)

    def run(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> Stats:
        """One slice: rules reloaded and pending entries recovered, then the loop until
        ``seconds`` have passed or ``stop()`` says so (a warm shutdown). An outage is
        waited out here, with backoff, holding what it kept from being evaluated."""
        deadline = time.monotonic() + seconds
        with rule_alarm():
            started, last_claim = False, time.monotonic()
            while time.monotonic() < deadline and not stop():
                try:
                    self.heartbeat()
                    if self.held:
                        self.retry_held()
                    elif not started:
                        self.refresh(force=True)
                        self.recover()
                        started, last_claim = True, time.monotonic()
                    else:
                        block = int(min(self.rt.settings.evaluator_block_ms,
                                        max(1.0, (deadline - time.monotonic()) * 1000)))
                        self.run_once(block_ms=block)
                        if time.monotonic() - last_claim >= CLAIM_EVERY_SECONDS:
                            self.process(self.rt.bus.claim_stale(
                                self.consumer, min_idle_ms=self.rt.settings.claim_idle_ms))
                            last_claim = time.monotonic()
                except Exception as exc:
                    if not is_outage(self.rt, exc):
                        raise
                    self._outage(exc, deadline, stop)
                    continue
                if self.health.degraded:
                    self.health.recovered()
                    self.backoff.reset()
            self._refund()
        self.flush_marks()
        return self.stats

    def _outage(self, exc: Exception, deadline: float, stop: Callable[[], bool]) -> None:
        self.stats.outages += 1
        self._refund()
        self.health.outage(exc, len(self.held))
        end = min(deadline, time.monotonic() + self.backoff.next())
        while (left := end - time.monotonic()) > 0 and not stop():
            time.sleep(min(1.0, left))
            try:  # keep this loop's slot while it waits
                self.heartbeat()
            except Exception as again:
                log.debug("taskq: heartbeat failed: %s", describe(again))

    # -- liveness -------------------------------------------------------------------------

    def heartbeat(self) -> None:
        self.rt.coord.heartbeat(self.consumer, time.time())
