"""Starting pipelines and moving them forward: the I/O around the pure scheduler.

A pipeline advances whenever one of its operations changes status (an observer on
the evaluator, so it reacts in milliseconds to non-final statuses too, which is what
``events: [{ref: ops.x, kinds: [run_status_running]}]`` needs) and on every beat tick, so a
pipeline whose events were lost with a crashed evaluator still finishes.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import yaml

from taskq.core import lineage as lineage_of
from taskq.core import routing
from taskq.core.budget import RenderLimits
from taskq.core.events import Event
from taskq.core.jobs import input_defaults, validate_inputs, validate_params
from taskq.core.pipelines import scheduler as dag
from taskq.core.pipelines.checks import check_params
from taskq.core.pipelines.spec import EXTERNAL_FAMILIES, PipelineSpec, parse
from taskq.core.statuses import Status
from taskq.core.stored import JobTemplate, PipelineView
from taskq.core.templating import render_budget
from taskq.errors import JobError, RoutingError, SpecError, ValidationError
from taskq.ports import Context
from taskq.services import catalog
from taskq.services import trigger_admin as registration
from taskq.services.outbox import publish
from taskq.services.recording import append_quietly, stop_run

log = logging.getLogger(__name__)


def load(source: Any) -> PipelineSpec:
    """A spec from a PipelineSpec, a mapping, YAML text, or a path to a YAML file."""
    if isinstance(source, PipelineSpec | dict):
        return parse(source)
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                    and source.endswith((".yaml", ".yml"))):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"file: {path} does not exist")
        source = path.read_text()
    if isinstance(source, str):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise SpecError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
        except RecursionError:
            raise SpecError("file: nested too deeply to read") from None
        return parse(data)
    raise SpecError(f"expected a spec, a mapping or a YAML path, got {type(source).__name__}")


def start(rt: Context, source: Any, params: dict[str, Any] | None = None,
          namespace: str | None = None) -> str:
    """Check everything, store the pipeline and its operations, start what can start."""
    try:
        spec = load(source)
        ns = catalog.check_namespace(rt, namespace)
        dag_params = _check_params(spec, params or {})
        routes = check_against_jobs(rt, spec, ns)
    except (SpecError, JobError) as exc:
        raise ValidationError(str(exc)) from None
    hooks = {o.name: [_check_hook(rt, o.name, h, ns) for h in o.hooks]
             for o in spec.run.operations}
    pipeline_uuid = str(uuidlib.uuid4())
    ops = [{"uuid": str(uuidlib.uuid4()), "name": o.name, "job": o.job,
            "queue": routes[o.name]["queue"], "params": o.plain_params(),
            "tags": list(dict.fromkeys([*spec.tags, *o.tags]))}
           for o in spec.run.operations]
    stored = {"spec": spec.model_dump(mode="json", by_alias=True), "routes": routes}
    rt.store.create_pipeline(uuid=pipeline_uuid, name=spec.name, namespace=ns,
                                    project=None, spec=stored, params=dag_params, ops=ops,
                                    tags=list(spec.tags))

    for op in ops:
        for i, hook in enumerate(hooks[op["name"]]):
            registration.register_hook(rt, f"runs.{op['uuid']}", ns, hook,
                                       name=f"{op['uuid']}.hook.{i}")
    advance(rt, pipeline_uuid)
    return pipeline_uuid


def _check_params(spec: PipelineSpec, params: dict[str, Any]) -> dict[str, Any]:
    declared = spec.declared_inputs()
    normalised = {k: ({"type": v} if isinstance(v, str) else dict(v or {}))
                  for k, v in declared.items()}
    for entry in normalised.values():
        if "value" in entry and "default" not in entry:
            entry["default"] = entry.pop("value")
    unknown = sorted(set(params) - set(normalised))
    if unknown:
        raise SpecError(f"params.{unknown[0]}: the pipeline declares no input {unknown[0]!r} "
                        f"(inputs: {', '.join(sorted(normalised)) or 'none'})")
    values = input_defaults(normalised)
    values.update(params)
    return validate_params(normalised, values, job=spec.name)


def check_against_jobs(rt: Context, spec: PipelineSpec, namespace: str
                       ) -> dict[str, dict[str, Any]]:
    """Unknown jobs, params the target job does not declare, required inputs no param
    gives, refs to what the upstream job does not declare or of a type that does not fit
    the input, bad queues: refused, naming the operation. Returns each operation's route
    (queue, agent, task name, declared inputs)."""
    templates: dict[str, JobTemplate] = {}
    routes: dict[str, dict[str, Any]] = {}
    for op in spec.run.operations:
        where = f"operations.{op.name}"
        try:
            templates[op.name] = catalog.template(rt, op.job, namespace)
        except ValidationError as exc:
            raise SpecError(f"{where}.hubRef: {str(exc).removeprefix('job: ')}") from None
    check_params(spec, templates)
    for op in spec.run.operations:
        template = templates[op.name]
        try:
            route = routing.resolve(namespace=namespace, trigger_queue=op.queue,
                                    template_queue=template.queue,
                                    default_queue=rt.settings.default_queue,
                                    agents=rt.settings.agents)
        except RoutingError as exc:
            raise SpecError(f"operations.{op.name}.{exc}") from None
        routes[op.name] = {"queue": route.queue, "agent": route.agent,
                           "task_name": template.task_name, "inputs": template.inputs,
                           "defaults": input_defaults(template.inputs)}
    return routes


def _check_hook(rt: Context, op: str, hook: Any, namespace: str) -> Any:
    try:
        return registration.check_hook(rt, hook, namespace)
    except ValidationError as exc:
        raise ValidationError(f"operations.{op}.hooks: {exc}") from None


def plan(view: PipelineView, limits: RenderLimits | None = None
         ) -> tuple[list[Any], Status | None, str | None]:
    """The scheduler's decision, as actions the store applies in its transaction; the
    operations' conditions share one template budget."""
    spec = PipelineSpec.model_validate(view.spec["spec"])
    routes = view.spec["routes"]
    states = {name: dag.OpState(status=Status(run["status"]),
                                reached=frozenset(run.get("reached") or ()),
                                outputs=run.get("outputs") or {},
                                params=run.get("params") or {}, summary=run,
                                received=_received(run.get("trigger_context")))
              for name, run in view.ops.items()}
    with render_budget(limits, time.monotonic):
        decision = dag.decide(spec, states, pipeline_status=view.status,
                              dag_params=view.params, stopping=view.status == Status.STOPPING,
                              defaults={n: r["defaults"] for n, r in routes.items()})
    actions: list[Any] = []
    for a in decision.actions:
        if a.kind != "start":
            actions.append((a.kind, a.op, a.reason, None))
            continue
        route = routes[a.op]
        try:
            params = validate_inputs(route["inputs"],
                                     {**route["defaults"], **(a.params or {})},
                                     job=spec.op(a.op).job)
        except JobError as exc:
            actions.append(("fail", a.op, str(exc), None))
            continue
        actions.append(("start", a.op, None,
                        (params, route["queue"], route["agent"], route["task_name"],
                         a.context or None)))
    return actions, decision.status, decision.reason


def advance(rt: Context, pipeline_uuid: str) -> None:
    """Apply what the scheduler decides, then publish started operations and append the
    events (after the commit; the relay and the reconciler cover a crash in between)."""
    done = rt.store.advance_pipeline(
        pipeline_uuid, functools.partial(plan, limits=rt.settings.render_limits))
    if done is None:
        return
    for item in done.outbox:
        publish(rt, item)
    for event in done.events:
        append_quietly(rt.bus, event)


def descriptions(rt: Context, pipeline_uuid: str) -> dict[str | None, str | None]:
    """The pipeline's description (key None) and each operation's, as its spec says them
    (``taskq runs show``)."""
    stored = rt.store.pipeline_spec(pipeline_uuid)
    if stored is None:
        return {}
    spec = stored["spec"].get("spec") or {}
    out: dict[str | None, str | None] = {None: spec.get("description")}
    for op in (spec.get("run") or {}).get("operations") or []:
        out[op.get("name")] = op.get("description")
    return out


def _received(trigger_context: dict[str, Any] | None) -> frozenset[tuple[str, str]]:
    items = (trigger_context or {}).get("events") or []
    return frozenset((i["event"]["ref"], i["event"]["kind"]) for i in items
                     if isinstance(i, dict) and isinstance(i.get("event"), dict))


#: Unfinished pipelines of a namespace: (uuid, parsed spec, created_at).
Waiting = list[tuple[str, PipelineSpec, Any]]
def waiting(rt: Context, namespace: str) -> Waiting:
    return [(u, PipelineSpec.model_validate(stored["spec"]), created)
            for u, stored, created in rt.store.waiting_pipelines(namespace)]


def receive(rt: Context, event: Event, pipelines: Waiting | None = None) -> list[str]:
    """Record an outside event (a git commit, a published event) on every operation of an
    unfinished pipeline of its namespace that waits for it, if the pipeline started before
    the event happened; returns the pipelines to advance."""
    touched: list[str] = []
    if pipelines is None:
        pipelines = waiting(rt, event.namespace)
    for pipeline_uuid, spec, created_at in pipelines:
        if lineage_of.when("event", {}, created_at) > lineage_of.when(
                "event", {}, event.timestamp):
            continue
        item = {"key": event.ref.partition(".")[2], "type": "event",
                "event": event.model_dump(mode="json")}
        for op in spec.run.operations:
            if any(e.external and e.ref == event.ref and set(e.kinds) & set(
                    event.match_kinds()) for e in op.events) and rt.store.receive_op_event(
                    pipeline_uuid, op.name, event, item):
                touched.append(pipeline_uuid)
    return list(dict.fromkeys(touched))


class PipelineObserver:
    """Advances a pipeline whenever one of its operations changes status, or an outside
    event one of them waits for arrives (the evaluator shows it every event; the
    pipeline's row lock makes a repeat harmless). Run events, the hot path, cost no query
    beyond the advance they already caused."""

    def __init__(self) -> None:
        #: Namespace -> its unfinished pipelines, read once per batch of entries: a
        #: backlog of published events costs one read per batch, not one per event. Every
        #: event of the batch was appended before the batch was read, so a pipeline it
        #: could matter to (one started before the event) had started by then.
        self._waiting: dict[str, Waiting] = {}

    def begin_batch(self, rt: Context) -> None:
        self._waiting.clear()

    def _pipelines(self, rt: Context, event: Event) -> Waiting:
        if event.namespace not in self._waiting:
            self._waiting[event.namespace] = waiting(rt, event.namespace)
        return self._waiting[event.namespace]

    def observe(self, rt: Context, event: Event) -> None:
        if event.ref.partition(".")[0] in EXTERNAL_FAMILIES:
            for pipeline_uuid in receive(rt, event, self._pipelines(rt, event)):
                advance(rt, pipeline_uuid)
            return
        pipeline = event.payload.get("pipeline") if event.ref.startswith("runs.") else None
        if isinstance(pipeline, str) and pipeline:
            advance(rt, pipeline)


def tick(rt: Context) -> int:
    """Beat's safety net: advance every unfinished pipeline."""
    count = 0
    for pipeline_uuid in rt.store.active_pipelines():
        try:
            advance(rt, pipeline_uuid)
            count += 1
        except Exception:  # one broken pipeline must not stop the others
            log.exception("taskq: advancing pipeline %s failed", pipeline_uuid)
    return count


def stop(rt: Context, pipeline_uuid: str) -> bool:
    """Stop a pipeline: running operations are revoked, pending ones marked stopped."""
    event = rt.store.set_pipeline_stopping(pipeline_uuid)
    if event is not None:
        append_quietly(rt.bus, event)
    for op in rt.store.pipeline_ops(pipeline_uuid):
        if op["status"] not in (Status.CREATED.value,) and Status(op["status"]) not in (
                Status.SUCCEEDED, Status.FAILED, Status.STOPPED, Status.SKIPPED,
                Status.UPSTREAM_FAILED):
            stop_run(rt, op["uuid"], reason="the pipeline was stopped")
    advance(rt, pipeline_uuid)
    return event is not None
