"""`taskq triggers what-if`: what a draft of a trigger would have done with past events.

Stored events of a range go through the trigger as it is and through the draft, by the
evaluator's own matcher and the kind's own planner (pure code; nothing is recorded or
sent), a page at a time. The answer: how many each would have fired, the events where they
differ, and the runs the draft would have started (their params). A join's input that
matches counts as "armed", not fired: whether the join completes depends on its other
inputs' events, which the replay of one range cannot promise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from taskq.core.events import Event
from taskq.core.matching import Rule, RuleIndex
from taskq.core.planning import dedup_key
from taskq.core.stored import JobTemplate, StoredTrigger
from taskq.core.triggers.base import KindRegistry
from taskq.core.watched import change_key
from taskq.ports import Context
from taskq.services import event_log
from taskq.services.firing import facts_for, plan_quietly

#: What one side decided for one event.
FIRED, ARMED, ERROR, NOTHING = "fired", "armed", "error", "-"


@dataclass
class WhatIf:
    events: int = 0
    current: int = 0
    draft: int = 0
    #: Events where the two differ (in what they decide, or in the params of the run):
    #: id, kind, each side's decision, the draft's params and the current ones.
    differ: list[dict[str, Any]] = field(default_factory=list)


def what_if(rt: Context, kinds: KindRegistry, *, name: str, namespace: str,
            draft: StoredTrigger, since: datetime, until: datetime | None = None,
            progress: Callable[[int], None] | None = None) -> WhatIf:
    row = rt.store.get_trigger(name, namespace)
    current = kinds.build_rule(row) if row is not None and row.enabled else None
    proposed = kinds.build_rule(draft)
    sides = [(rule, RuleIndex([rule]) if rule else None) for rule in (current, proposed)]
    either = RuleIndex(rule for rule in (current, proposed) if rule)  # keys only, both sides
    spaces = sorted({namespace} | {i.namespace for rule in (current, proposed) if rule
                                   for i in rule.all_inputs()})
    templates: dict[tuple[str, str], JobTemplate | None] = {}
    out = WhatIf()
    with event_log.paused_gc():  # the differences pile up over a million events
        for page in event_log.pages(rt, namespaces=spaces, since=since, until=until):
            for logged in page:
                if logged.local:
                    continue
                out.events += 1
                keys = logged.index_keys()
                if not either.may_match(keys):
                    continue  # neither side's index holds the event: both decide nothing
                event = logged.event()
                (was, before), (would, params) = (
                    _decide(rt, kinds, rule, index, event, templates)
                    if index is not None and index.may_match(keys) else (NOTHING, None)
                    for rule, index in sides)
                out.current += was == FIRED
                out.draft += would == FIRED
                if (was, before) != (would, params):
                    out.differ.append({"event_id": event.id, "kind": event.kind,
                                       "current": was, "draft": would, "params": params,
                                       "current_params": before})
            if progress:
                progress(len(page))
    return out


def _decide(rt: Context, kinds: KindRegistry, rule: Rule | None, index: RuleIndex | None,
            event: Event, templates: dict[tuple[str, str], JobTemplate | None]
            ) -> tuple[str, dict[str, Any] | None]:
    if rule is None or index is None:
        return NOTHING, None
    found = index.match(event)
    if not found:
        return NOTHING, None
    kind = kinds.for_rule(rule)
    mode = kind.firing_mode(rule)
    if mode == "join":
        return ARMED, None
    key = change_key(event) if mode == "entity" else dedup_key(event)
    if (rule.namespace, rule.job) not in templates:
        templates[(rule.namespace, rule.job)] = rt.store.find_job_template(rule.job,
                                                                           rule.namespace)
    plan = plan_quietly(kind, found[0], templates[(rule.namespace, rule.job)], key,
                        facts_for(rt, kind, found[0]))
    if plan.run is None:
        return (ERROR if plan.error else NOTHING), None
    return FIRED, plan.run.params
