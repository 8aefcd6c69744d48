"""Registration order never matters, and ClearML's scheduler runs as ClearML runs it: a
trigger may name a project that does not exist yet (it matches once it does, by name, and
says so meanwhile); ClearML's own trigger example runs as a script with only its import
line changed, its ``schedule_function``s (defined in ``__main__``) called in the script's
process: on a worker that re-runs it for ``start_remotely()``, or in the script itself for
``start()``. Real Redis, database and workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import taskq
from taskq import constants
from taskq.core.statuses import Status
from taskq.errors import UnmatchedName
from tests.conftest import ROOT, env_for, run_cli, wait_for
from tests.integration.test_entity_triggers import done, drained, entity, runs_of, settle, start

pytestmark = pytest.mark.integration
__all__ = ["entity"]  # the fixture, shared with the entity-trigger tests


def test_model_trigger_before_its_project_exists_fires_on_the_first_publish(
        entity, stack, r) -> None:
    """A ClearML user adds the trigger first and registers the project's models later:
    taskq stores it, warns that `vision` matches nothing yet (with the near name that
    exists), marks it in `taskq triggers list/show`, watches nothing else meanwhile, and
    fires on the first publish in `vision`."""
    start(stack, viz=(["viz"], {}))
    taskq.models.register("resnet", project="visions")
    sched = taskq.TriggerScheduler(pooling_frequency_minutes=3.0)
    with pytest.warns(UnmatchedName, match=r"trigger_project of trigger 'eval-vision': "
                      r"project 'vision' matches nothing in namespace 'default' yet; the "
                      r"trigger waits .* did you mean 'visions'\?"):
        sched.add_model_trigger(
            schedule_task_id="entity_consumer", schedule_queue="viz",
            trigger_project="vision", trigger_on_publish=True, name="eval-vision",
            task_parameters={"Args/uuid": "${model.id}"})
    env = env_for(entity)
    listed = run_cli("triggers", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert ("(!) default/eval-vision waits for project 'vision' (did you mean 'visions'?): "
            "nothing matches yet") in listed.stdout
    shown = run_cli("triggers", "show", "eval-vision", env=env)
    assert "project 'vision' matches nothing" in json.loads(shown.stdout)["unmatched"][0]

    # Not every project meanwhile (ClearML's unknown project watched them all).
    other = taskq.models.register("other", project="visions")
    taskq.models.publish(other.id)
    settle(r)
    assert runs_of("eval-vision") == []

    model = taskq.models.register("vit", project="vision")
    taskq.models.publish(model.id)
    fired = done("eval-vision", 1)
    assert fired[0].status == Status.SUCCEEDED and fired[0].params["uuid"] == model.id
    listed = run_cli("triggers", "list", env=env)
    assert "(!)" not in listed.stdout
    assert "unmatched" not in json.loads(run_cli("triggers", "show", "eval-vision",
                                                 env=env).stdout)

    # The CLI says the same for an event trigger on a job no worker has stored yet.
    added = run_cli("triggers", "add", "tb-on-ghost", "--ref", "jobs.ghost", "--kind",
                    "run_status_running", "--job", "entity_consumer", env=env)
    assert added.returncode == 0, added.stderr
    assert "warning: event.ref of trigger 'tb-on-ghost': job 'ghost' matches nothing" in (
        " ".join(added.stderr.split()))


# ClearML's examples/scheduler/trigger_example.py as shipped; only the import lines differ
# between ClearML's and the one run here.
CLEARML_IMPORTS = ("from clearml import Task, Dataset, Model\n"
                   "from clearml.automation import TriggerScheduler\n")
TASKQ_IMPORT = "from taskq.api.compat.clearml import Task, Dataset, Model, TriggerScheduler\n"
TRIGGER_EXAMPLE = CLEARML_IMPORTS + '''

def trigger_model_func(model_id):
    model = Model(model_id=model_id)
    print('model id {} modified'.format(model.id))


def trigger_dataset_func(dataset_id):
    dataset = Dataset.get(dataset_id=dataset_id)
    print('dataset id {} created'.format(dataset.id))


def trigger_task_func(task_id):
    task = Task.get_task(task_id=task_id)
    print('Task ID {} metric above threshold'.format(task.id))


if __name__ == '__main__':
    trigger = TriggerScheduler(pooling_frequency_minutes=3.0)
    trigger.add_model_trigger(
        name='model deploy',
        schedule_function=trigger_model_func,
        trigger_project='examples',
        trigger_on_tags=['deploy']
    )
    trigger.add_model_trigger(
        name='model quality check',
        schedule_task_id='add_task_id_here',
        schedule_queue='default',
        trigger_project='examples',
        trigger_on_tags=['deploy']
    )
    trigger.add_dataset_trigger(
        name='retrain on dataset',
        schedule_function=trigger_dataset_func,
        trigger_project='datasets',
        trigger_on_tags=['retrain']
    )
    trigger.add_task_trigger(
        name='performance high-score',
        schedule_function=trigger_task_func,
        trigger_project='examples',
        trigger_on_metric='epoch_accuracy', trigger_on_variant='epoch_accuracy',
        trigger_on_sign='max',
        trigger_on_threshold=0.99
    )
    trigger.start_remotely()
'''
NAMES = ("model deploy", "model quality check", "retrain on dataset",
         "performance high-score")
FUNCTIONS = ("model deploy", "retrain on dataset", "performance high-score")


def script(tmp_path: Path, text: str) -> Path:
    assert text.count(CLEARML_IMPORTS) == 1
    path = tmp_path / "trigger_example.py"
    path.write_text(text.replace(CLEARML_IMPORTS, TASKQ_IMPORT))
    return path


def launch(path: Path, settings: Any) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = path.with_suffix(".out"), path.with_suffix(".err")
    env = {**env_for(settings), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, str(path)], cwd=str(path.parent), env=env,
                                stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    return proc, out, err


def scheduler_runs() -> list[taskq.RunRecord]:
    return taskq.list_runs(job=constants.SCHEDULER_JOB)


def fire_the_example(client: taskq.Client) -> tuple[Any, Any, Any]:
    """A model tagged for deployment and a dataset to retrain on, in the example's
    projects: the quality check (a job on a worker) runs, and the three functions are due."""
    model = taskq.models.register("classifier", project="examples", tags=["deploy"])
    data = taskq.datasets.register("images", project="datasets", tags=["retrain"])
    checked = done("model quality check", 1, timeout=60)[0]
    assert checked.job == "add_task_id_here" and checked.status == Status.SUCCEEDED
    return model, data, checked


def called(model: Any, data: Any, checked: Any) -> list[str]:
    return sorted([f"model id {model.id} modified", f"dataset id {data.id} created",
                   f"Task ID {checked.uuid} metric above threshold"])


def test_clearml_trigger_example_as_shipped_runs_on_a_worker(entity, stack, r,
                                                             tmp_path) -> None:
    """As shipped the example ends with `start_remotely()`: its process hands the
    scheduler to the `services` queue and ends; a worker there re-runs the script, as
    ClearML's agent does, and calls the three functions of its `__main__`, each once for
    the object that fired it. Projects `examples` and `datasets` do not exist yet: said,
    not refused. Stopping the run ends the re-run script."""
    start(stack, services=(["services", "default"], {}))
    proc, _out, err = launch(script(tmp_path, TRIGGER_EXAMPLE), entity)
    assert proc.wait(120) == 0, err.read_text()
    warned = err.read_text()
    assert "project 'examples' matches nothing in namespace 'default' yet" in warned
    assert "project 'datasets' matches nothing" in warned
    client = taskq.Client()
    assert all(client.get_trigger(n) for n in NAMES)
    remote = wait_for(lambda: next(iter(scheduler_runs()), None), 30,
                      message="the scheduler's run")
    assert remote.queue == "services" and remote.params["script_name"] == "trigger_example.py"
    wait_for(lambda: taskq.get_run(remote.uuid).status == Status.RUNNING, 60,
             message="the scheduler running on a worker")

    model, data, checked = fire_the_example(client)
    worker = stack.procs[-1]
    for name in FUNCTIONS:
        call = done(name, 1, timeout=60)[0]
        assert call.job == constants.FUNCTION_JOB and call.status == Status.SUCCEEDED
        assert call.queue == constants.SCHEDULER_CALLS_QUEUE
    lines = wait_for(lambda: sorted(x for x in worker.output().splitlines()
                                    if x.startswith(("model id", "dataset id", "Task ID")))
                     or None, 30, message="the three functions' lines in the worker log")
    assert lines == called(model, data, checked)
    wait_for(lambda: drained(r), 30, message="stream drained")
    assert all(len(runs_of(n)) == 1 for n in (*FUNCTIONS, "model quality check"))

    client.stop_run(remote.uuid)
    wait_for(lambda: taskq.get_run(remote.uuid).status == Status.STOPPED, 30)
    wait_for(lambda: "trigger_example.py" not in subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True).stdout, 30,
        message="the re-run script to end with its run")


def test_clearml_trigger_example_with_start_calls_the_functions_in_its_process(
        entity, stack, r, tmp_path) -> None:
    """With `trigger.start()` instead (ClearML's "locally"), the three functions of
    `__main__` are called in the script's own process; `start()` does not return."""
    start(stack, default=(["default"], {}))
    text = TRIGGER_EXAMPLE.replace("    trigger.start_remotely()\n", "    trigger.start()\n")
    proc, out, _err = launch(script(tmp_path, text), entity)
    try:
        client = taskq.Client()
        wait_for(lambda: all(client.get_trigger(n) for n in NAMES), 60,
                 message="the example's four triggers")
        model, data, checked = fire_the_example(client)
        lines = wait_for(lambda: (o := out.read_text().splitlines()) and len(o) >= 3 and o,
                         60, message="the three functions' lines")
        assert sorted(lines) == called(model, data, checked)
        assert proc.poll() is None  # start() does not return
        for name in FUNCTIONS:
            call = done(name, 1)[0]
            assert call.job == constants.FUNCTION_JOB and call.status == Status.SUCCEEDED
            assert call.queue == constants.SCHEDULER_CALLS_QUEUE
    finally:
        proc.terminate()
        proc.wait(30)


def test_start_remotely_without_a_script_file_says_what_to_do(entity, tmp_path) -> None:
    """A scheduler with a function of `__main__` in a session that has no script file
    (`python -c`, a notebook): no worker could re-run it. One line says so."""
    code = TASKQ_IMPORT + (
        "def f(model_id):\n    print(model_id)\n"
        "s = TriggerScheduler()\n"
        "s.add_model_trigger(name='nb', schedule_function=f, trigger_project='examples')\n"
        "s.start_remotely()\n")
    env = {**env_for(entity), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("taskq.errors.ValidationError: start_remotely: schedule_function "
                           "'f' of trigger 'nb' is defined in __main__, and this session "
                           "has no script a worker could re-run"), last
    assert last.endswith("call start() to run the scheduler here, or pass "
                         "'package.module:function'")
    assert scheduler_runs() == []


def test_hooks_and_finish_triggers_may_name_jobs_to_come(settings) -> None:
    """A Polyaxon hook on a job no worker has stored yet, and a Metaflow finish trigger
    with a typo: both stored, both said (the typo with the name meant)."""
    client = taskq.Client()
    with pytest.warns(UnmatchedName, match=r"job of trigger 'scoring-done': job "
                      r"'scoring' matches nothing"):
        client.add_hook(job="scoring", hook={"hubRef": "tensorboard", "trigger": "done"},
                        name="scoring-done")
    with pytest.warns(UnmatchedName, match=r"trigger_on_finish of trigger 'after-train': "
                      r"job 'trian' matches nothing .*did you mean 'train'\?"):
        client.add_finish_trigger(name="after-train", job="tensorboard", upstream="trian")
    assert {"scoring-done", "after-train"} <= {t["name"] for t in client.list_triggers()}
    assert "did you mean 'train'?" in client.get_trigger("after-train")["unmatched"][0]
