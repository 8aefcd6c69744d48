"""What the evaluator loop holds apart from the stream: the rule set it loads from the
store, the observers it hands every event to, and the figures it keeps."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from taskq.core.events import Event
from taskq.core.matching import Rule, RuleIndex
from taskq.core.stored import JobTemplate
from taskq.core.triggers.base import KindRegistry
from taskq.ports import Context

log = logging.getLogger(__name__)


class Observer(Protocol):
    """Sees every decoded event after the rules fired (pipelines advance here). Must be
    idempotent: it may see an event again after a crash or redelivery. An exception leaves
    the entry pending, to be evaluated again (and counts against its delivery budget unless
    it is an outage)."""

    def begin_batch(self, rt: Context) -> None:
        """A batch of entries is about to be evaluated (what it reads once per batch may
        be read again now)."""
        ...

    def observe(self, rt: Context, event: Event) -> None: ...


def load_rules(rt: Context, kinds: KindRegistry
               ) -> tuple[RuleIndex, dict[tuple[str, str], JobTemplate], set[int]]:
    """The enabled, unquarantined rules, their job templates, and the ids of those with
    failed evaluations counted (for :class:`~taskq.services.quarantine.Quarantine`)."""
    rules: list[Rule] = []
    stored = rt.store.list_triggers(enabled_only=True)
    for t in stored:
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
    return RuleIndex(rules), templates, {t.id for t in stored if t.failures}


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
    #: Times an outage stopped evaluation (each is retried, none counts against an entry).
    outages: int = 0
    last_error: str | None = field(default=None)
