"""Firing what matched, a batch of entries at a time.

A ``single`` firing (one per match: event triggers, hooks, finish triggers, most of what
fires) is planned as its event is evaluated (pure code) and recorded with the rest of the
batch in one transaction when the batch ends; the runs are then published together (one
Redis pipeline for taskq's broker, see ``Publisher.send_many``) and their ``queued`` events
appended in one round trip. One commit per batch instead of one per
firing is what lets firings keep up with Celery's own publish rate. A lone event is a
batch of one, evaluated at once. Joins and entity launches decide under the trigger's row
lock, so they still commit as they match.

Exactly once holds as before: the batch's entries are acknowledged only after its
transaction commits (a kill before leaves them all pending, a kill after leaves committed
firings that their redelivery finds); a duplicate inside one batch meets the first one's
row in the same transaction. A batch that fails for a reason of its own is recorded again
firing by firing (:func:`~taskq.services.firing.record_planned`), so one poisoned firing
is its trigger's error and the others land.
"""

from __future__ import annotations

import logging

from taskq import crash_points
from taskq.core.events import Event
from taskq.core.matching import Match, Rule
from taskq.core.planning import FiringWrite
from taskq.core.stored import FiringRecord, JobTemplate, OutboxItem
from taskq.core.triggers.base import KindRegistry
from taskq.ports import Context
from taskq.services.firing import deliver, fire, plan_single, record_failure, record_planned
from taskq.services.health import describe
from taskq.services.marks import Marks
from taskq.services.outages import is_outage
from taskq.services.outbox import publish_many
from taskq.services.quarantine import Quarantine
from taskq.services.recording import append_quietly
from taskq.services.rules import Stats

log = logging.getLogger(__name__)


class Firings:
    def __init__(self, rt: Context, kinds: KindRegistry, *, stats: Stats, marks: Marks,
                 quarantine: Quarantine) -> None:
        self.rt, self.kinds = rt, kinds
        self.stats, self.marks, self.quarantine = stats, marks, quarantine
        self.templates: dict[tuple[str, str], JobTemplate] = {}
        #: Planned single firings of the batch, not recorded yet.
        self.pending: list[tuple[Match, FiringWrite]] = []

    def _template(self, rule: Rule) -> JobTemplate | None:
        template = self.templates.get((rule.namespace, rule.job))
        if template is None:  # registered after the rules were loaded
            template = self.rt.store.find_job_template(rule.job, rule.namespace)
            if template:
                self.templates[(rule.namespace, rule.job)] = template
        return template

    def fire(self, match: Match) -> None:
        rule = match.rule
        try:
            kind = self.kinds.for_rule(rule)
            template = self._template(rule)
            if kind.firing_mode(rule) == "single":
                self.pending.append((match, plan_single(self.rt, kind, match, template)))
                return
            self.marks.start()
            record = fire(self.rt, kind, match, template, published=self.marks.published)
        except Exception as exc:
            if is_outage(self.rt, exc):
                raise
            self._failed(match, exc)
            return
        self._settled(rule, record)

    def flush(self) -> None:
        """Record the batch's planned firings together, then deliver them."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        self.marks.start()
        crash_points.crash_point(crash_points.BEFORE_RECORD)
        results = record_planned(self.rt, [w for _, w in pending])
        appends: list[Event] = []
        outgoing: list[OutboxItem] = []
        for (match, write), record in zip(pending, results, strict=True):
            if isinstance(record, Exception):
                self._failed(match, record)
                continue
            try:
                deliver(self.rt, match, record, write.plan, self.marks.published, appends,
                        outgoing)
                self._settled(match.rule, record)
            except Exception as exc:  # committed: its redelivery or the relay sends it
                if is_outage(self.rt, exc):
                    raise
                self._failed(match, exc)
        # The batch's runs in one publish (one Redis pipeline), before their queued events.
        self.marks.published.extend(publish_many(self.rt, outgoing, mark=False))
        append_quietly(self.rt.bus, appends)

    def discard(self) -> None:
        """An outage stopped the batch: what it planned is planned again on redelivery."""
        self.pending = []

    def _settled(self, rule: Rule, record: FiringRecord | None) -> None:
        self.quarantine.settled(self.rt, rule, record)
        if record is None:
            return  # a join still waiting for its other inputs
        if record.created:
            self.stats.fired += 1
        else:
            self.stats.duplicates += 1

    def _failed(self, match: Match, exc: Exception) -> None:
        """This trigger's error for this event, recorded; the other triggers go on."""
        self.stats.errors += 1
        log.error("taskq: trigger %r failed on event %s: %s", match.rule.name,
                  match.event.id, describe(exc), exc_info=exc)
        try:
            if record_failure(self.rt, self.kinds.for_rule(match.rule), match,
                              f"evaluation failed: {describe(exc)}").created:
                self.quarantine.failed(self.rt, match.rule, describe(exc))
        except Exception as again:
            if is_outage(self.rt, again):
                raise
            log.exception("taskq: recording the error of trigger %r failed", match.rule.name)
