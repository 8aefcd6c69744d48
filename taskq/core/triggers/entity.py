"""Model, dataset and run triggers (ClearML's TriggerScheduler) as a trigger kind: the rule
a stored spec becomes and the launch it plans. The spec and its filters are in
:mod:`taskq.core.triggers.entity_spec`. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskq import constants
from taskq.core import routing
from taskq.core.events import Event
from taskq.core.jobs import input_defaults, validate_params
from taskq.core.lineage import lineage
from taskq.core.matching import EventTrigger, Input, Match, Rule
from taskq.core.planning import Delivery, Facts, NewRun, Plan, clone_uuid
from taskq.core.stored import JobTemplate, StoredRun
from taskq.core.triggers.base import FiringMode, TriggerRow, Wants
from taskq.core.triggers.entity_params import (
    REF_WORD,
    entity_values,
    param_name,
    split_overrides,
    substitute,
)
from taskq.core.triggers.entity_spec import (
    EntitySpec,
    RegistryFilter,
    RunFilter,
    listen_kinds,
    metric_holds,
)
from taskq.core.watched import Family, clean_tags, summarize
from taskq.errors import JobError, RoutingError

# -- the kind -----------------------------------------------------------------------------


def metric_skip(spec: EntitySpec, event: Event, run: StoredRun | None) -> str | None:
    """Status + metric: the metric must be in its region when the status is reached."""
    if spec.family != Family.RUNS or spec.run_mode != "status" or spec.metric is None:
        return None
    if run is not None and metric_holds(spec, summarize(run.metrics)):
        return None
    where = "at or above" if spec.sign == "max" else "at or below"
    series = f"/{spec.variant}" if spec.variant else ""
    return (f"metric {spec.metric}{series} ({spec.judge} value) is not {where} "
            f"{spec.threshold} when the run became {event.payload.get('status')}")


def plan_launch(match: Match, template: JobTemplate | None, key: str, facts: Facts) -> Plan:
    """Pure: the clone's params, queue, project and tags; or why it is skipped or cannot."""
    rule, event = match.rule, match.event
    spec: EntitySpec = rule.spec
    skip = metric_skip(spec, event, facts.event_run)
    if skip:
        return Plan(None, None, None, skip)
    if template is None:
        return Plan(None, None, f"job {rule.job!r} has no stored template in namespace "
                                f"{rule.namespace!r} (start a worker that imports it)")
    source = facts.source_run
    if spec.target == "run" and source is None:
        return Plan(None, None, f"schedule_task_id: run {spec.source_run} no longer exists")
    values = entity_values(event)
    over_params, fields = split_overrides(substitute(spec.task_overrides, values))
    given = {param_name(k): v for k, v in substitute(spec.task_parameters, values).items()}
    declared = dict(template.inputs)
    if spec.target == "function":
        params: dict[str, Any] = {"function": spec.function, "entity_id": values["id"],
                                  "family": spec.family.value}
    else:
        params = input_defaults(declared)
        params.update(source.params if source else {})
        params.update({**given, **over_params})
    try:
        params = validate_params(declared, params, job=rule.job)
        route = (_IN_PROCESS if in_process(spec) else routing.resolve(
            namespace=rule.namespace, trigger_queue=fields.get("queue") or rule.queue,
            template_queue=template.queue, default_queue=facts.default_queue,
            agents=facts.agents))
    except (JobError, RoutingError) as exc:
        return Plan(None, None, str(exc))
    tags = clean_tags([*([spec.add_tag] if spec.add_tag else []),
                       *(fields.get("tags") or [])])
    project = (fields.get("project") or spec.target_project or (source.project if source else None)
               or template.project or event.project)
    run = NewRun(uuid=clone_uuid(rule.id, key), job=rule.job, namespace=rule.namespace,
                 project=project, queue=route.queue, params=params, tags=tuple(tags),
                 trigger_context=launch_context(match), approval=template.approval)
    return Plan(run, Delivery(template.task_name, route.queue, route.agent), None)


#: Where a call of a function defined in the scheduler script goes: no worker's queue.
_IN_PROCESS = routing.Route(queue=constants.SCHEDULER_CALLS_QUEUE, agent="default")


def in_process(spec: EntitySpec) -> bool:
    """A schedule_function of the scheduler script: ``TriggerScheduler.start()`` calls it."""
    return spec.target == "function" and str(spec.function).startswith(
        constants.IN_PROCESS_PREFIX)


def launch_context(match: Match) -> dict[str, Any]:
    """The lineage a launched (or re-enqueued) run records."""
    rule = match.rule
    return {"trigger": rule.name, "kind": rule.kind,
            **lineage(rule, {match.input.key: match.event})}


class EntityKind:
    """Model, dataset and run triggers (ClearML's TriggerScheduler)."""

    stored_kinds: tuple[str, ...] = ("model", "dataset", "run")

    def build_rule(self, row: TriggerRow) -> Rule:
        spec = EntitySpec.model_validate(row.spec)
        ref = "jobs.*" if spec.family == Family.RUNS else f"{spec.family.value}.*"
        flt = (RunFilter(spec, row.name) if spec.family == Family.RUNS
               else RegistryFilter(spec))
        event = EventTrigger(ref=ref, kinds=listen_kinds(spec), payload=spec.payload)
        key = REF_WORD[spec.family]
        return Rule(id=row.id, name=row.name, namespace=row.namespace, event=event,
                    job=row.job, params=row.params, queue=row.queue,
                    version=row.version, kind=row.kind, filter=flt, spec=spec,
                    inputs=(Input(key=key, namespace=row.namespace, event=event,
                                  filter=flt),))

    def firing_mode(self, rule: Rule) -> FiringMode:
        return "entity"

    def wants(self, rule: Rule) -> Wants:
        spec: EntitySpec = rule.spec
        return Wants(
            event_run=(spec.family == Family.RUNS and spec.run_mode == "status"
                       and spec.metric is not None),
            source_run=spec.source_run if spec.target == "run" and spec.source_run else None)

    def plan(self, match: Match, template: JobTemplate | None, key: str, facts: Facts,
             events: Mapping[str, Event] | None = None) -> Plan:
        return plan_launch(match, template, key, facts)
