"""From a match to a cloned run on a named queue, exactly once.

1. The firing (unique per trigger + dedup key), the cloned run and an outbox row commit in
   one transaction: ``single`` as it is, ``join`` with the arm of the input (the trigger's
   row locked), ``entity`` with the launch decision (``single_instance``, ``reuse_task``).
2. The Celery task is published with ``task_id = run uuid``.
3. Anything committed but not published (a crash between 1 and 2) is published by the next
   evaluation of the same event or by the relay; a duplicate publish is harmless because the
   worker's start is a compare-and-set on the run's attempt counter.

The kind plans (pure, :mod:`taskq.core.triggers`); this module only records and delivers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from taskq import crash_points
from taskq.core.cron import reset_boundary
from taskq.core.events import Event
from taskq.core.matching import Match, Skip
from taskq.core.planning import Facts, FiringWrite, Plan, dedup_key, join_key
from taskq.core.stored import FiringRecord, JobTemplate, OutboxItem, TriggerRef
from taskq.core.triggers.base import TriggerKind
from taskq.core.triggers.entity import launch_context, metric_skip
from taskq.core.triggers.entity_spec import EntitySpec
from taskq.core.watched import change_key
from taskq.ports import Context
from taskq.services.outages import is_outage
from taskq.services.outbox import publish
from taskq.services.recording import append_quietly

log = logging.getLogger(__name__)

Template = JobTemplate | None


def facts_for(rt: Context, kind: TriggerKind, match: Match) -> Facts:
    """Read only what the kind wants (most want nothing: no read on the hot path)."""
    wants = kind.wants(match.rule)
    event_run = (rt.store.get_run(str(match.event.payload.get("uuid", "")))
                 if wants.event_run else None)
    source_run = rt.store.get_run(wants.source_run) if wants.source_run else None
    return Facts(default_queue=rt.settings.default_queue, agents=rt.settings.agents,
                 event_run=event_run, source_run=source_run,
                 limits=rt.settings.render_limits, clock=time.monotonic)


def fire(rt: Context, kind: TriggerKind, match: Match, template: Template,
         published: list[str] | None = None) -> FiringRecord | None:
    """Record and deliver the firing of one match; None while a join still waits.

    With ``published`` given, outbox rows are not marked here; the caller marks the
    collected uuids later in one transaction (see :func:`taskq.services.outbox.publish`)."""
    mode = kind.firing_mode(match.rule)
    facts = facts_for(rt, kind, match)
    if mode == "join":
        return _fire_join(rt, kind, match, template, facts, published)
    if mode == "entity":
        return _fire_entity(rt, kind, match, template, facts, published)
    key = dedup_key(match.event)
    plan = plan_quietly(kind, match, template, key, facts)
    record = rt.store.record_firing(trigger=_trigger(match), dedup_key=key, event=match.event,
                                    run=plan.run, outbox=plan.outbox, error=plan.error,
                                    skipped=plan.skipped)
    deliver(rt, match, record, plan, published)
    return record


def plan_single(rt: Context, kind: TriggerKind, match: Match, template: Template
                ) -> FiringWrite:
    """A ``single`` firing planned now and recorded later with the rest of its batch."""
    key = dedup_key(match.event)
    plan = plan_quietly(kind, match, template, key, facts_for(rt, kind, match))
    return FiringWrite(_trigger(match), key, match.event, plan)


def record_planned(rt: Context, writes: Sequence[FiringWrite]
                   ) -> list[FiringRecord | Exception]:
    """The batch in one transaction; if it fails for a reason of its own (not an outage),
    each firing alone, so one poisoned firing is its trigger's error and the rest land."""
    try:
        return list(rt.store.record_firings(writes))
    except Exception as exc:
        if is_outage(rt, exc):
            raise
        if len(writes) == 1:
            return [exc]
    results: list[FiringRecord | Exception] = []
    for w in writes:
        try:
            results.extend(rt.store.record_firings([w]))
        except Exception as exc:
            if is_outage(rt, exc):
                raise
            results.append(exc)
    return results


def plan_quietly(kind: TriggerKind, match: Match, template: Template, key: str, facts: Facts,
          events: dict[str, Event] | None = None) -> Plan:
    """Planning is pure, so an exception in it (a payload a kind cannot read) would be the
    same on every redelivery: it is the firing's recorded error, and the event's other
    rules still fire, instead of the entry being retried until it is dead-lettered."""
    try:
        return kind.plan(match, template, key, facts, events)
    except Exception as exc:
        return Plan(None, None, f"planning failed: {type(exc).__name__}: {exc}")


def _trigger(match: Match | Skip) -> TriggerRef:
    return TriggerRef(match.rule.id, match.rule.name, match.rule.version)


def record_failure(rt: Context, kind: TriggerKind, match: Match, reason: str) -> FiringRecord:
    """This trigger's evaluation of this event raised (not an outage): an error firing under
    the key it would have fired on, shown by ``taskq triggers show``; a second evaluation
    of the event finds it and fires nothing."""
    key = (change_key(match.event) if kind.firing_mode(match.rule) == "entity"
           else dedup_key(match.event))
    return rt.store.record_firing(trigger=_trigger(match), dedup_key=key, event=match.event,
                                  run=None, outbox=None, error=reason[:2000])


def record_skip(rt: Context, kind: TriggerKind, skip: Skip) -> FiringRecord:
    """A rule whose check of the event failed or overran: recorded as the firing's error
    under the key a firing of this event would have had, so ``taskq triggers show`` gives
    the reason and a redelivery of the event records nothing more."""
    mode = kind.firing_mode(skip.rule)
    key = change_key(skip.event) if mode == "entity" else dedup_key(skip.event)
    record = rt.store.record_firing(trigger=_trigger(skip), dedup_key=key, event=skip.event,
                                    run=None, outbox=None, error=skip.reason)
    if record.created:
        log.warning("taskq: trigger %r skipped for %s: %s", skip.rule.name, skip.event.id,
                    skip.reason)
    return record


def _fire_join(rt: Context, kind: TriggerKind, match: Match, template: Template,
               facts: Facts, published: list[str] | None) -> FiringRecord | None:
    """Arm the input the event satisfies; fire once every input is armed (in one
    transaction with the arm, so a crash or a second evaluator cannot fire it twice)."""
    rule, event = match.rule, match.event
    plans: list[Plan] = []

    def planner(events: dict[str, Event]) -> Plan:
        # The clone's uuid comes from the same key the firing is unique on.
        key = join_key([dedup_key(e) for e in events.values()])
        plans.append(plan_quietly(kind, match, template, key, facts, events))
        return plans[-1]

    record = rt.store.join_and_fire(
        trigger=_trigger(match), input_key=match.input.key, dedup_key=dedup_key(event),
        event=event, keys=[i.key for i in rule.all_inputs()],
        expired_before=reset_boundary(rule.options.get("reset"), event.timestamp),
        plan=planner)
    if record is not None:
        deliver(rt, match, record, plans[-1] if plans else None, published)
    return record


def _fire_entity(rt: Context, kind: TriggerKind, match: Match, template: Template,
                 facts: Facts, published: list[str] | None) -> FiringRecord | None:
    """A launch decided under the trigger's row lock, so ``single_instance`` holds with two
    evaluators; ``reuse_task`` re-enqueues the source run instead of cloning it."""
    spec: EntitySpec = match.rule.spec
    key = change_key(match.event)
    plans: list[Plan] = []

    def planner() -> Plan:
        plans.append(plan_quietly(kind, match, template, key, facts))
        return plans[-1]

    reuse = None
    if (spec.reuse_task and spec.source_run
            and not metric_skip(spec, match.event, facts.event_run)):
        reuse = (spec.source_run, launch_context(match), [spec.add_tag] if spec.add_tag else [])
    record = rt.store.launch_entity_firing(
        trigger=_trigger(match), dedup_key=key, event=match.event,
        single_instance=spec.single_instance, reuse=reuse, plan=planner)
    if record is not None:
        deliver(rt, match, record, plans[-1] if plans else None, published)
    return record


def deliver(rt: Context, match: Match, record: FiringRecord, plan: Plan | None,
            published: list[str] | None, appends: list[Event] | None = None,
            outgoing: list[OutboxItem] | None = None) -> None:
    """After the firing committed: publish its run (or the one a first pass left
    unpublished) and append the run's queued event (to ``appends``, when given, for the
    caller to append with the rest of its batch in one round trip). With ``outgoing``
    given, the run is left there for the caller to publish with its batch
    (:func:`~taskq.services.outbox.publish_many`) before it appends."""
    crash_points.crash_point(crash_points.AFTER_RECORD)
    if plan is not None and plan.error and record.created:
        log.warning("taskq: trigger %r did not fire for %s: %s", match.rule.name,
                    match.event.id, plan.error)
    if record.outbox_pending and record.run_uuid:
        item: OutboxItem | None
        if record.created and plan is not None and plan.run and plan.outbox:
            item = OutboxItem(run_uuid=record.run_uuid, task_name=plan.outbox.task_name,
                              queue=plan.outbox.queue, agent=plan.outbox.agent,
                              params=plan.run.params, attempts=0)
        else:
            item = rt.store.outbox_item(record.run_uuid)
        if outgoing is not None:
            if item is not None:
                outgoing.append(item)
            item = None
        sent = item is not None and publish(rt, item, mark=published is None)
        if sent and published is not None and item is not None:
            published.append(item.run_uuid)
    if record.queued_events:
        # After the publish: the worker need not wait for them. Stream order may then differ
        # from commit order; run_events ids are the order of record.
        if appends is not None:
            appends.extend(record.queued_events)
        else:
            append_quietly(rt.bus, record.queued_events)
