"""Hooks end to end: real workers, real Redis, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest

import taskq
from taskq import Hook, ValidationError
from taskq.core.statuses import Status
from tests.conftest import wait_for
from tests.integration.test_exactly_once import drained
from workers import examples

pytestmark = pytest.mark.integration

EVAL_IF_GOOD = Hook(trigger="succeeded", conditions="{{ loss < 0.2 }}", hub_ref="evaluate",
                    params={"uuid": "{{ globals.uuid }}"})


def hook_runs(main_uuid: str) -> list[taskq.RunRecord]:
    # An admin client: hook runs of every namespace.
    return [r for r in taskq.Client(admin=True).list_runs(job="evaluate", limit=200)
            if (r.trigger_context or {}).get("run", {}).get("uuid") == main_uuid]


def finished(run_uuid: str, timeout: float = 30) -> taskq.RunRecord:
    admin = taskq.Client(admin=True)  # runs of every namespace
    return wait_for(lambda: (x := admin.get_run(run_uuid)) and x.done and x, timeout)


def test_seed_example_condition_on_logged_output(stack, settings, r) -> None:
    """`trigger: succeeded` + `conditions: '{{ loss < 0.2 }}'` runs `evaluate` only when
    the training's output is below 0.2; otherwise the hook is recorded as skipped."""
    stack.standard()
    taskq.add_hook(job="train", hook=EVAL_IF_GOOD)
    good = taskq.submit(examples.train, params={"learning_rate": 0.05, "epochs": 3,
                                                "seconds": 0.1})
    bad = taskq.submit(examples.train, params={"learning_rate": 0.001, "epochs": 1,
                                               "seconds": 0.1})
    evaluation = wait_for(lambda: next(iter(hook_runs(good.uuid)), None), 30)
    evaluation = finished(evaluation.uuid)
    finished(bad.uuid)
    wait_for(lambda: drained(r), 20)
    assert evaluation.status == Status.SUCCEEDED
    assert evaluation.params["uuid"] == good.uuid
    ctx = evaluation.outputs["context"]  # the default context, seen through current.context
    assert ctx["uuid"] == good.uuid and ctx["status"] == "succeeded" and ctx["name"] == "train"
    assert ctx["outputs"]["loss"] < 0.2 and ctx["duration"] > 0
    assert hook_runs(bad.uuid) == []
    firings = taskq.Client().rt.store.firings_for_run(bad.uuid)
    skipped = [f for f in firings if f["kind"] == "hook"]
    assert skipped[0]["outcome"] == "skipped"
    assert "evaluated to false" in skipped[0]["reason"]


def test_hook_statuses_and_run_scoped_hooks(stack, settings, r) -> None:
    stack.standard()
    taskq.add_hook(job="train", hook={"hubRef": "evaluate", "trigger": "failed",
                                      "disableDefaults": True,
                                      "params": {"uuid": "{{ globals.uuid }}",
                                                 "note": {"value": "x", "contextOnly": True}}})
    ok = taskq.submit(examples.train, params={"seconds": 0.05, "epochs": 1})
    broken = taskq.submit(examples.train, params={"fail": True})
    only_this = taskq.submit(examples.train, params={"seconds": 0.05, "epochs": 1},
                             hooks=[{"hubRef": "evaluate", "trigger": "done"}])
    evaluation = finished(wait_for(lambda: next(iter(hook_runs(broken.uuid)), None), 30).uuid)
    assert evaluation.outputs["context"] == {"note": "x"}  # defaults disabled
    per_run = wait_for(lambda: next(iter(hook_runs(only_this.uuid)), None), 30)
    finished(per_run.uuid)
    finished(ok.uuid)
    wait_for(lambda: drained(r), 20)
    time.sleep(0.5)
    assert hook_runs(ok.uuid) == []
    assert len(hook_runs(broken.uuid)) == 1
    assert [h.trigger_name for h in hook_runs(only_this.uuid)] == [f"{only_this.uuid}.hook.0"]


def test_unresolvable_hook_is_recorded_with_its_reason(stack, settings, r) -> None:
    """A condition that fails at run time is recorded with its message (Polyaxon loses it),
    and the evaluator keeps going."""
    stack.standard()
    taskq.add_hook(job="train", hook=Hook(hub_ref="evaluate", trigger="succeeded",
                                          conditions="{{ accuracy > 0.5 }}"))
    taskq.add_hook(job="train", hook=Hook(hub_ref="evaluate", trigger="done",
                                          params={"uuid": "{{ globals.uuid }}"}))
    run = taskq.submit(examples.train, params={"seconds": 0.05, "epochs": 1})
    wait_for(lambda: hook_runs(run.uuid), 30)
    wait_for(lambda: drained(r), 20)
    firings = {f["trigger"]: f for f in taskq.Client().rt.store.firings_for_run(run.uuid)}
    failed = firings["train.hook.evaluate.succeeded"]
    assert failed["outcome"] == "error" and "'accuracy' is undefined" in failed["reason"]
    assert firings["train.hook.evaluate.done"]["outcome"] == "fired"
    from tests.conftest import env_for, run_cli

    shown = json.loads(run_cli("runs", "show", run.uuid, env=env_for(settings)).stdout)
    errors = [f for f in shown["firings"] if f["outcome"] == "error"]
    assert errors and "'accuracy' is undefined" in errors[0]["reason"]


@pytest.mark.parametrize(("hook", "message"), [
    ({"hubRef": "nope"}, "job: unknown job 'nope'"),
    ({"hubRef": "evaluate", "params": {"x": 1}}, "hook.params.x: job 'evaluate' has no input"),
    ({"hubRef": "evaluate", "conditions": "{{ a < }}"}, "hook.conditions"),
    ({"hubRef": "evaluate", "connection": "slack-connection"},
     "hook.connection: undefined connection 'slack-connection'"),
    ({"hubRef": "evaluate", "queue": "a/b/c"}, "hook.queue"),
    ({"hubRef": "evaluate", "presets": ["nope"]}, "hook.presets: unknown preset 'nope'"),
    ({"hubRef": "evaluate", "namespace": "team-a"}, "hook.namespace"),
    ({"hubRef": "evaluate", "trigger": "running"}, "hook.trigger"),
])
def test_bad_hooks_are_refused_at_registration(settings, hook, message) -> None:
    with pytest.raises(ValidationError) as err:
        taskq.add_hook(job="train", hook=hook)
    assert str(err.value).startswith(message), str(err.value)
    assert [t for t in taskq.list_triggers() if t["kind"] == "hook"] == []


def test_presets_template_first_then_the_hooks_own(settings) -> None:
    from taskq.settings import configure

    configure(settings, presets={"gpu-pool": {"queue": "gpu", "params": {"uuid": "from-gpu"}},
                                 "viz-pool": {"queue": "viz"}})
    store = taskq.Client().rt.store
    template = store.get_job_template("evaluate", "default")
    assert template is not None
    store.upsert_job_template(name="evaluate", namespace="default", queue=template.queue,
                              task_name=template.task_name, inputs=template.inputs,
                              outputs=template.outputs, project=None, description=None,
                              presets=["gpu-pool"])
    plain = taskq.add_hook(job="train", hook={"hubRef": "evaluate"})
    assert plain["queue"] == "gpu" and plain["params"] == {"uuid": "from-gpu"}
    own = taskq.add_hook(job="train", hook={"hubRef": "evaluate", "trigger": "failed",
                                            "presets": ["viz-pool"],
                                            "params": {"uuid": "mine"}})
    assert own["queue"] == "viz" and own["params"] == {"uuid": "mine"}


def test_hooks_declared_with_the_job_are_synced_by_workers(stack, settings, tmp_path,
                                                          r) -> None:
    """`@taskq.job(hooks=[...])`: a worker importing the module stores the hooks; a final
    event appended twice still runs the hook once."""
    from taskq.core.events import Event
    from tests.conftest import ROOT, env_for, run_cli

    module = tmp_path / "hooked_jobs.py"
    module.write_text(
        "import taskq\n\n"
        "@taskq.job(queue='train', hooks=[{'hubRef': 'evaluate', 'trigger': 'failed',\n"
        "                                  'params': {'uuid': '{{ globals.uuid }}'}}])\n"
        "def fragile() -> None:\n"
        "    raise RuntimeError('boom')\n")
    env = {"TASKQ_IMPORTS": "workers.examples,hooked_jobs", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    stack.evaluator(wait=False, **env)
    stack.worker("train", ["train"], wait=False, **env)
    stack.worker("viz", ["viz"], wait=False, **env)
    for p in stack.procs:
        p.wait_ready(90)
    hook = wait_for(lambda: taskq.Client().get_trigger("fragile.hooks.0"), 20)
    assert hook["kind"] == "hook" and hook["spec"]["ref"] == "jobs.fragile"
    run = taskq.submit("fragile")
    evaluation = wait_for(lambda: next(iter(hook_runs(run.uuid)), None), 30)
    finished(evaluation.uuid)
    from sqlalchemy import select

    from taskq.store.models import RunEvent

    with taskq.Client().rt.store.read() as conn:
        body = conn.execute(select(RunEvent.body).where(
            RunEvent.run_uuid == run.uuid, RunEvent.status == "failed")).scalar_one()
    bus = taskq.Client().rt.bus
    bus.append(Event.model_validate(body))
    bus.append(Event.model_validate(body))
    wait_for(lambda: drained(r), 20)
    time.sleep(0.5)
    assert len(hook_runs(run.uuid)) == 1
    shown = json.loads(run_cli("runs", "show", run.uuid, env=env_for(settings, **env)).stdout)
    assert [f["outcome"] for f in shown["firings"] if f["kind"] == "hook"] == ["fired"]


def test_hook_loops_and_silent_overwrites_are_refused(settings) -> None:
    with pytest.raises(ValidationError, match="leads back to 'train'"):
        taskq.add_hook(job="train", hook={"hubRef": "train"})
    taskq.add_hook(job="evaluate", hook={"hubRef": "tensorboard"})
    with pytest.raises(ValidationError, match="'evaluate' leads back to 'tensorboard'"):
        taskq.add_hook(job="tensorboard", hook={"hubRef": "evaluate"})
    taskq.add_hook(job="train", hook={"hubRef": "evaluate", "trigger": "failed"})
    with pytest.raises(ValidationError, match="a different hook named"):
        taskq.add_hook(job="train", hook={"hubRef": "evaluate", "trigger": "failed",
                                          "conditions": "{{ loss > 1 }}"})
    named = taskq.add_hook(job="train", name="train.hook.evaluate.failed",
                           hook={"hubRef": "evaluate", "trigger": "failed",
                                 "conditions": "{{ loss > 1 }}"})
    assert named["version"] == 2


def test_triggers_list_shows_hooks(settings) -> None:
    from tests.conftest import env_for, run_cli

    taskq.add_hook(job="train", hook={"hubRef": "evaluate", "trigger": "succeeded"})
    out = run_cli("triggers", "list", env=env_for(settings, COLUMNS="200"))
    assert out.returncode == 0, out.stderr
    assert "jobs.train succeeded (hook)" in " ".join(out.stdout.split())


def test_a_hook_never_sees_another_namespace(stack, settings, r) -> None:
    stack.evaluator(wait=False)
    stack.worker("train", ["train", "team-a--train"], wait=False)
    stack.worker("viz", ["viz", "team-a--viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    team_a = taskq.Client(namespace="team-a")  # a client per namespace: each is bound to one
    team_a.add_hook(job="train", namespace="team-a",
                    hook={"hubRef": "evaluate", "params": {"uuid": "{{ globals.uuid }}"}})
    theirs = taskq.submit(examples.train, params={"seconds": 0.05, "epochs": 1})
    mine = team_a.submit(examples.train, params={"seconds": 0.05, "epochs": 1},
                         namespace="team-a")
    evaluation = finished(wait_for(lambda: next(iter(hook_runs(mine.uuid)), None), 30).uuid)
    finished(theirs.uuid)
    wait_for(lambda: drained(r), 20)
    assert evaluation.namespace == "team-a" and evaluation.queue == "team-a--viz"
    assert hook_runs(theirs.uuid) == []
