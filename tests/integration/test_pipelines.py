"""DAG pipelines on real workers: the seed example, every trigger policy, events, conditions,
skip propagation, param refs, hooks, concurrency, stop, validation, and a pipeline that
survives its evaluator and workers being SIGKILLed mid-flight."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

import taskq
from taskq.core.statuses import Status
from tests.conftest import ROOT, env_for, marks, run_cli, wait_for

pytestmark = pytest.mark.integration
SEED = ROOT / "config" / "examples" / "pipeline.yaml"
S = Status


def finished(run_uuid: str, timeout: float = 60) -> taskq.RunRecord:
    return wait_for(lambda: (x := taskq.get_run(run_uuid)) and x.done and x, timeout,
                    message=f"run {run_uuid} to finish")


def ops_of(pipeline: taskq.RunRecord) -> dict[str, taskq.RunRecord]:
    return {r.op_name: r for r in taskq.list_runs(limit=500)
            if r.pipeline_uuid == pipeline.uuid and r.op_name}


def dag(*ops: dict[str, Any], **run: Any) -> dict[str, Any]:
    return {"version": 1.1, "kind": "component", "name": "p",
            "run": {"kind": "dag", "operations": list(ops), **run}}


def quick(name: str, **kw: Any) -> dict[str, Any]:
    """A train op that takes 0.05 s (or fails, with fail=True)."""
    params = {"seconds": {"value": 0.05}, "epochs": {"value": 1}}
    if kw.pop("fail", False):
        params["fail"] = {"value": True}
    return {"name": name, "hubRef": "train", "params": params, **kw}


def noop(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "hubRef": "noop", **kw}


def test_seed_example_runs_as_written(stack, settings) -> None:
    """tensorboard starts while experiment runs, with its uuid; the pipeline succeeds. If
    the experiment fails before it ever runs, tensorboard is skipped, with the reason."""
    stack.standard()
    pipeline = taskq.run_pipeline(str(SEED))
    assert pipeline.kind == "pipeline" and pipeline.job == "experiment-with-tensorboard"
    done = finished(pipeline.uuid)
    ops = ops_of(done)
    exp, board = ops["experiment"], ops["tensorboard"]
    assert done.status == S.SUCCEEDED, done.reason
    assert exp.status == S.SUCCEEDED and board.status == S.SUCCEEDED
    assert exp.params["learning_rate"] == 0.005 and exp.params["epochs"] == 10
    assert board.params["uuid"] == exp.uuid
    assert board.started_at < exp.finished_at  # while the experiment was still running

    # The experiment fails before it runs: its learning rate, a pipeline input, is not a
    # number, which is found when the operation is about to start. (The input is declared
    # `any`: a `str` input is refused at load, as it cannot fit a float.)
    spec = yaml.safe_load(SEED.read_text())
    spec["inputs"] = {"lr": {"type": "any", "default": "fast"}}
    spec["run"]["operations"][0]["params"]["learning_rate"] = {"ref": "dag",
                                                               "value": "inputs.lr"}
    failed = finished(taskq.run_pipeline(spec).uuid)
    ops = ops_of(failed)
    assert ops["experiment"].status == S.FAILED and ops["experiment"].started_at is None
    assert "params.learning_rate: expected float" in (ops["experiment"].reason or "")
    assert ops["tensorboard"].status == S.SKIPPED
    assert ops["tensorboard"].reason == (
        "ops.experiment ended failed without emitting run_status_running")
    assert failed.status == S.FAILED


def test_policies_conditions_skips_refs_and_hooks(stack, settings) -> None:
    stack.standard()
    spec = dag(
        quick("ok", hooks=[{"hubRef": "evaluate", "trigger": "succeeded",
                            "params": {"uuid": "{{ globals.uuid }}"}}]),
        quick("bad", fail=True),
        noop("after_ok", dependencies=["ok"]),
        noop("after_bad", dependencies=["bad"]),
        noop("after_after_bad", dependencies=["after_bad"]),
        noop("all_failed", dependencies=["bad"], trigger="all_failed"),
        noop("all_failed_no", dependencies=["ok", "bad"], trigger="all_failed"),
        noop("all_done", dependencies=["ok", "bad"], trigger="all_done"),
        noop("one_succeeded", dependencies=["ok", "bad"], trigger="one_succeeded"),
        noop("one_succeeded_no", dependencies=["bad", "after_bad"], trigger="one_succeeded"),
        noop("one_failed", dependencies=["ok", "bad"], trigger="one_failed"),
        noop("one_failed_no", dependencies=["ok", "after_ok"], trigger="one_failed"),
        noop("one_done", dependencies=["ok", "bad"], trigger="one_done"),
        noop("cond_false", dependencies=["ok"], conditions="{{ ops.ok.outputs.loss > 5 }}"),
        noop("cond_true", dependencies=["ok"], conditions="{{ ops.ok.outputs.loss < 5 }}"),
        noop("skip_child", dependencies=["cond_false"], skipOnUpstreamSkip=True),
        noop("no_skip_child", dependencies=["cond_false"]),
        {"name": "refs", "hubRef": "train", "dependencies": ["ok"], "params": {
            "learning_rate": {"ref": "ops.ok", "value": "outputs.loss"},
            "epochs": {"ref": "ops.ok", "value": "inputs.epochs"},
            "seconds": {"ref": "dag", "value": "inputs.pause"}}},
        {"name": "board", "hubRef": "tensorboard", "dependencies": ["ok"],
         "params": {"uuid": {"ref": "ops.ok", "value": "globals.uuid"},
                    "seconds": {"value": 0.01}}})
    spec["inputs"] = {"pause": {"type": "float", "default": 0.3}}
    pipeline = taskq.run_pipeline(spec, params={"pause": 0.02})
    done = finished(pipeline.uuid, 90)
    ops = ops_of(done)
    expected = {
        "ok": S.SUCCEEDED, "bad": S.FAILED, "after_ok": S.SUCCEEDED,
        "after_bad": S.UPSTREAM_FAILED, "after_after_bad": S.UPSTREAM_FAILED,
        "all_failed": S.SUCCEEDED, "all_failed_no": S.UPSTREAM_FAILED,
        "all_done": S.SUCCEEDED, "one_succeeded": S.SUCCEEDED,
        "one_succeeded_no": S.UPSTREAM_FAILED, "one_failed": S.SUCCEEDED,
        "one_failed_no": S.UPSTREAM_FAILED, "one_done": S.SUCCEEDED,
        "cond_false": S.SKIPPED, "cond_true": S.SUCCEEDED, "skip_child": S.SKIPPED,
        "no_skip_child": S.UPSTREAM_FAILED, "refs": S.SUCCEEDED, "board": S.SUCCEEDED}
    assert {n: r.status for n, r in ops.items()} == expected
    assert done.status == S.FAILED and "1 failed" in (done.reason or "")
    assert "evaluated to false" in ops["cond_false"].reason
    assert "skipOnUpstreamSkip" in ops["skip_child"].reason
    assert "ops.bad failed" in ops["after_bad"].reason
    assert ops["refs"].params["learning_rate"] == ops["ok"].outputs["loss"]
    assert ops["refs"].params["epochs"] == 1 and ops["refs"].params["seconds"] == 0.02
    assert ops["board"].params["uuid"] == ops["ok"].uuid
    assert ops["board"].queue == "viz" and ops["ok"].queue == "train"
    hook = wait_for(lambda: next(iter(taskq.list_runs(job="evaluate")), None), 30)
    assert finished(hook.uuid).params["uuid"] == ops["ok"].uuid
    assert {r.uuid for r in ops.values() if r.started_at} == {
        r.uuid for n, r in ops.items() if expected[n] in (S.SUCCEEDED, S.FAILED)}


def test_concurrency_caps_running_operations(stack, settings) -> None:
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], concurrency=4, wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    spec = dag(*({"name": f"b{i}", "hubRef": "tensorboard",
                  "params": {"uuid": {"value": str(i)}, "seconds": {"value": 0.6}}}
                 for i in range(4)), concurrency=2)
    done = finished(taskq.run_pipeline(spec).uuid, 60)
    assert done.status == S.SUCCEEDED
    spans = sorted((r.started_at, r.finished_at) for r in ops_of(done).values())
    most = max(sum(1 for s, f in spans if s <= start < f) for start, _ in spans)
    assert most <= 2
    assert len(spans) == 4


def test_stop_stops_running_and_pending_operations(stack, settings) -> None:
    stack.standard()
    spec = dag({"name": "long", "hubRef": "train",
                "params": {"seconds": {"value": 30}, "epochs": {"value": 30}}},
               noop("next", dependencies=["long"]))
    pipeline = taskq.run_pipeline(spec)
    wait_for(lambda: ops_of(pipeline)["long"].status == S.RUNNING, 30)
    assert taskq.Client().stop_run(pipeline.uuid)
    done = finished(pipeline.uuid, 40)
    ops = ops_of(done)
    assert done.status == S.STOPPED
    assert ops["long"].status == S.STOPPED and ops["next"].status == S.STOPPED
    assert ops["next"].started_at is None


def test_invalid_pipelines_are_refused_before_anything_runs(settings, tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (dag(noop("a", hubRef="ghost")), "operations.a.hubRef: unknown job 'ghost'"),
        (dag(quick("a"), {"name": "b", "hubRef": "train", "dependencies": ["a"],
                          "params": {"learning_rate": {"ref": "ops.a",
                                                       "value": "outputs.accuracy"}}}),
         "operations.b.params.learning_rate: job 'train' of ops.a declares no output "
         "'accuracy'"),
        (dag(noop("a", params={"speed": {"value": 1}})),
         "operations.a.params.speed: job 'noop' has no input 'speed'"),
        (dag(noop("a", queue="x/y/z")), "operations.a.queue: 'x/y/z' has more than two"),
        (dag(noop("a"), noop("b", dependencies=["c"]), noop("c", dependencies=["b"])),
         "cycle"),
        (dag(noop("a", hooks=[{"hubRef": "ghost"}])), "operations.a.hooks"),
        # Checked at load, not when the operation is about to start:
        (dag(quick("a"), {"name": "b", "hubRef": "train", "dependencies": ["a"],
                          "params": {"epochs": {"ref": "ops.a", "value": "globals.uuid"}}}),
         "operations.b.params.epochs: ops.a.globals.uuid is a str, but job 'train' takes "
         "'epochs' as a int"),
        ({**dag({"name": "a", "hubRef": "train",
                 "params": {"learning_rate": {"ref": "dag", "value": "inputs.rate"}}}),
          "inputs": {"rate": {"type": "str", "default": "fast"}}},
         "operations.a.params.learning_rate: dag.inputs.rate is a str, but job 'train' "
         "takes 'learning_rate' as a float"),
    ]
    before = len(taskq.list_runs(limit=500))
    for spec, message in cases:
        with pytest.raises(taskq.ValidationError) as info:
            taskq.run_pipeline(spec)
        assert message in str(info.value)
    with pytest.raises(taskq.ValidationError, match=r"params\.nope: the pipeline declares no"):
        taskq.run_pipeline(dag(noop("a")), params={"nope": 1})
    assert len(taskq.list_runs(limit=500)) == before  # nothing was stored

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(dag(noop("a", dependencies=["zzz"]))))
    out = run_cli("run", "-f", str(bad), env=env_for(settings))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[0] == "error: operations.a.dependencies: unknown operation 'zzz'", out.stderr
    assert len(lines) == 2 and lines[1].startswith("hint: ")


def test_required_inputs_are_checked_at_load(settings, chaining_jobs) -> None:
    """``deploy`` requires ``version``: a pipeline that gives it none is refused, naming the
    field, and nothing is stored; a context-only ``version`` does not count."""
    before = len(taskq.list_runs(limit=500))
    for params in ({}, {"version": {"value": "1.0", "contextOnly": True}}):
        with pytest.raises(taskq.ValidationError) as info:
            taskq.run_pipeline(dag({"name": "ship", "hubRef": "deploy", "params": params}))
        assert str(info.value).startswith(
            "operations.ship.params.version: job 'deploy' requires this input")
    assert len(taskq.list_runs(limit=500)) == before


def test_pipeline_survives_killed_evaluator_and_workers(stack, settings, r) -> None:
    """SIGKILL the evaluator and the viz worker while the first operation runs, then the
    train worker once it is done; restarted, the pipeline finishes, each op run once."""
    evaluator = stack.evaluator(wait=False)
    train = stack.worker("train", ["train"], wait=False)
    viz = stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    spec = dag({"name": "a", "hubRef": "train",
                "params": {"seconds": {"value": 2.0}, "epochs": {"value": 2}}},
               noop("b", dependencies=["a"]),
               {"name": "c", "hubRef": "tensorboard", "dependencies": ["b"],
                "params": {"uuid": {"ref": "ops.a", "value": "globals.uuid"},
                           "seconds": {"value": 0.05}}})
    pipeline = taskq.run_pipeline(spec)
    wait_for(lambda: ops_of(pipeline)["a"].status == S.RUNNING, 30)
    for proc in (evaluator, viz):
        proc.kill(signal.SIGKILL)
        proc.popen.wait(10)
    a = finished(ops_of(pipeline)["a"].uuid, 30)
    assert a.status == S.SUCCEEDED
    train.kill(signal.SIGKILL)
    train.popen.wait(10)
    assert ops_of(pipeline)["b"].status == S.CREATED  # nobody advanced it
    stack.evaluator("evaluator-2", wait=False)
    stack.worker("viz-2", ["viz"], wait=False)
    for p in stack.procs[-2:]:
        p.wait_ready(90)
    done = finished(pipeline.uuid, 60)
    ops = ops_of(done)
    assert done.status == S.SUCCEEDED, done.reason
    assert ops["c"].params["uuid"] == a.uuid
    assert marks("train") == [a.uuid] and marks("noop") == [ops["b"].uuid]
    assert marks("tensorboard") == [ops["c"].uuid]
