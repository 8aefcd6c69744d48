"""The trigger-evaluation loop: stream entry -> matching rules -> durable firings -> XACK.

An entry is acknowledged only after every firing it causes is committed, so a crash at any
point leaves it pending; another evaluator (or this one restarted) reclaims it with
XAUTOCLAIM and re-evaluates it, and the unique firing rows make the second pass a no-op
except for publishing whatever the first pass committed but did not send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskq import constants
from taskq.core.events import Event, is_local
from taskq.core.matching import Rule, RuleIndex
from taskq.core.stored import Entry, JobTemplate
from taskq.core.triggers.base import KindRegistry
from taskq.errors import EventError
from taskq.ports import Context
from taskq.services.firing import fire

log = logging.getLogger(__name__)


class Observer(Protocol):
    """Sees every decoded event after the rules fired (pipelines advance here). Must be
    idempotent: it may see an event again after a crash or redelivery. An exception leaves
    the entry pending, to be evaluated again."""

    def observe(self, rt: Context, event: Event) -> None: ...

#: How often the rule set is re-checked in the database even if no version bump was seen.
DB_RECHECK_SECONDS = 5.0
#: How often a running loop looks for entries abandoned by dead evaluators.
CLAIM_EVERY_SECONDS = 2.0
#: Published outbox rows are marked in one transaction once the stream has been quiet for
#: MARK_IDLE_MS (so the write does not collide with the worker claiming the run), when this
#: many are waiting, or when the oldest has waited MARK_MAX_WAIT (well under relay grace).
MARK_IDLE_MS = 50
MARK_BATCH = 100
MARK_MAX_WAIT = 0.5
#: A loop that found every slot taken looks again this often (a slot left on a warm
#: shutdown is taken over within about this long).
STANDBY_SECONDS = 1.0
#: A loop whose slice raised (Redis or the database away) starts again after this long.
RETRY_SECONDS = 2.0


def load_rules(rt: Context, kinds: KindRegistry
               ) -> tuple[RuleIndex, dict[tuple[str, str], JobTemplate]]:
    rules: list[Rule] = []
    for t in rt.store.list_triggers(enabled_only=True):
        try:
            rules.append(kinds.build_rule(t))
        except Exception as exc:  # one bad row must not stop every other trigger
            log.error("taskq: trigger %r (id %s) has an invalid stored spec, skipped: %s",
                      t.name, t.id, exc)
    templates: dict[tuple[str, str], JobTemplate] = {}
    for r in rules:
        key = (r.namespace, r.job)
        if key not in templates:
            found = rt.store.find_job_template(r.job, r.namespace)
            if found:
                templates[key] = found
    return RuleIndex(rules), templates


@dataclass
class Stats:
    processed: int = 0
    fired: int = 0
    duplicates: int = 0
    errors: int = 0
    dead_lettered: int = 0
    reloads: int = 0
    last_error: str | None = field(default=None)


class Evaluator:
    def __init__(self, rt: Context, consumer: str, *, kinds: KindRegistry,
                 observers: Sequence[Observer] = ()) -> None:
        self.rt = rt
        self.consumer = consumer
        self.kinds = kinds
        self.observers = tuple(observers)
        self.index = RuleIndex()
        self.templates: dict[tuple[str, str], JobTemplate] = {}
        self.stats = Stats()
        self._unmarked: list[str] = []
        self._unmarked_since = 0.0
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
            self.index, self.templates = load_rules(self.rt, self.kinds)
            self.stats.reloads += 1
        self._version, self._fingerprint = version, fingerprint

    # -- one entry ------------------------------------------------------------------------

    def handle(self, entry: Entry) -> bool:
        """True when the entry may be acknowledged."""
        try:
            event = entry.decode()
        except EventError as exc:
            self.rt.bus.dead_letter(entry, str(exc))
            self.stats.dead_lettered += 1
            return False  # dead_letter already acked it
        if entry.deliveries > self.rt.settings.max_deliveries:
            self.rt.bus.dead_letter(
                entry, f"delivered {entry.deliveries} times without being evaluated; "
                       f"last error: {self.stats.last_error}")
            self.stats.dead_lettered += 1
            return False
        for match in ([] if is_local(event) else self.index.match(event)):
            rule = match.rule
            template = self.templates.get((rule.namespace, rule.job))
            if template is None:  # registered after the rules were loaded
                template = self.rt.store.find_job_template(rule.job, rule.namespace)
                if template:
                    self.templates[(rule.namespace, rule.job)] = template
            if not self._unmarked:
                self._unmarked_since = time.monotonic()
            record = fire(self.rt, self.kinds.for_rule(rule), match, template,
                          published=self._unmarked)
            if record is None:
                continue  # a join still waiting for its other inputs
            if record.created:
                self.stats.fired += 1
            else:
                self.stats.duplicates += 1
        for observer in self.observers:
            observer.observe(self.rt, event)
        self.stats.processed += 1
        return True

    def process(self, entries: list[Entry]) -> None:
        done: list[str] = []
        for entry in entries:
            try:
                if self.handle(entry):
                    done.append(entry.stream_id)
            except Exception as exc:  # DB or broker trouble: leave pending, retried later
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("taskq: evaluating %s failed; it stays pending", entry.stream_id)
        self.rt.bus.ack(done)

    # -- the loop -------------------------------------------------------------------------

    def run_once(self, block_ms: int | None = None) -> int:
        block = block_ms if block_ms is not None else self.rt.settings.evaluator_block_ms
        if self._unmarked:  # never block for long with rows left to mark
            block = min(block, MARK_IDLE_MS)
        entries, version = self.rt.bus.read_then_get(
            self.consumer, constants.TRIGGERS_VERSION, block_ms=max(1, block))
        self.refresh(version=version, known=True)
        self.process(entries)
        if self._unmarked and (not entries or len(self._unmarked) >= MARK_BATCH
                               or time.monotonic() - self._unmarked_since >= MARK_MAX_WAIT):
            self.flush_marks()
        return len(entries)

    def flush_marks(self) -> None:
        try:
            self.rt.store.mark_published(*self._unmarked)
            self._unmarked.clear()
        except Exception:  # the relay covers unmarked rows; try again next time
            log.exception("taskq: marking %d outbox rows failed", len(self._unmarked))

    def recover(self) -> int:
        """Own pending entries first (a restart with the same name), then abandoned ones."""
        self.refresh()
        mine = self.rt.bus.read(self.consumer, count=500, pending=True)
        self.process(mine)
        stale = self.rt.bus.claim_stale(self.consumer,
                                        min_idle_ms=self.rt.settings.claim_idle_ms)
        self.process(stale)
        return len(mine) + len(stale)

    def run(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> Stats:
        """One slice: rules reloaded and pending entries recovered, then the loop until
        ``seconds`` have passed or ``stop()`` says so (a warm shutdown)."""
        deadline = time.monotonic() + seconds
        self.refresh(force=True)
        self.recover()
        last_claim = time.monotonic()
        while time.monotonic() < deadline and not stop():
            self.heartbeat()
            block = int(min(self.rt.settings.evaluator_block_ms,
                            max(1.0, (deadline - time.monotonic()) * 1000)))
            self.run_once(block_ms=block)
            if time.monotonic() - last_claim >= CLAIM_EVERY_SECONDS:
                self.process(self.rt.bus.claim_stale(
                    self.consumer, min_idle_ms=self.rt.settings.claim_idle_ms))
                last_claim = time.monotonic()
        self.flush_marks()
        return self.stats

    # -- liveness -------------------------------------------------------------------------

    def stale_after(self) -> float:
        return max(5.0, 3 * self.rt.settings.evaluator_block_ms / 1000)

    def heartbeat(self) -> None:
        self.rt.coord.heartbeat(self.consumer, time.time())

    def try_join(self) -> bool:
        """Claim a slot among ``settings.evaluators`` live loops; False if all are taken."""
        coord = self.rt.coord
        coord.prune_members(time.time() - self.stale_after())
        if coord.is_member(self.consumer):
            return True
        if coord.member_count() >= self.rt.settings.evaluators:
            return False
        self.heartbeat()
        return True

    def leave(self) -> None:
        self.rt.coord.leave(self.consumer)


def _pause(seconds: float, stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not stop() and time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


def serve(ev: Evaluator, *, slice_seconds: float, stop: Callable[[], bool],
          ready: Callable[[], None] = lambda: None) -> None:
    """Evaluate until ``stop()``: slices back to back while this loop holds one of the
    ``settings.evaluators`` slots, standing by while all are taken. ``ready()`` is called
    once, when the loop has first joined or found every slot taken. The slot is left on the
    way out, so a standing-by loop (in this worker or another) takes over within
    STANDBY_SECONDS; a loop killed without leaving frees it when its heartbeat goes stale.
    """
    told = False
    try:
        while not stop():
            try:
                try:
                    joined = ev.try_join()
                finally:  # up, even if Redis is not: nobody should wait on a retry loop
                    if not told:
                        told = True
                        ready()
                if not joined:
                    _pause(STANDBY_SECONDS, stop)
                    continue
                ev.run(slice_seconds, stop)
            except Exception as exc:  # Redis or the database away: entries stay pending
                ev.stats.errors += 1
                ev.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("taskq: the evaluator loop failed; again in %ss", RETRY_SECONDS)
                _pause(RETRY_SECONDS, stop)
    finally:
        try:
            ev.flush_marks()
            ev.leave()
        except Exception:  # the relay covers unmarked rows; a stale slot frees itself
            log.exception("taskq: leaving the evaluator slot failed")
