"""Starting pipelines and moving them forward: the I/O around the pure scheduler.

A pipeline advances whenever one of its operations changes status (an ``event_handler`` on
the evaluator, so it reacts in milliseconds to non-final statuses too, which is what
``events: [{ref: ops.x, kinds: [run_status_running]}]`` needs) and on every beat tick, so a
pipeline whose events were lost with a crashed evaluator still finishes.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskq import routing
from taskq.dispatch import append_quietly, event_handler, publish, validate_inputs
from taskq.events import Event
from taskq.jobs import JobError, validate_params
from taskq.lifecycle import Status
from taskq.pipelines import dag
from taskq.pipelines.spec import PipelineSpec, SpecError, parse
from taskq.store.pipelines import PipelineView

if TYPE_CHECKING:
    from taskq.client import Client
    from taskq.records import RunRecord
    from taskq.runtime import Runtime

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
        import yaml

        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise SpecError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
        return parse(data)
    raise SpecError(f"expected a spec, a mapping or a YAML path, got {type(source).__name__}")


def start(client: Client, source: Any, params: dict[str, Any] | None = None,
          namespace: str | None = None) -> RunRecord:
    """Check everything, store the pipeline and its operations, start what can start."""
    from taskq.client import ValidationError

    try:
        spec = load(source)
        ns = client._namespace(namespace)
        dag_params = _check_params(spec, params or {})
        routes = check_against_jobs(client, spec, ns)
    except (SpecError, JobError) as exc:
        raise ValidationError(str(exc)) from None
    hooks = {o.name: [_check_hook(client, o.name, h, ns) for h in o.hooks]
             for o in spec.run.operations}
    pipeline_uuid = str(uuidlib.uuid4())
    ops = [{"uuid": str(uuidlib.uuid4()), "name": o.name, "job": o.job,
            "queue": routes[o.name]["queue"], "params": o.plain_params()}
           for o in spec.run.operations]
    stored = {"spec": spec.model_dump(mode="json", by_alias=True), "routes": routes}
    client.rt.store.create_pipeline(uuid=pipeline_uuid, name=spec.name, namespace=ns,
                                    project=None, spec=stored, params=dag_params, ops=ops,
                                    tags=list(spec.tags))
    from taskq import registration

    for op in ops:
        for i, hook in enumerate(hooks[op["name"]]):
            registration.register_hook(client, f"runs.{op['uuid']}", ns, hook,
                                       name=f"{op['uuid']}.hook.{i}")
    advance(client.rt, pipeline_uuid)
    run = client.get_run(pipeline_uuid)
    assert run is not None
    return run


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
    values = {k: v["default"] for k, v in normalised.items() if "default" in v}
    values.update(params)
    return validate_params(normalised, values, job=spec.name)


def check_against_jobs(client: Client, spec: PipelineSpec, namespace: str
                       ) -> dict[str, dict[str, Any]]:
    """Unknown jobs, params the target job does not declare, refs to outputs the upstream
    job does not declare, bad queues: refused, naming the operation. Returns each
    operation's route (queue, agent, task name, declared inputs)."""
    from taskq.client import ValidationError

    templates: dict[str, dict[str, Any]] = {}
    routes: dict[str, dict[str, Any]] = {}
    for op in spec.run.operations:
        where = f"operations.{op.name}"
        try:
            templates[op.name] = client._template(op.job, namespace)
        except ValidationError as exc:
            raise SpecError(f"{where}.hubRef: {str(exc).removeprefix('job: ')}") from None
    for op in spec.run.operations:
        where = f"operations.{op.name}"
        template = templates[op.name]
        declared = template.get("inputs") or {}
        try:
            validate_inputs(template, {k: v for k, v in op.plain_params().items()},
                            job=op.job, check_required=False)
            for name in op.param_refs():
                if name not in declared:
                    raise JobError(f"params.{name}: job {op.job!r} has no input {name!r}")
        except JobError as exc:
            raise SpecError(f"{where}.{exc}") from None
        for name, ref in op.param_refs().items():
            if ref.op is None or ref.section == "globals":
                continue
            upstream = templates[ref.op]
            pool = upstream.get(ref.section) or {}
            if ref.key not in pool:
                job = spec.op(ref.op).job
                raise SpecError(f"{where}.params.{name}: job {job!r} of ops.{ref.op} declares "
                                f"no {ref.section[:-1]} {ref.key!r}")
        try:
            route = routing.resolve(namespace=namespace, trigger_queue=op.queue,
                                    template_queue=template.get("queue"),
                                    default_queue=client.settings.default_queue,
                                    agents=client.settings.agents)
        except routing.RoutingError as exc:
            raise SpecError(f"{where}.{exc}") from None
        defaults = {k: v["default"] for k, v in declared.items()
                    if isinstance(v, dict) and "default" in v}
        routes[op.name] = {"queue": route.queue, "agent": route.agent,
                           "task_name": template["task_name"], "inputs": declared,
                           "defaults": defaults}
    return routes


def _check_hook(client: Client, op: str, hook: Any, namespace: str) -> Any:
    from taskq import registration
    from taskq.client import ValidationError

    try:
        return registration.check_hook(client, hook, namespace)
    except ValidationError as exc:
        raise ValidationError(f"operations.{op}.hooks: {exc}") from None


def plan(view: PipelineView) -> tuple[list[Any], Status | None, str | None]:
    """The scheduler's decision, as actions the store applies in its transaction."""
    spec = PipelineSpec.model_validate(view.spec["spec"])
    routes = view.spec["routes"]
    states = {name: dag.OpState(status=Status(run["status"]),
                                reached=frozenset(run.get("reached") or ()),
                                outputs=run.get("outputs") or {},
                                params=run.get("params") or {}, summary=run)
              for name, run in view.ops.items()}
    decision = dag.decide(spec, states, pipeline_status=view.status, dag_params=view.params,
                          stopping=view.status == Status.STOPPING)
    actions: list[Any] = []
    for a in decision.actions:
        if a.kind != "start":
            actions.append((a.kind, a.op, a.reason, None))
            continue
        route = routes[a.op]
        try:
            params = validate_inputs({"inputs": route["inputs"]},
                                     {**route["defaults"], **(a.params or {})},
                                     job=spec.op(a.op).job)
        except JobError as exc:
            actions.append(("fail", a.op, str(exc), None))
            continue
        actions.append(("start", a.op, None,
                        (params, route["queue"], route["agent"], route["task_name"])))
    return actions, decision.status, decision.reason


def advance(rt: Runtime, pipeline_uuid: str) -> None:
    """Apply what the scheduler decides, then publish started operations and append the
    events (after the commit; the relay and the reconciler cover a crash in between)."""
    done = rt.store.advance_pipeline(pipeline_uuid, plan)
    if done is None:
        return
    for item in done.outbox:
        publish(rt, item)
    for event in done.events:
        append_quietly(rt, event)


@event_handler
def on_event(rt: Runtime, event: Event) -> None:
    pipeline = event.payload.get("pipeline") if event.ref.startswith("runs.") else None
    if isinstance(pipeline, str) and pipeline:
        advance(rt, pipeline)


def tick(rt: Runtime) -> int:
    """Beat's safety net: advance every unfinished pipeline."""
    count = 0
    for pipeline_uuid in rt.store.active_pipelines():
        try:
            advance(rt, pipeline_uuid)
            count += 1
        except Exception:  # one broken pipeline must not stop the others
            log.exception("taskq: advancing pipeline %s failed", pipeline_uuid)
    return count


def stop(client: Client, run: RunRecord) -> bool:
    """Stop a pipeline: running operations are revoked, pending ones marked stopped."""
    event = client.rt.store.set_pipeline_stopping(run.uuid)
    if event is not None:
        append_quietly(client.rt, event)
    for op in client.rt.store.pipeline_ops(run.uuid):
        if op["status"] not in (Status.CREATED.value,) and Status(op["status"]) not in (
                Status.SUCCEEDED, Status.FAILED, Status.STOPPED, Status.SKIPPED,
                Status.UPSTREAM_FAILED):
            client.stop_run(op["uuid"], reason="the pipeline was stopped")
    advance(client.rt, run.uuid)
    return event is not None
