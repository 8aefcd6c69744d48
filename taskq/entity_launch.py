"""How a model, dataset or run trigger launches: a clone of a job template or of a run, a
``schedule_function`` call (a run of the built-in ``taskq.function`` job), or the same run
re-enqueued (``reuse_task``).

The firing, the run (or its re-enqueue) and the outbox row commit together with the
trigger row locked, so ``single_instance`` is decided once even with two evaluators, and a
launch that fails after the commit is published by the relay, never lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskq import chaining, entities, routing
from taskq.dispatch import Plan, clone_uuid, deliver, firing_strategy
from taskq.entities import Family
from taskq.entity_params import entity_values, param_name, split_overrides, substitute
from taskq.entity_triggers import EntitySpec, metric_holds
from taskq.events import Event
from taskq.jobs import JobError, validate_params
from taskq.rules import Rule
from taskq.store.manager import FiringRecord

if TYPE_CHECKING:
    from taskq.runtime import Runtime


def plan_launch(rule: Rule, spec: EntitySpec, event: Event, template: dict[str, Any] | None,
                source: dict[str, Any] | None, key: str, *, default_queue: str,
                agents: dict[str, dict[str, Any]] | None = None) -> Plan:
    """Pure: the clone's params, queue, project and tags; or the error that stops it."""
    if template is None:
        return Plan(None, None, f"job {rule.job!r} has no stored template in namespace "
                                f"{rule.namespace!r} (start a worker that imports it)")
    if spec.target == "run" and source is None:
        return Plan(None, None, f"schedule_task_id: run {spec.source_run} no longer exists")
    values = entity_values(event)
    over_params, fields = split_overrides(substitute(spec.task_overrides, values))
    given = {param_name(k): v for k, v in substitute(spec.task_parameters, values).items()}
    declared = template.get("inputs") or {}
    if spec.target == "function":
        params: dict[str, Any] = {"function": spec.function, "entity_id": values["id"],
                                  "family": spec.family.value}
    else:
        params = {k: v["default"] for k, v in declared.items()
                  if isinstance(v, dict) and "default" in v}
        params.update((source or {}).get("params") or {})
        params.update({**given, **over_params})
    try:
        params = validate_params(declared, params, job=rule.job)
        route = routing.resolve(namespace=rule.namespace,
                                trigger_queue=fields.get("queue") or rule.queue,
                                template_queue=template.get("queue"),
                                default_queue=default_queue, agents=agents)
    except (JobError, routing.RoutingError) as exc:
        return Plan(None, None, str(exc))
    tags = entities.clean_tags([*([spec.add_tag] if spec.add_tag else []),
                                *(fields.get("tags") or [])])
    project = (fields.get("project") or spec.target_project or (source or {}).get("project")
               or template.get("project") or event.project)
    context = {"trigger": rule.name, "kind": rule.kind, **chaining.lineage(rule, event)}
    run = {"uuid": clone_uuid(rule.id, key), "job": rule.job, "namespace": rule.namespace,
           "project": project, "queue": route.queue, "params": params, "tags": tags,
           "trigger_context": context}
    outbox = {"task_name": template["task_name"], "queue": route.queue, "agent": route.agent}
    return Plan(run, outbox, None)


def metric_skip(rt: Runtime, spec: EntitySpec, event: Event) -> str | None:
    """Status + metric: the metric must be in its region when the status is reached."""
    if spec.family != Family.RUNS or spec.run_mode != "status" or spec.metric is None:
        return None
    run = rt.store.get_run(str(event.payload.get("uuid")))
    if run is not None and metric_holds(spec, entities.summarize(run["metrics"])):
        return None
    where = "at or above" if spec.sign == "max" else "at or below"
    series = f"/{spec.variant}" if spec.variant else ""
    return (f"metric {spec.metric}{series} ({spec.judge} value) is not {where} "
            f"{spec.threshold} when the run became {event.payload.get('status')}")


@firing_strategy("model")
@firing_strategy("dataset")
@firing_strategy("run")
def fire_entity(rt: Runtime, rule: Rule, event: Event, template: dict[str, Any] | None, *,
                published: list[str] | None = None,
                metrics: list[dict[str, Any]] | None = None) -> FiringRecord | None:
    spec: EntitySpec = rule.options["spec"]
    key = entities.change_key(event)
    skip = metric_skip(rt, spec, event)
    source = (rt.store.get_run(spec.source_run)
              if spec.target == "run" and spec.source_run else None)
    plans: list[Plan] = []

    def planner() -> Plan:
        plan = (Plan(None, None, None, skip) if skip else
                plan_launch(rule, spec, event, template, source, key,
                            default_queue=rt.settings.default_queue,
                            agents=rt.settings.agents))
        plans.append(plan)
        return plan

    reuse = None
    if spec.reuse_task and spec.source_run and not skip:
        context = {"trigger": rule.name, "kind": rule.kind, **chaining.lineage(rule, event)}
        reuse = (spec.source_run, context, [spec.add_tag] if spec.add_tag else [])
    record = rt.store.launch_entity_firing(
        trigger={"id": rule.id, "name": rule.name}, dedup_key=key, event=event,
        single_instance=spec.single_instance, reuse=reuse, plan=planner)
    if record is not None:
        deliver(rt, rule, event, record, plans[-1] if plans else None, published)
    return record
