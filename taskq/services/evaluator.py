"""The trigger-evaluation loop: stream entry -> matching rules -> durable firings -> XACK.

An entry is acknowledged only after every firing it causes is committed, so a crash at any
point leaves it pending; another evaluator (or this one restarted) reclaims it with
XAUTOCLAIM and re-evaluates it, and the unique firing rows make the second pass a no-op
except for publishing whatever the first pass committed but did not send.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskq import constants
from taskq.core.budget import RuleBudget, rule_alarm
from taskq.core.events import Event, is_local
from taskq.core.matching import Match, Rule, RuleIndex, Skip
from taskq.core.stored import Entry
from taskq.core.triggers.base import KindRegistry
from taskq.errors import EventError
from taskq.ports import Context
from taskq.services.firing import fire, record_skip

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


def load_rules(rt: Context, kinds: KindRegistry
               ) -> tuple[RuleIndex, dict[tuple[str, str], dict[str, Any]]]:
    rules: list[Rule] = []
    for t in rt.store.list_triggers(enabled_only=True):
        try:
            rules.append(kinds.build_rule(t))
        except Exception as exc:  # one bad row must not stop every other trigger
            log.error("taskq: trigger %r (id %s) has an invalid stored spec, skipped: %s",
                      t["name"], t["id"], exc)
    templates: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rules:
        key = (r.namespace, r.job)
        if key not in templates:
            found = rt.store.find_job_template(r.job, r.namespace)
            if found:
                templates[key] = found
    return RuleIndex(rules), templates


def _decode(entry: Entry) -> Event | EventError:
    try:
        return entry.decode()
    except EventError as exc:
        return exc


@dataclass
class Stats:
    processed: int = 0
    fired: int = 0
    duplicates: int = 0
    errors: int = 0
    dead_lettered: int = 0
    reloads: int = 0
    #: Rules skipped for an event because their check failed or overran its budget.
    rules_skipped: int = 0
    last_error: str | None = field(default=None)


class Evaluator:
    def __init__(self, rt: Context, consumer: str, *, kinds: KindRegistry,
                 observers: Sequence[Observer] = ()) -> None:
        self.rt = rt
        self.consumer = consumer
        self.kinds = kinds
        self.observers = tuple(observers)
        self.index = RuleIndex()
        self.templates: dict[tuple[str, str], dict[str, Any]] = {}
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

    def handle(self, entry: Entry, decoded: Event | EventError | None = None) -> bool:
        """True when the entry may be acknowledged."""
        event = decoded if decoded is not None else _decode(entry)
        if isinstance(event, EventError):
            self.rt.bus.dead_letter(entry, str(event))
            self.stats.dead_lettered += 1
            return False  # dead_letter already acked it
        if entry.deliveries > self.rt.settings.max_deliveries:
            self.rt.bus.dead_letter(
                entry, f"delivered {entry.deliveries} times without being evaluated; "
                       f"last error: {self.stats.last_error}")
            self.stats.dead_lettered += 1
            return False
        for match in self.matches(event):
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

    def matches(self, event: Event) -> list[Match]:
        """The rules that fire; each rule's check gets TASKQ_RULE_CHECK_SECONDS, and one
        that fails or overruns is recorded as skipped for this event, not retried."""
        if is_local(event):
            return []
        skipped: list[Skip] = []
        with RuleBudget(self.rt.settings.rule_check_seconds, time.monotonic) as budget:
            found = self.index.match(event, budget=budget, skipped=skipped)
        for skip in skipped:
            record_skip(self.rt, self.kinds.for_rule(skip.rule), skip)
            self.stats.rules_skipped += 1
        return found

    def process(self, entries: list[Entry]) -> None:
        """Namespaces take turns: the next entry is always the oldest of the namespace that
        has spent least time in this batch, so one tenant's costly events cannot hold the
        others' behind them. Within a namespace, stream order is kept."""
        queues: dict[str, deque[tuple[Entry, Event | EventError]]] = {}
        for entry in entries:
            decoded = _decode(entry)
            ns = "" if isinstance(decoded, EventError) else decoded.namespace
            queues.setdefault(ns, deque()).append((entry, decoded))
        spent = dict.fromkeys(queues, 0.0)
        done: list[str] = []
        while queues:
            ns = min(queues, key=spent.__getitem__) if len(queues) > 1 else next(iter(queues))
            entry, decoded = queues[ns].popleft()
            if not queues[ns]:
                del queues[ns]
            started = time.perf_counter()
            try:
                if self.handle(entry, decoded):
                    done.append(entry.stream_id)
            except Exception as exc:  # DB or broker trouble: leave pending, retried later
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("taskq: evaluating %s failed; it stays pending", entry.stream_id)
            spent[ns] += time.perf_counter() - started
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

    def run(self, seconds: float) -> Stats:
        deadline = time.monotonic() + seconds
        with rule_alarm():
            self.refresh(force=True)
            self.recover()
            last_claim = time.monotonic()
            while time.monotonic() < deadline:
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
