"""Two event kinds from real sources: a metric logged on a registered model
(`taskq.models.log_metric`, `taskq models log-metric`) is a `model_version_new_metric` event
on `models.<id>`, and a metric a running job logs past an alert declared on its job
(`@taskq.job(alerts=[taskq.Alert(...)])`) is an `alert_<level>` event on the run and its
job. A trigger on either fires once per event, and the run it starts reads the payload in
`current.trigger.event`. Real Redis, database and Celery workers."""

from __future__ import annotations

import warnings

import pytest

import taskq
from taskq.core.statuses import Status
from taskq.errors import UnmatchedName
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.test_exactly_once import drained, firings_of
from tests.integration.test_run_statuses import seen
from workers import examples

pytestmark = pytest.mark.integration

FIELDS = ("id", "name", "project", "version", "metric", "value", "step", "previous_value")


def test_each_metric_logged_on_a_model_fires_its_trigger_once(stack, settings, r) -> None:
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    model = taskq.models.register("resnet", project="vision", version="3")
    other = taskq.models.register("resnet", project="vision", version="4")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnmatchedName)  # models.<id> names an existing model
        taskq.add_trigger(name="on-metric", job="observe", event=taskq.EventTrigger(
            ref=f"models.{model.id}", kinds=["model_version_new_metric"]))

    for args, error in [(("", 0.8), r"^name: must be a non-empty string"),
                        (("acc", float("nan")), r"^value: must be finite, got nan$"),
                        (("acc", "0.8"), r"^value: must be a number, got str$")]:
        with pytest.raises(taskq.ValidationError, match=error):
            taskq.models.log_metric(model.id, *args)
    with pytest.raises(taskq.ValidationError, match=r"^id: no model 'nope' in namespace"):
        taskq.models.log_metric("nope", "acc", 0.8)
    with pytest.raises(taskq.ValidationError, match=r"^log_metric: only models have"):
        taskq.datasets.log_metric(model.id, "acc", 0.8)

    taskq.models.log_metric(model.id, "acc", 0.81, step=1)
    record = taskq.models.log_metric(model.id, "acc", 0.87, step=2)
    taskq.models.log_metric(other.id, "acc", 0.5)  # another model: not this trigger's
    cli = run_cli("models", "log-metric", model.id, "f1", "0.5", env=env_for(settings))
    assert cli.returncode == 0, cli.stderr
    assert "f1 = 0.5" in cli.stdout
    bad = run_cli("models", "log-metric", model.id, "f1", "nan", env=env_for(settings))
    assert bad.returncode != 0 and "value: must be finite" in bad.stderr + bad.stdout

    got = wait_for(lambda: (s := seen()) and len(s) >= 3 and s, 90,
                   message="three observe runs, one per metric")
    wait_for(lambda: drained(r), 30, message="stream drained")
    assert len(firings_of("on-metric")) == 3
    payloads = sorted(({k: s["payload"][k] for k in FIELDS} for s in got),
                      key=lambda p: (p["metric"], p["value"]))
    same = {"id": model.id, "name": "resnet", "project": "vision", "version": "3"}
    assert payloads == [
        {**same, "metric": "acc", "value": 0.81, "step": 1, "previous_value": None},
        {**same, "metric": "acc", "value": 0.87, "step": 2, "previous_value": 0.81},
        {**same, "metric": "f1", "value": 0.5, "step": None, "previous_value": None}]
    assert {s["kind"] for s in got} == {"model_version_new_metric"}
    assert record.metrics["acc"]["value"] == 0.87 and record.metrics["acc"]["n"] == 2
    stored = taskq.models.get(model.id)
    assert stored is not None and sorted(stored.metrics) == ["acc", "f1"]
    assert stored.metrics["acc"] == record.metrics["acc"]


def test_a_metric_crossing_an_alert_declared_on_its_job_fires_a_trigger_once(
        stack, settings, r) -> None:
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_trigger(name="on-critical", job="observe", event=taskq.EventTrigger(
        ref="jobs.spiking", kinds=["alert_critical"]))

    # 6 crosses above 5; 7 is still above (no second alert); 2 is back below.
    run = taskq.submit(examples.spiking, params={"losses": "1,6,7,2"})
    wait_for(lambda: taskq.get_run(run.uuid).status == Status.SUCCEEDED, 90,
             message="spiking succeeded")
    [got] = wait_for(lambda: (s := [x for x in seen() if x["uuid"] == run.uuid]) and s, 90,
                     message="the declared alert's trigger")
    wait_for(lambda: drained(r), 30, message="stream drained")
    assert len(firings_of("on-critical")) == 1
    assert got["kind"] == "alert_critical" and got["status"] == "running"
    assert got["fields"] == {"metric": "loss", "value": 6.0, "threshold": 5.0,
                             "direction": "above", "step": 1}
    assert got["message"] == "loss = 6, above 5"
    assert [x["uuid"] for x in seen()] == [run.uuid]


def test_a_model_trigger_with_a_metric_threshold_fires_on_each_crossing(
        stack, settings, r) -> None:
    """The ClearML-style model trigger, with taskq's metric threshold: a value logged on a
    published model of the project crossing into the region fires; staying there does
    not; leaving and crossing again fires again."""
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    model = taskq.models.register("resnet", project="vision", version="3", published=True)
    draft = taskq.models.register("resnet", project="vision", version="4")
    sched = taskq.TriggerScheduler()
    sched.add_model_trigger(schedule_task_id="observe", trigger_project="vision",
                            trigger_on_publish=True, name="accurate", add_tag=False,
                            trigger_on_metric="acc", trigger_on_threshold=0.9,
                            trigger_on_sign="max")
    with pytest.raises(taskq.ValidationError, match=r"trigger_on_metric and "
                       r"trigger_on_threshold go together"):
        sched.add_model_trigger(schedule_task_id="observe", trigger_on_metric="acc")

    for value in (0.8, 0.92, 0.95, 0.85, 0.91):  # crossings: 0.92 and 0.91
        taskq.models.log_metric(model.id, "acc", value)
    taskq.models.log_metric(draft.id, "acc", 0.99)  # not published: not watched
    got = wait_for(lambda: (s := seen()) and len(s) >= 2 and s, 90,
                   message="two observe runs, one per crossing")
    wait_for(lambda: drained(r), 30, message="stream drained")
    assert len(firings_of("accurate")) == 2
    assert sorted(s["payload"]["value"] for s in got) == [0.91, 0.92]
    assert {s["payload"]["id"] for s in got} == {model.id}
