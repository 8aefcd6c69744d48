"""Planning a firing: pure code from a match to what the firing will create.

The one dedup key, the clone's deterministic uuid, the template context and the plan live
here, so the evaluator, ``taskq run --trigger`` and (later) explain and what-if all compute
the same answer from the same inputs. A trigger kind decides *which* params a clone gets
(:class:`Rendered`); everything around that — context, route, defaults, lineage — is here,
once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskq.core import lineage as lineage_of
from taskq.core import routing
from taskq.core.events import CUSTOM_EVENT_KIND, CUSTOM_KINDS, Event
from taskq.core.jobs import input_defaults, validate_params
from taskq.core.kinds import BY_CONNECTION
from taskq.core.matching import Match, Rule
from taskq.core.statuses import RUN_STATUS_PREFIX
from taskq.core.stored import JobTemplate, StoredRun, TriggerRef
from taskq.core.templating import RenderLimits, render_budget, render_params
from taskq.errors import JobError, Overrun, RoutingError, TemplateFailure

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


def join_key(dedup_keys: Sequence[str]) -> str:
    """A join firing's dedup key: the same set of events always names the same firing."""
    digest = hashlib.sha256("\n".join(sorted(dedup_keys)).encode()).hexdigest()[:40]
    return f"join:{digest}"


def clone_uuid(trigger_id: int, key: str) -> str:
    return str(uuid.uuid5(_RUN_NS, f"{trigger_id}:{key}"))


@dataclass(frozen=True)
class Facts:
    """What planning needs from the world, fetched by the service before the pure call."""

    default_queue: str
    agents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The event's own run with its metrics (hooks with conditions, status+metric triggers).
    event_run: StoredRun | None = None
    #: The run an entity trigger clones (``schedule_task_id``).
    source_run: StoredRun | None = None
    #: One budget for all of the firing's templates and conditions (from settings).
    limits: RenderLimits = field(default_factory=RenderLimits)
    #: The clock the budget reads between operations (None: only the alarm bounds time).
    clock: Callable[[], float] | None = None


@dataclass(frozen=True)
class NewRun:
    """The clone a firing inserts, already ``queued`` (its outbox row commits with it)."""

    uuid: str
    job: str
    namespace: str
    project: str | None
    queue: str
    params: dict[str, Any]
    trigger_context: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    #: Wait ``created``, unpublished, until approved (the job's or the trigger's
    #: ``approval``): its outbox row commits held.
    approval: bool = False


@dataclass(frozen=True)
class Delivery:
    """Where the clone's Celery message goes: the outbox row the relay publishes from."""

    task_name: str
    queue: str
    agent: str


@dataclass(frozen=True)
class Plan:
    """What a firing creates (``run`` + ``outbox``), or why it cannot (``error``) or should
    not (``skipped``); recorded as the firing either way."""

    run: NewRun | None
    outbox: Delivery | None
    error: str | None
    skipped: str | None = None


@dataclass(frozen=True)
class FiringWrite:
    """One planned firing as the store records it (many commit in one transaction)."""

    trigger: TriggerRef
    dedup_key: str
    event: Event
    plan: Plan


@dataclass(frozen=True)
class Rendered:
    """A kind's answer: the params it gives the clone, extra trigger context it records,
    and whether it skips the firing instead."""

    params: dict[str, Any] = field(default_factory=dict)
    trigger_context: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


def events_of(match: Match, events: Mapping[str, Event] | None = None) -> dict[str, Event]:
    """The satisfied events by input key: a join's, else the match's own."""
    return dict(events) if events else {match.input.key: match.event}


def fields_of(kind: str, payload: Any) -> dict[str, Any]:
    """What an event offers a job's params: a published event's ``fields``; a connection
    event's whole payload (repo, branch, commit, ...); nothing for the others."""
    if not isinstance(payload, dict):
        return {}
    if kind in CUSTOM_KINDS:
        return dict(payload.get("fields") or {})
    return dict(payload) if kind in BY_CONNECTION.values() else {}


def template_context(rule: Rule, lineage: Mapping[str, Any]) -> dict[str, Any]:
    """What params may template over: ``trigger.name|event|run|events|runs``, and the
    latest ``event``/``run``; ``globals`` for Polyaxon's spelling; ``fields`` merged from
    published events."""
    latest = lineage["event"]
    run = lineage["run"]
    fields: dict[str, Any] = {}
    for item in reversed(lineage["events"]):
        fields.update(fields_of(item["event"].get("kind", ""), item["event"].get("payload")))
    runs = {item["key"]: item["event"]["payload"] for item in lineage["events"]
            if item["type"] == "run"}
    events_by_key = {item["key"]: item["event"] for item in lineage["events"]}
    context: dict[str, Any] = {
        "trigger": {"name": rule.name, "event": latest, "run": run, "runs": runs,
                    "events": events_by_key, "type": lineage["type"]},
        "event": latest, "run": run, "fields": fields}
    if run is not None:
        context["globals"] = lineage_of.default_context(run)  # Polyaxon's globals.uuid, ...
    return context


def mapped_params(rule: Rule, events: Mapping[str, Event], template: JobTemplate
                  ) -> dict[str, Any]:
    """Payload fields of published events as params: the trigger's mapping, else every
    field named like a declared input. A missing field falls back to the input's default;
    a required input without one makes the firing an error with that reason."""
    declared: dict[str, Any] = dict(template.inputs)
    mappings: dict[str, dict[str, str]] = rule.options.get("parameters") or {}
    out: dict[str, Any] = {}
    for key, ev in events.items():
        if ev.kind != CUSTOM_EVENT_KIND and ev.kind not in BY_CONNECTION.values():
            continue
        fields = fields_of(ev.kind, ev.payload)
        mapping = mappings.get(key)
        if mapping is None:
            mapping = {name: name for name in declared if name in fields}
        for param, fld in mapping.items():
            if fld in fields:
                out[param] = fields[fld]
                continue
            decl = declared.get(param) or {}
            if decl.get("required") and "default" not in decl:
                raise JobError(f"params.{param}: event {key!r} has no field {fld!r} and "
                               f"job {rule.job!r} has no default for it")
    return out


def render_mapped(match: Match, events: Mapping[str, Event], template: JobTemplate,
                  context: dict[str, Any], facts: Facts) -> Rendered:
    """Published events' fields named like inputs (or as mapped), then the trigger's own
    rendered params: what event and chaining triggers give a clone."""
    mapped = mapped_params(match.rule, events, template)
    return Rendered(params={**mapped, **render_params(match.rule.params, context)})


#: How a kind renders params: (match, events, template, template context, facts).
Renderer = Callable[[Match, Mapping[str, Event], JobTemplate, dict[str, Any], Facts], Rendered]


def plan_clone(match: Match, template: JobTemplate | None, key: str, facts: Facts,
               render: Renderer, events: Mapping[str, Event] | None = None) -> Plan:
    """Pure: the clone a firing creates — uuid from the firing's key, params from the job's
    defaults under what the kind rendered, route from trigger -> template -> default, and
    the lineage built once."""
    rule = match.rule
    if template is None:
        return Plan(None, None, f"job {rule.job!r} has no template in namespace "
                                f"{rule.namespace!r} (is a worker importing it running?)")
    satisfied = events_of(match, events)
    lineage = lineage_of.lineage(rule, satisfied)
    try:
        with render_budget(facts.limits, facts.clock):  # one budget for the whole firing
            rendered = render(match, satisfied, template, template_context(rule, lineage),
                              facts)
        if rendered.skipped:
            return Plan(None, None, None, rendered.skipped)
        route = routing.resolve(namespace=rule.namespace, trigger_queue=rule.queue,
                                template_queue=template.queue,
                                default_queue=facts.default_queue, agents=facts.agents)
        params = validate_params(template.inputs,
                                 {**input_defaults(template.inputs), **rendered.params},
                                 job=rule.job)
    except (TemplateFailure, RoutingError, JobError) as exc:
        return Plan(None, None, str(exc))
    except Overrun:  # the alarm between two renders
        return Plan(None, None, f"params: rendering took longer than {facts.limits.seconds}s "
                                "(TASKQ_TEMPLATE_SECONDS)")
    trigger_context = {"trigger": rule.name, "kind": rule.kind, **lineage,
                       **rendered.trigger_context}
    run = NewRun(uuid=clone_uuid(rule.id, key), job=rule.job, namespace=rule.namespace,
                 project=template.project or match.event.project, queue=route.queue,
                 params=params, trigger_context=trigger_context,
                 approval=template.approval or bool(rule.options.get("approval")))
    return Plan(run, Delivery(template.task_name, route.queue, route.agent), None)
