"""Setting aside a trigger that fails on every event.

One failing evaluation is recorded as that event's error firing and the others go on; a
trigger that fails ``TASKQ_QUARANTINE_AFTER`` times in a row (a template that cannot
render, a condition that always raises, a check that always overruns its budget) is
quarantined with the reason, so it stops costing every event its budget and filling the
firings with errors. ``taskq triggers list/show`` shows it; ``taskq triggers enable``
releases it. Only failures write: a firing resets the count only for a trigger this
evaluator knows to be failing, so the hot path gains no write.
"""

from __future__ import annotations

import logging

from taskq.core.matching import Match, Rule
from taskq.core.stored import FiringRecord
from taskq.ports import Context

log = logging.getLogger(__name__)


class Quarantine:
    def __init__(self) -> None:
        #: Triggers (by id) with failures counted and not reset since.
        self.failing: set[int] = set()
        #: Quarantined here since the rules were loaded: skipped at once, not from the
        #: next reload on (the rest of this batch may hold many more of its events).
        self.set_aside: set[int] = set()

    def loaded(self, failing: set[int]) -> None:
        """The stored counts, as the rules were loaded (a restart resets nothing)."""
        self.failing, self.set_aside = set(failing), set()

    def active(self, found: list[Match]) -> list[Match]:
        if not self.set_aside:
            return found
        return [m for m in found if m.rule.id not in self.set_aside]

    def failed(self, rt: Context, rule: Rule, reason: str) -> None:
        self.failing.add(rule.id)
        if rt.store.note_trigger_failure(rule.id, reason,
                                         quarantine_after=rt.settings.quarantine_after):
            self.set_aside.add(rule.id)
            rt.coord.bump_triggers()
            log.error("taskq: trigger %r (namespace %r) quarantined after %d failed "
                      "evaluations in a row; last: %s. `taskq triggers enable %s` releases "
                      "it", rule.name, rule.namespace, rt.settings.quarantine_after,
                      reason, rule.name)

    def settled(self, rt: Context, rule: Rule, record: FiringRecord | None) -> None:
        """A firing recorded for the rule: its error counts as a failure (its params could
        not render), anything else (fired, skipped, a join armed) resets the count."""
        if record is not None and record.created and record.error:
            self.failed(rt, rule, record.error)
        elif rule.id in self.failing:
            rt.store.clear_trigger_failures(rule.id)
            self.failing.discard(rule.id)
