"""From a matched rule to a cloned run on a named queue, exactly once.

1. ``record_firing`` commits the firing (unique per trigger + dedup key), the cloned run and
   an outbox row in one transaction.
2. The Celery task is published with ``task_id = run uuid`` and the outbox row is marked.
3. Anything committed but not published (a crash between 1 and 2) is published by the next
   evaluation of the same event or by the relay; a duplicate publish is harmless because the
   worker's start is a compare-and-set on the run's attempt counter.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskq import chaining, constants, faults, hooks, routing
from taskq.events import RUN_STATUS_PREFIX, Event
from taskq.jobs import JobError, validate_params
from taskq.rules import Rule
from taskq.store.joins import join_key
from taskq.store.manager import FiringRecord, OutboxItem
from taskq.templating import TemplateFailure, render_params

if TYPE_CHECKING:
    from taskq.runtime import Runtime

log = logging.getLogger(__name__)

#: Deterministic run uuids: the same (trigger, dedup key) always names the same run.
_RUN_NS = uuid.UUID("3b0c1f38-5d2e-4a8e-9f63-2f1d7c0e6a11")


def dedup_key(event: Event) -> str:
    """One firing per (trigger, logical event).

    For run-status events the logical event is "run X reached status S": a retried run that
    reaches ``running`` again, or a transition appended twice, fires a trigger once.
    """
    if event.kind.startswith(RUN_STATUS_PREFIX) and event.ref.startswith("runs."):
        # A run re-enqueued by a reuse_task trigger reaches its statuses again: a new key.
        incarnation = event.payload.get("incarnation") or 0
        return f"{event.ref}:{event.kind}" + (f":i{incarnation}" if incarnation else "")
    return f"event:{event.id}"


def clone_uuid(trigger_id: int, key: str) -> str:
    return str(uuid.uuid5(_RUN_NS, f"{trigger_id}:{key}"))


def template_context(rule: Rule, event: Event,
                     events: dict[str, Event] | None = None) -> dict[str, Any]:
    """What params may template over: ``trigger.name|event|run|events|runs``, and the
    latest ``event``/``run``; ``globals`` for Polyaxon's spelling; ``fields`` merged from
    published events."""
    lineage = chaining.lineage(rule, event, events)
    latest = lineage["event"]
    run = lineage["run"]
    fields: dict[str, Any] = {}
    for item in reversed(lineage["events"]):
        fields.update(((item["event"].get("payload") or {}).get("fields")) or {})
    runs = {item["key"]: item["event"]["payload"] for item in lineage["events"]
            if item["type"] == "run"}
    events_by_key = {item["key"]: item["event"] for item in lineage["events"]}
    context: dict[str, Any] = {
        "trigger": {"name": rule.name, "event": latest, "run": run, "runs": runs,
                    "events": events_by_key, "type": lineage["type"]},
        "event": latest, "run": run, "fields": fields}
    if run is not None:
        context["globals"] = hooks.default_context(run)  # Polyaxon's globals.uuid, ...
    return context


@dataclass(frozen=True)
class Plan:
    run: dict[str, Any] | None
    outbox: dict[str, Any] | None
    error: str | None
    skipped: str | None = None


def plan_firing(rule: Rule, event: Event, template: dict[str, Any] | None,
                default_queue: str, key: str,
                metrics: list[dict[str, Any]] | None = None,
                agents: dict[str, dict[str, Any]] | None = None,
                events: dict[str, Event] | None = None) -> Plan:
    """Pure: what the firing would create, or why it cannot (error) or should not (skipped).

    ``events`` are the events of a satisfied join by input key (else just ``event``)."""
    if template is None:
        return Plan(None, None, f"job {rule.job!r} has no template in namespace "
                                f"{rule.namespace!r} (is a worker importing it running?)")
    context = template_context(rule, event, events)
    extra_context: dict[str, Any] = {}
    try:
        if rule.hook is not None:
            skipped = hooks.check(rule.hook, context["run"] or {}, metrics or [])
            if skipped:
                return Plan(None, None, None, skipped)
            inputs, extra_context = hooks.split_params(rule.params)
            extra_context = render_params(extra_context, context)
            if not rule.hook.disable_defaults:
                extra_context = {**hooks.default_context(context["run"] or {}),
                                 **extra_context}
            params = render_params(inputs, context)
            params = validate_inputs(template, params, job=rule.job)
        else:
            mapped = chaining.mapped_params(rule, events or {}, event, template)
            params = {**mapped, **render_params(rule.params, context)}
        route = routing.resolve(namespace=rule.namespace, trigger_queue=rule.queue,
                                template_queue=template.get("queue"),
                                default_queue=default_queue, agents=agents)
    except (TemplateFailure, routing.RoutingError, JobError) as exc:
        return Plan(None, None, str(exc))
    defaults = {k: v["default"] for k, v in (template.get("inputs") or {}).items()
                if isinstance(v, dict) and "default" in v}
    run_uuid = clone_uuid(rule.id, key)
    trigger_context: dict[str, Any] = {"trigger": rule.name, "kind": rule.kind,
                                       **chaining.lineage(rule, event, events)}
    if rule.hook is not None:
        trigger_context["hook"] = rule.hook.spec()
        trigger_context["context"] = extra_context
    run = {"uuid": run_uuid, "job": rule.job, "namespace": rule.namespace,
           "project": template.get("project") or event.project, "queue": route.queue,
           "params": {**defaults, **params}, "trigger_context": trigger_context}
    outbox = {"task_name": template["task_name"], "queue": route.queue, "agent": route.agent}
    return Plan(run, outbox, None)


def validate_inputs(template: dict[str, Any], params: dict[str, Any], *,
                    job: str, check_required: bool = True) -> dict[str, Any]:
    """Params must be declared inputs of the target job (else mark them context-only) and
    coerce to their types; required inputs must be given."""
    declared = template.get("inputs") or {}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise JobError(f"params.{unknown[0]}: job {job!r} has no input {unknown[0]!r} "
                       f"(declare it, or mark the param contextOnly)")
    return validate_params(declared, params, job=job, check_required=check_required)


#: How a rule of a given kind turns a matched event into a firing. The default (``fire``,
#: or ``fire_join`` for an AND join) covers event triggers and hooks; a kind with its own
#: launch semantics registers one with ``firing_strategy``.
Strategy = Callable[..., "FiringRecord | None"]
_STRATEGIES: dict[str, Strategy] = {}


def firing_strategy(kind: str) -> Callable[[Strategy], Strategy]:
    def register(fn: Strategy) -> Strategy:
        _STRATEGIES[kind] = fn
        return fn

    return register


#: Called with every decoded event after the rules fired (pipelines advance their
#: operations here). A handler must be idempotent: it may see an event again after a crash
#: or redelivery. An exception leaves the entry pending, to be evaluated again.
EventHandler = Callable[["Runtime", Event], None]
_HANDLERS: list[EventHandler] = []


def event_handler(fn: EventHandler) -> EventHandler:
    if fn not in _HANDLERS:
        _HANDLERS.append(fn)
    return fn


def event_handlers() -> tuple[EventHandler, ...]:
    return tuple(_HANDLERS)


def fire_rule(rt: Runtime, rule: Rule, event: Event, template: dict[str, Any] | None,
              published: list[str] | None = None,
              metrics: list[dict[str, Any]] | None = None) -> FiringRecord | None:
    """Route a matched (rule, event) to its kind's strategy; None while a join waits."""
    strategy = _STRATEGIES.get(rule.kind)
    if strategy is not None:
        return strategy(rt, rule, event, template, published=published, metrics=metrics)
    if rule.is_join:
        return fire_join(rt, rule, event, template, published=published)
    return fire(rt, rule, event, template, published=published, metrics=metrics)


def fire(rt: Runtime, rule: Rule, event: Event, template: dict[str, Any] | None,
         published: list[str] | None = None,
         metrics: list[dict[str, Any]] | None = None) -> FiringRecord:
    """Record and publish one firing. With ``published`` given, the outbox row is not marked
    here; the caller marks the collected uuids later in one transaction (see ``publish``)."""
    key = dedup_key(event)
    plan = plan_firing(rule, event, template, rt.settings.default_queue, key, metrics,
                       rt.settings.agents)
    trigger = {"id": rule.id, "name": rule.name}
    record = rt.store.record_firing(trigger=trigger, dedup_key=key, event=event, run=plan.run,
                                    outbox=plan.outbox, error=plan.error,
                                    skipped=plan.skipped)
    deliver(rt, rule, event, record, plan, published)
    return record


def fire_join(rt: Runtime, rule: Rule, event: Event, template: dict[str, Any] | None,
              published: list[str] | None = None) -> FiringRecord | None:
    """Arm the input ``event`` satisfies; fire once every input is armed (in one
    transaction with the arm, so a crash or a second evaluator cannot fire it twice)."""
    matched = rule.input_for(event)
    if matched is None:
        return None
    plans: list[Plan] = []

    def planner(events: dict[str, Event]) -> Plan:
        # The clone's uuid comes from the same key the firing is unique on.
        key = join_key([dedup_key(e) for e in events.values()])
        plan = plan_firing(rule, event, template, rt.settings.default_queue, key,
                           agents=rt.settings.agents, events=events)
        plans.append(plan)
        return plan

    record = rt.store.join_and_fire(
        trigger={"id": rule.id, "name": rule.name}, input_key=matched.key,
        dedup_key=dedup_key(event), event=event,
        keys=[i.key for i in rule.all_inputs()],
        expired_before=chaining.reset_boundary(rule.options.get("reset"), event.timestamp),
        plan=planner)
    if record is not None:
        deliver(rt, rule, event, record, plans[-1] if plans else None, published)
    return record


def deliver(rt: Runtime, rule: Rule, event: Event, record: FiringRecord, plan: Plan | None,
            published: list[str] | None) -> None:
    """After the firing committed: publish its run (or the one a first pass left
    unpublished) and append the run's queued event."""
    faults.crash_point(faults.AFTER_RECORD)
    if plan is not None and plan.error and record.created:
        log.warning("taskq: trigger %r did not fire for %s: %s", rule.name, event.id, plan.error)
    if record.outbox_pending and record.run_uuid:
        item: OutboxItem | None
        if record.created and plan is not None and plan.run and plan.outbox:
            item = OutboxItem(run_uuid=record.run_uuid, params=plan.run["params"], attempts=0,
                              **plan.outbox)
        else:
            item = rt.store.outbox_item(record.run_uuid)
        sent = item is not None and publish(rt, item, mark=published is None)
        if sent and published is not None and item is not None:
            published.append(item.run_uuid)
    if record.queued_event is not None:
        # After the publish: the worker need not wait for it. Stream order may then differ
        # from commit order; run_events ids are the order of record.
        append_quietly(rt, record.queued_event)


def append_quietly(rt: Runtime, event: Event) -> None:
    """XADD after commit; if Redis is unreachable the reconciler re-emits from SQL."""
    try:
        rt.bus.append(event)
    except Exception as exc:
        log.warning("taskq: event %s not appended (reconciler will re-emit): %s", event.id, exc)


def publish(rt: Runtime, item: OutboxItem, *, mark: bool = True) -> bool:
    """Send the run's Celery task; on failure leave the outbox row for the relay.

    ``mark=False`` leaves marking the row to the caller. The evaluator batches it, because
    a write right after the publish lands exactly when the worker claims the run and, on
    SQLite, makes the claim wait for the database lock. An unmarked row is at worst
    republished by the relay, and the worker's claim refuses the duplicate.
    """
    headers = {constants.RUN_HEADER: item.run_uuid, constants.QUEUED_HEADER: "1"}
    if item.incarnation:
        headers[constants.INCARNATION_HEADER] = str(item.incarnation)
    try:
        rt.celery_for(item.agent).send_task(item.task_name, kwargs=item.params,
                                            task_id=item.run_uuid,
                            queue=item.queue, headers=headers)
    except Exception as exc:  # broker down: the relay retries, nothing is lost
        log.warning("taskq: publishing run %s failed, relay will retry: %s", item.run_uuid, exc)
        rt.store.mark_publish_failed(item.run_uuid, repr(exc))
        return False
    faults.crash_point(faults.AFTER_PUBLISH)
    if mark:
        rt.store.mark_published(item.run_uuid)
    return True


def relay_outbox(rt: Runtime, *, limit: int = 200) -> int:
    """Publish outbox rows older than the grace period; one relay at a time (Redis lock)."""
    lock = rt.redis.lock(constants.RELAY_LOCK, timeout=60, blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    try:
        older = rt.store.recent_before(rt.settings.relay_grace_seconds)
        sent = 0
        for item in rt.store.pending_outbox(older_than=older, limit=limit):
            sent += publish(rt, item)
        return sent
    finally:
        try:
            lock.release()
        except Exception:  # expired: harmless, the next relay takes over
            pass
