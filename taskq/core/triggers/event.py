"""Event triggers (Polyaxon's ``V1EventTrigger``): fire a job when a ref emits a kind."""

from __future__ import annotations

from collections.abc import Mapping

from taskq.core.events import Event
from taskq.core.matching import EventTrigger, Match, Rule
from taskq.core.planning import Facts, Plan, plan_clone, render_mapped
from taskq.core.stored import JobTemplate
from taskq.core.triggers.base import NOTHING, FiringMode, TriggerRow, Wants

#: The spec key (and rule option) of a trigger whose clones wait for approval.
APPROVAL = "approval"


class EventKind:
    stored_kinds: tuple[str, ...] = ("event",)

    def build_rule(self, row: TriggerRow) -> Rule:
        # ``approval`` is stored beside the event's ref and kinds (only when true, so a
        # trigger without it reads as it always did); the planner reads it from options.
        spec = {k: v for k, v in row.spec.items() if k != APPROVAL}
        options = {APPROVAL: True} if row.spec.get(APPROVAL) else {}
        return Rule(id=row.id, name=row.name, namespace=row.namespace,
                    event=EventTrigger.model_validate(spec), job=row.job,
                    params=row.params, queue=row.queue, version=row.version,
                    options=options)

    def firing_mode(self, rule: Rule) -> FiringMode:
        return "single"

    def wants(self, rule: Rule) -> Wants:
        return NOTHING

    def plan(self, match: Match, template: JobTemplate | None, key: str, facts: Facts,
             events: Mapping[str, Event] | None = None) -> Plan:
        return plan_clone(match, template, key, facts, render_mapped, events)
