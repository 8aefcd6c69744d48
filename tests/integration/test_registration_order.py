"""Registration order never matters, and ClearML's scheduler runs as ClearML runs it: a
trigger may name a project that does not exist yet (it matches once it does, by name, and
says so meanwhile); ClearML's own trigger example runs as a script with only its import
line changed, its ``schedule_function``s (defined in ``__main__``) called by
``TriggerScheduler.start()`` in the script's process. Real Redis, database and workers."""

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
from tests.integration.test_entity_triggers import done, entity, runs_of, settle, start

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


# ClearML's examples/scheduler/trigger_example.py: its calls, names and arguments as
# shipped; only the import lines differ between the two versions below.
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
    # the scheduler checks the system every minute
    trigger = TriggerScheduler(pooling_frequency_minutes=1.0)

    # a model tagged for deployment
    trigger.add_model_trigger(
        name='model deploy',
        schedule_function=trigger_model_func,
        trigger_project='examples',
        trigger_on_tags=['deploy']
    )

    # the same models, launching a task instead of a function
    trigger.add_model_trigger(
        name='model quality check',
        schedule_task_id='add_task_id_here',
        schedule_queue='default',
        trigger_project='examples',
        trigger_on_tags=['deploy']
    )

    # a dataset to retrain on
    trigger.add_dataset_trigger(
        name='retrain on dataset',
        schedule_function=trigger_dataset_func,
        trigger_project='datasets',
        trigger_on_tags=['retrain']
    )

    # a task reaching a high score
    trigger.add_task_trigger(
        name='performance high-score',
        schedule_function=trigger_task_func,
        trigger_project='examples',
        trigger_on_metric='epoch_accuracy', trigger_on_variant='epoch_accuracy',
        trigger_on_sign='max',
        trigger_on_threshold=0.99
    )

    # start the trigger daemon (locally/remotely)
    # trigger.start()
    trigger.start_remotely()
'''
NAMES = ("model deploy", "model quality check", "retrain on dataset",
         "performance high-score")


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


def test_clearml_trigger_example_runs_as_a_script_with_start(
        entity, stack, r, tmp_path) -> None:
    """The example with its own "locally" choice (`trigger.start()`, commented in as the
    file offers): the three functions of `__main__` are called in the script's process,
    each for the object that fired it; the task trigger also launches a job on a worker.
    Projects `examples` and `datasets` do not exist when it starts: said, not refused."""
    start(stack, default=(["default"], {}))
    text = TRIGGER_EXAMPLE.replace("    # trigger.start()\n    trigger.start_remotely()\n",
                                   "    trigger.start()\n    # trigger.start_remotely()\n")
    proc, out, err = launch(script(tmp_path, text), entity)
    try:
        client = taskq.Client()
        wait_for(lambda: all(client.get_trigger(n) for n in NAMES), 60,
                 message="the example's four triggers")
        warned = wait_for(lambda: (t := err.read_text()).count("matches nothing") >= 4 and t,
                          30, message="a warning per trigger")
        assert "project 'examples' matches nothing in namespace 'default' yet" in warned
        assert "project 'datasets' matches nothing" in warned

        model = taskq.models.register("classifier", project="examples", tags=["deploy"])
        data = taskq.datasets.register("images", project="datasets", tags=["retrain"])
        checked = done("model quality check", 1, timeout=60)[0]  # a job on a worker
        assert checked.job == "add_task_id_here" and checked.status == Status.SUCCEEDED
        lines = wait_for(lambda: (o := out.read_text().splitlines()) and len(o) >= 3 and o,
                         60, message="the three functions' lines")
        assert sorted(lines) == sorted([
            f"model id {model.id} modified", f"dataset id {data.id} created",
            f"Task ID {checked.uuid} metric above threshold"])
        assert proc.poll() is None  # start() does not return
        for name in ("model deploy", "retrain on dataset", "performance high-score"):
            call = done(name, 1)[0]
            assert call.job == constants.FUNCTION_JOB and call.status == Status.SUCCEEDED
            assert call.queue == constants.SCHEDULER_CALLS_QUEUE
    finally:
        proc.terminate()
        proc.wait(30)


def test_clearml_trigger_example_as_shipped_says_why_start_remotely_cannot(
        entity, tmp_path) -> None:
    """As shipped it ends with `start_remotely()`: a worker would call the functions,
    and it cannot import `__main__`. One line says so and what to do."""
    proc, _out, err = launch(script(tmp_path, TRIGGER_EXAMPLE), entity)
    assert proc.wait(120) != 0
    last = err.read_text().strip().splitlines()[-1]
    assert last == (
        "taskq.errors.ValidationError: start_remotely: schedule_function "
        "'trigger_model_func' of trigger 'model deploy' is defined in __main__, which a "
        "worker cannot import; call start() to run the scheduler here, or pass "
        "'package.module:function'")


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
