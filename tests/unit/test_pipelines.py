"""Pipeline specs and the pure scheduler: policies, events, conditions, skips, refs,
concurrency and stopping, without any service."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskq.core.pipelines import scheduler as dag
from taskq.core.pipelines.spec import Policy, parse
from taskq.core.statuses import FINAL, Status
from taskq.errors import SpecError

S = Status


def spec(*ops: dict[str, Any], concurrency: int | None = None, **extra: Any):
    run: dict[str, Any] = {"kind": "dag", "operations": list(ops)}
    if concurrency:
        run["concurrency"] = concurrency
    return parse({"version": 1.1, "kind": "component", "name": "p", "run": run, **extra})


def op(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "hubRef": kw.pop("job", "train"), **kw}


def states(**by_name: Any) -> dict[str, dag.OpState]:
    out = {}
    for name, value in by_name.items():
        status, reached = value if isinstance(value, tuple) else (value, ())
        out[name] = dag.OpState(status=status, reached=frozenset({*reached, status.value}),
                                outputs={"loss": 0.1} if status == S.SUCCEEDED else {},
                                params={"lr": 0.5},
                                summary={"uuid": f"uuid-{name}", "job": "train",
                                         "status": status.value})
    return out


def decide(sp, st, status=S.RUNNING, stopping=False, params=None):
    return dag.decide(sp, st, pipeline_status=status, dag_params=params or {},
                      stopping=stopping)


def kinds(decision) -> dict[str, str]:
    return {a.op: a.kind for a in decision.actions}


# -- specs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("ops", "message"), [
    ([op("a"), op("a")], "operations.a: the name is used twice"),
    ([op("a", dependencies=["ghost"])], "operations.a.dependencies: unknown operation 'ghost'"),
    ([op("a", dependencies=["b"]), op("b", dependencies=["a"])], "cycle"),
    ([op("a", dependencies=["a"])], "operations.a: depends on itself"),
    ([op("a", params={"x": {"ref": "ops.nope", "value": "outputs.y"}})],
     "operations.a.params.x: unknown operation 'nope'"),
    ([op("a"), op("b", params={"x": {"ref": "ops.a", "value": "weights.y"}})],
     "operations.b.params.x: value: 'weights.y' is not outputs"),
    ([op("a"), op("b", params={"x": {"ref": "ops.a", "value": "globals.secret"}})],
     "globals.secret is not one of"),
    ([op("a", events=[{"ref": "ops.ghost", "kinds": ["run_status_running"]}])],
     "operations.a.events: unknown operation 'ghost'"),
    ([op("a"), op("b", events=[{"ref": "ops.a", "kinds": ["model_published"]}])],
     "ref 'ops.a' never sends 'model_published'"),
    ([op("a"), op("b", trigger="most_succeeded", dependencies=["a"])], "operations.b.trigger"),
    ([op("a", conditions="{{ x > }}")], "operations.a.conditions"),
    ([op("a"), op("b", events=[{"ref": "ops.a", "kinds": ["run_status_running"]}],
                  params={"x": {"ref": "ops.a", "value": "outputs.loss"}})],
     "known only once it finishes"),
    ([{"name": "a", "pathRef": "./x.yml"}], "pathRef: a component file is not supported"),
    ([op("bad name")], "operations.bad name.name"),
])
def test_bad_specs_are_refused_naming_the_op(ops, message) -> None:
    with pytest.raises(SpecError) as info:
        spec(*ops)
    assert message in str(info.value)


def test_cycle_names_its_path() -> None:
    with pytest.raises(SpecError, match=r"operations\.a: cycle a -> c -> b -> a"):
        spec(op("a", dependencies=["c"]), op("b", dependencies=["a"]),
             op("c", params={"x": {"ref": "ops.b", "value": "globals.uuid"}}))


def test_upstream_joins_dependencies_events_and_refs() -> None:
    sp = spec(op("a"), op("b"), op("c"),
              op("d", dependencies=["a"], events=[{"ref": "ops.b", "kinds": "run_status_running"}],
                 params={"u": {"ref": "ops.c", "value": "globals.uuid"}, "lr": {"value": 0.1}}))
    d = sp.op("d")
    assert d.upstream() == {"a", "b", "c"}
    assert d.plain_params() == {"lr": 0.1}
    assert sp.op("d").job == "train"


# -- policies -----------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "ups", "verdict"), [
    (Policy.ALL_SUCCEEDED, [S.SUCCEEDED, S.RUNNING], "wait"),
    (Policy.ALL_SUCCEEDED, [S.SUCCEEDED, S.SUCCEEDED], "start"),
    (Policy.ALL_SUCCEEDED, [S.FAILED, S.RUNNING], "fail"),
    (Policy.ALL_SUCCEEDED, [S.SKIPPED, S.SUCCEEDED], "fail"),
    (Policy.ALL_FAILED, [S.FAILED, S.FAILED], "start"),
    (Policy.ALL_FAILED, [S.FAILED, S.SUCCEEDED], "fail"),
    (Policy.ALL_DONE, [S.FAILED, S.RUNNING], "wait"),
    (Policy.ALL_DONE, [S.FAILED, S.STOPPED], "start"),
    (Policy.ONE_SUCCEEDED, [S.FAILED, S.RUNNING], "wait"),  # Polyaxon gives up here
    (Policy.ONE_SUCCEEDED, [S.FAILED, S.SUCCEEDED], "start"),
    (Policy.ONE_SUCCEEDED, [S.FAILED, S.STOPPED], "fail"),
    (Policy.ONE_FAILED, [S.SUCCEEDED, S.RUNNING], "wait"),
    (Policy.ONE_FAILED, [S.FAILED, S.RUNNING], "start"),
    (Policy.ONE_FAILED, [S.SUCCEEDED, S.SKIPPED], "fail"),
    (Policy.ONE_DONE, [S.QUEUED, S.RUNNING], "wait"),
    (Policy.ONE_DONE, [S.SKIPPED, S.RUNNING], "start"),
])
def test_policies(policy, ups, verdict) -> None:
    assert dag.judge(policy, ups) == verdict


def test_root_starts_and_the_pipeline_runs() -> None:
    sp = spec(op("a"), op("b", dependencies=["a"]))
    d = decide(sp, states(a=S.CREATED, b=S.CREATED), status=S.CREATED)
    assert kinds(d) == {"a": "start"} and d.status == S.RUNNING


def test_upstream_failed_cascades_in_one_pass_and_the_pipeline_fails() -> None:
    sp = spec(op("a"), op("b", dependencies=["a"]), op("c", dependencies=["b"]))
    d = decide(sp, states(a=S.FAILED, b=S.CREATED, c=S.CREATED))
    assert kinds(d) == {"b": "upstream_failed", "c": "upstream_failed"}
    assert "ops.a failed" in d.actions[0].reason
    assert d.status == S.FAILED


def test_skip_on_upstream_skip_propagates_and_otherwise_upstream_failed() -> None:
    sp = spec(op("a"), op("b", dependencies=["a"], skipOnUpstreamSkip=True),
              op("c", dependencies=["a"]))
    d = decide(sp, states(a=S.SKIPPED, b=S.CREATED, c=S.CREATED))
    assert kinds(d) == {"b": "skip", "c": "upstream_failed"}
    assert "skipOnUpstreamSkip" in d.actions[0].reason


def test_events_start_early_or_skip_when_never_emitted() -> None:
    sp = spec(op("exp"), op("tb", events=[{"ref": "ops.exp", "kinds": ["run_status_running"]}],
                            params={"uuid": {"ref": "ops.exp", "value": "globals.uuid"}}))
    assert kinds(decide(sp, states(exp=S.QUEUED, tb=S.CREATED))) == {}
    d = decide(sp, states(exp=S.RUNNING, tb=S.CREATED))
    assert kinds(d) == {"tb": "start"} and d.actions[0].params == {"uuid": "uuid-exp"}
    # Ran, then succeeded: it did emit running, so the tensorboard still starts.
    ran = decide(sp, states(exp=(S.SUCCEEDED, ["running"]), tb=S.CREATED))
    assert kinds(ran) == {"tb": "start"}
    never = decide(sp, states(exp=(S.FAILED, ["queued"]), tb=S.CREATED))
    assert kinds(never) == {"tb": "skip"}
    assert never.actions[0].reason == "ops.exp ended failed without emitting run_status_running"


def test_done_event_waits_for_any_final_status() -> None:
    sp = spec(op("a"), op("b", events=[{"ref": "ops.a", "kinds": ["run_status_done"]}]))
    assert kinds(decide(sp, states(a=S.RUNNING, b=S.CREATED))) == {}
    assert kinds(decide(sp, states(a=S.STOPPED, b=S.CREATED))) == {"b": "start"}


def test_conditions_skip_with_the_reason_or_fail_on_errors() -> None:
    sp = spec(op("a"), op("good", dependencies=["a"],
                          conditions="{{ ops.a.outputs.loss < 0.2 }}"),
              op("bad", dependencies=["a"], conditions="{{ ops.a.outputs.loss > 0.5 }}"),
              op("broken", dependencies=["a"], conditions="{{ ops.a.outputs.nope.deeper }}"))
    d = decide(sp, states(a=S.SUCCEEDED, good=S.CREATED, bad=S.CREATED, broken=S.CREATED))
    assert kinds(d) == {"good": "start", "bad": "skip", "broken": "fail"}
    assert "evaluated to false" in d.actions[1].reason


def test_param_refs_resolve_outputs_inputs_globals_and_dag_inputs() -> None:
    sp = spec(op("a"), op("b", dependencies=["a"], params={
        "loss": {"ref": "ops.a", "value": "outputs.loss"},
        "lr": {"ref": "ops.a", "value": "inputs.lr"},
        "up": {"ref": "ops.a", "value": "globals.uuid"},
        "seed": {"ref": "dag", "value": "inputs.seed"},
        "fixed": {"value": 3}}))
    d = decide(sp, states(a=S.SUCCEEDED, b=S.CREATED), params={"seed": 7})
    assert d.actions[0].params == {"loss": 0.1, "lr": 0.5, "up": "uuid-a", "seed": 7,
                                   "fixed": 3}
    missing = spec(op("a"), op("b", dependencies=["a"],
                               params={"w": {"ref": "ops.a", "value": "outputs.weights"}}))
    d = decide(missing, states(a=S.SUCCEEDED, b=S.CREATED))
    assert kinds(d) == {"b": "fail"} and "ops.a has no output 'weights'" in d.actions[0].reason


def test_concurrency_caps_active_operations() -> None:
    sp = spec(*(op(f"o{i}") for i in range(5)), concurrency=2)
    first = decide(sp, states(**{f"o{i}": S.CREATED for i in range(5)}), status=S.CREATED)
    assert list(kinds(first).values()) == ["start", "start"]
    later = decide(sp, states(o0=S.RUNNING, o1=S.SUCCEEDED, o2=S.CREATED, o3=S.CREATED,
                              o4=S.CREATED))
    assert kinds(later) == {"o2": "start"}


def test_stopping_stops_what_has_not_started_and_ends_stopped() -> None:
    sp = spec(op("a"), op("b", dependencies=["a"]))
    d = decide(sp, states(a=S.RUNNING, b=S.CREATED), status=S.STOPPING, stopping=True)
    assert kinds(d) == {"b": "stop"} and d.status is None
    done = decide(sp, states(a=S.STOPPED, b=S.STOPPED), status=S.STOPPING, stopping=True)
    assert done.status == S.STOPPED


def test_skipped_operations_do_not_fail_the_pipeline() -> None:
    sp = spec(op("a"), op("b", dependencies=["a"], conditions="{{ false }}"))
    d = decide(sp, states(a=S.SUCCEEDED, b=S.CREATED))
    assert kinds(d) == {"b": "skip"} and d.status == S.SUCCEEDED


# -- property: the scheduler never breaks its invariants ----------------------------------

_ALL = [S.CREATED, S.QUEUED, S.RUNNING, S.SUCCEEDED, S.FAILED, S.STOPPED, S.SKIPPED,
        S.UPSTREAM_FAILED]


@st.composite
def _dags(draw: st.DrawFn):
    n = draw(st.integers(1, 6))
    ops = []
    for i in range(n):
        ups = draw(st.lists(st.integers(0, max(0, i - 1)), max_size=3, unique=True)) if i else []
        entry = op(f"o{i}", dependencies=[f"o{u}" for u in ups],
                   trigger=draw(st.sampled_from(list(Policy))).value,
                   skipOnUpstreamSkip=draw(st.booleans()))
        if ups and draw(st.booleans()):
            entry["events"] = [{"ref": f"o{ups[0]}".join(["ops.", ""]),
                                "kinds": [draw(st.sampled_from(
                                    ["run_status_running", "run_status_done",
                                     "run_status_succeeded"]))]}]
            entry["dependencies"] = [f"o{u}" for u in ups[1:]]
        ops.append(entry)
    return spec(*ops, concurrency=draw(st.one_of(st.none(), st.integers(1, 3))))


@settings(max_examples=300, deadline=None)
@given(sp=_dags(), data=st.data())
def test_decisions_only_move_created_ops_and_respect_concurrency(sp, data) -> None:
    names = [o.name for o in sp.run.operations]
    st_ = {n: dag.OpState(status=data.draw(st.sampled_from(_ALL)),
                          summary={"uuid": n}) for n in names}
    d = dag.decide(sp, st_, pipeline_status=S.RUNNING, dag_params={})
    assert len({a.op for a in d.actions}) == len(d.actions)  # each op decided once
    assert all(st_[a.op].status == S.CREATED for a in d.actions)
    active = sum(1 for s in st_.values() if s.status not in FINAL and s.status != S.CREATED)
    started = sum(a.kind == "start" for a in d.actions)
    if sp.run.concurrency is not None:
        assert started == 0 or active + started <= sp.run.concurrency
    # Applying the decision and deciding again is stable: nothing more to do unless new
    # operations became ready because of it (only skips and failures can cascade).
    if d.status in FINAL:
        after = {**{n: s.status for n, s in st_.items()},
                 **{a.op: {"start": S.QUEUED, "skip": S.SKIPPED, "fail": S.FAILED,
                           "upstream_failed": S.UPSTREAM_FAILED, "stop": S.STOPPED}[a.kind]
                    for a in d.actions}}
        assert all(s in FINAL for s in after.values())
