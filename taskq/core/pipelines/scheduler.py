"""The pipeline scheduler, pure: operation states in, decisions out.

Called every time anything about a pipeline changes (and by beat, as a safety net), so it
must be idempotent: it only ever proposes moving an operation out of ``created``, and the
engine applies each proposal as a compare-and-set. Polyaxon's known gaps are closed here:
``one_*`` policies decide only once no upstream can still satisfy them; an operation that
waits for an event its upstream never emitted is skipped with the reason, not left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from taskq.core.conditions import evaluate_condition
from taskq.core.lineage import default_context
from taskq.core.pipelines.params import ParamRef
from taskq.core.pipelines.spec import Operation, PipelineSpec, Policy, topological
from taskq.core.statuses import DONE, FINAL, RUN_STATUS_PREFIX, Status
from taskq.errors import TemplateFailure

ActionKind = Literal["start", "skip", "upstream_failed", "fail", "stop"]
Verdict = Literal["start", "wait", "fail"]


@dataclass(frozen=True)
class OpState:
    status: Status
    #: Every status this operation's run has been in (from the event log).
    reached: frozenset[str] = frozenset()
    outputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    #: The run summary (uuid, timestamps, ...) for ``globals.*``.
    summary: dict[str, Any] = field(default_factory=dict)
    #: (ref, kind) of each outside event this operation received while it waited.
    received: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    op: str
    reason: str | None = None
    params: dict[str, Any] | None = None
    #: ``contextOnly`` params, resolved: the run's context, never function arguments.
    context: dict[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    actions: list[Action]
    #: The pipeline run's next status (running, or final), or None to leave it.
    status: Status | None = None
    reason: str | None = None


class ResolveError(ValueError):
    pass


def judge(policy: Policy, statuses: list[Status]) -> Verdict:
    """Start, wait, or never (upstream_failed) under ``policy``."""
    final = [s for s in statuses if s in FINAL]
    all_final = len(final) == len(statuses)
    succeeded = sum(s == Status.SUCCEEDED for s in final)
    failed = sum(s == Status.FAILED for s in final)
    if policy == Policy.ALL_SUCCEEDED:
        return "fail" if succeeded < len(final) else "start" if all_final else "wait"
    if policy == Policy.ALL_FAILED:
        return "fail" if failed < len(final) else "start" if all_final else "wait"
    if policy == Policy.ALL_DONE:
        return "start" if all_final else "wait"
    if policy == Policy.ONE_SUCCEEDED:
        return "start" if succeeded else "fail" if all_final else "wait"
    if policy == Policy.ONE_FAILED:
        return "start" if failed else "fail" if all_final else "wait"
    return "start" if final else "wait"  # one_done


def emitted(kinds: tuple[str, ...], state: OpState) -> bool:
    for kind in kinds:
        status = kind[len(RUN_STATUS_PREFIX):]
        if status == DONE and state.status in FINAL:
            return True
        if status in state.reached or state.status.value == status:
            return True
    return False


def globals_of(state: OpState) -> dict[str, Any]:
    summary = state.summary or {}
    g = default_context(summary)
    g.update(created_at=summary.get("created_at"), project_name=summary.get("project"),
             namespace=summary.get("namespace"))
    return g


def resolve(op: Operation, states: dict[str, OpState], dag_params: dict[str, Any]
            ) -> dict[str, Any]:
    params = op.plain_params()
    for name, ref in op.param_refs().items():
        params[name] = _value(name, ref, states, dag_params)
    return params


def resolve_context(op: Operation, states: dict[str, OpState], dag_params: dict[str, Any]
                    ) -> dict[str, Any]:
    """The operation's ``contextOnly`` params, refs resolved like any other."""
    context = op.context_params()
    for name, ref in op.context_refs().items():
        context[name] = _value(name, ref, states, dag_params)
    return context


def _value(name: str, ref: ParamRef, states: dict[str, OpState],
           dag_params: dict[str, Any]) -> Any:
    if ref.op is None:
        if ref.whole:
            return dict(dag_params)
        if ref.key not in dag_params:
            raise ResolveError(f"params.{name}: the pipeline has no input {ref.key!r}")
        return dag_params[ref.key]
    st = states[ref.op]
    source = {"outputs": st.outputs, "inputs": st.params, "globals": globals_of(st)}[
        ref.section]
    if ref.whole:
        return dict(source)
    if ref.key not in source:
        raise ResolveError(f"params.{name}: ops.{ref.op} has no {ref.section[:-1]} "
                           f"{ref.key!r}")
    return source[ref.key]


def condition_scope(states: dict[str, OpState], dag_params: dict[str, Any],
                    own: dict[str, Any] | None = None) -> dict[str, Any]:
    """``ops``, ``dag``, the pipeline's params (``params``, ``inputs``), and the operation's
    own params and ``contextOnly`` params by their names (Polyaxon's ``{{ image == "x"
    }}``); an own param named like one of those sections is shadowed by it."""
    ops = {n: {"outputs": s.outputs, "inputs": s.params, "params": s.params,
               "globals": globals_of(s), "status": s.status.value} for n, s in states.items()}
    return {**(own or {}), "ops": ops, "dag": {"inputs": dag_params}, "params": dag_params,
            "inputs": dag_params}


def decide(spec: PipelineSpec, states: dict[str, OpState], *, pipeline_status: Status,
           dag_params: dict[str, Any], stopping: bool = False,
           defaults: dict[str, dict[str, Any]] | None = None) -> Decision:
    """What to do now. ``states`` has every operation; ``stopping``: a stop was asked for;
    ``defaults``: each operation's job input defaults (what its conditions see of params
    it does not set)."""
    current = {n: s.status for n, s in states.items()}
    active = sum(1 for s in current.values() if s not in FINAL and s != Status.CREATED)
    limit = spec.run.concurrency
    actions: list[Action] = []

    def act(kind: ActionKind, op: str, reason: str | None = None,
            params: dict[str, Any] | None = None,
            context: dict[str, Any] | None = None) -> None:
        actions.append(Action(kind, op, reason, params, context))
        current[op] = {"start": Status.QUEUED, "skip": Status.SKIPPED, "fail": Status.FAILED,
                       "upstream_failed": Status.UPSTREAM_FAILED,
                       "stop": Status.STOPPED}[kind]

    for name in topological(spec.run.operations):
        if current[name] != Status.CREATED:
            continue
        op = spec.op(name)
        if stopping:
            act("stop", name, "the pipeline was stopped")
            continue
        verdict, reason = _ready(op, current, states)
        if verdict == "wait":
            continue
        if verdict in ("skip", "upstream_failed"):
            act(verdict, name, reason)  # type: ignore[arg-type]
            continue
        try:
            params = resolve(op, states, dag_params)
            context = resolve_context(op, states, dag_params)
        except ResolveError as exc:
            act("fail", name, str(exc))
            continue
        if op.conditions is not None:
            own = {**(defaults or {}).get(name, {}), **params, **context}
            try:
                ok = evaluate_condition(op.conditions,
                                        condition_scope(states, dag_params, own))
            except TemplateFailure as exc:
                act("fail", name, str(exc))
                continue
            if not ok:
                act("skip", name, f"conditions {op.conditions!r} evaluated to false")
                continue
        if limit is not None and active >= limit:
            continue  # ready, but the pipeline's concurrency is taken
        active += 1
        act("start", name, params=params, context=context)

    if not stopping and not any(s not in FINAL and s != Status.CREATED
                                for s in current.values()):
        _skip_unreceived(spec, current, states, act)
    status, why = _pipeline(pipeline_status, current, stopping)
    return Decision(actions, status, why)


def _skip_unreceived(spec: PipelineSpec, current: dict[str, Status],
                     states: dict[str, OpState], act: Any) -> None:
    """Nothing runs and nothing can start: what waits on an outside event that has not come
    is skipped now, as a wait on an operation that ended without emitting is; otherwise the
    pipeline would wait forever. Its downstream is decided on the next pass."""
    for name in topological(spec.run.operations):
        if current[name] != Status.CREATED:
            continue
        missing = [e for e in spec.op(name).events
                   if e.external and not _received(e.ref, e.kinds, states[name])]
        if missing:
            act("skip", name, f"{missing[0].ref} sent no {', '.join(missing[0].kinds)} "
                              "before the rest of the pipeline was done")


def _received(ref: str, kinds: tuple[str, ...], state: OpState) -> bool:
    return any((ref, kind) in state.received for kind in kinds)


def _ready(op: Operation, current: dict[str, Status], states: dict[str, OpState]
           ) -> tuple[str, str | None]:
    ups = op.upstream()
    if op.skip_on_upstream_skip:
        skipped = sorted(u for u in ups if current[u] == Status.SKIPPED)
        if skipped:
            return "skip", f"upstream ops.{skipped[0]} was skipped (skipOnUpstreamSkip)"
    for e in op.events:
        if e.external:
            if _received(e.ref, e.kinds, states[op.name]):
                continue
            return "wait", None
        up = states[e.op]
        seen = OpState(current[e.op], up.reached, up.outputs, up.params, up.summary)
        if emitted(e.kinds, seen):
            continue
        if current[e.op] in FINAL:
            return "skip", (f"ops.{e.op} ended {current[e.op].value} without emitting "
                            f"{', '.join(e.kinds)}")
        return "wait", None
    policy_ups = sorted(ups - {e.op for e in op.events if not e.external})
    if not policy_ups:
        return "start", None
    verdict = judge(op.trigger, [current[u] for u in policy_ups])
    if verdict == "fail":
        detail = ", ".join(f"ops.{u} {current[u].value}" for u in policy_ups
                           if current[u] in FINAL)
        return "upstream_failed", f"trigger {op.trigger.value} cannot be met ({detail})"
    return verdict, None


def _pipeline(status: Status, current: dict[str, Status], stopping: bool
              ) -> tuple[Status | None, str | None]:
    if status in FINAL:
        return None, None
    if all(s in FINAL for s in current.values()):
        counts: dict[str, int] = {}
        for s in current.values():
            counts[s.value] = counts.get(s.value, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        if stopping or Status.STOPPED in current.values():
            return Status.STOPPED, summary
        if {Status.FAILED, Status.UPSTREAM_FAILED} & set(current.values()):
            return Status.FAILED, summary
        return Status.SUCCEEDED, summary
    if status == Status.CREATED:
        return Status.RUNNING, None
    return None, None
