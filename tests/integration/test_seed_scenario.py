"""The seed scenario: a trigger on ``run_status_running`` of ``jobs.train`` starts
``tensorboard`` on queue ``viz`` while train is still running — exactly once, with lineage."""

from __future__ import annotations

import pytest

import taskq
from taskq.core.statuses import Status
from tests.conftest import marks, wait_for
from workers import examples

pytestmark = pytest.mark.integration

TB_PARAMS = {"uuid": "{{ trigger.run.uuid }}"}


def add_seed_trigger(name: str = "tb-on-running", client: object = taskq,
                     **kw: object) -> dict:
    return client.add_trigger(name=name, job="tensorboard",  # type: ignore[attr-defined]
                              event=taskq.EventTrigger(ref="jobs.train",
                                                       kinds=["run_status_running"]),
                              params=TB_PARAMS, **kw)


def clones_of(run_uuid: str, trigger: str = "tb-on-running") -> list[taskq.RunRecord]:
    # An admin client: the clones of every namespace's runs.
    return [r for r in taskq.Client(admin=True).list_runs(trigger=trigger, limit=500)
            if (r.trigger_context or {}).get("run", {}).get("uuid") == run_uuid]


def test_tensorboard_starts_while_train_runs(stack, settings) -> None:
    stack.standard()
    trig = add_seed_trigger()
    train = taskq.submit(examples.train, params={"epochs": 2, "seconds": 2.5})
    assert train.queue == "train" and train.celery_task_id == train.uuid

    board = wait_for(lambda: next(iter(clones_of(train.uuid)), None), 20, message="tensorboard")
    board = wait_for(lambda: (b := taskq.get_run(board.uuid)) and b.done and b, 20,
                     message="tensorboard to finish")
    train = wait_for(lambda: (t := taskq.get_run(train.uuid)) and t.done and t, 30,
                     message="train to finish")

    assert board.status == Status.SUCCEEDED and train.status == Status.SUCCEEDED
    assert board.queue == "viz" and board.job == "tensorboard"
    # Started while the upstream was still running, not after it finished.
    assert board.started_at < train.finished_at
    assert board.params["uuid"] == train.uuid
    # Lineage: which trigger, which event.
    assert board.trigger_name == "tb-on-running" and board.trigger_id == trig["id"]
    running_event = [e for e in taskq.Client().rt.store.run_events(train.uuid)
                     if e["status"] == "running"]
    assert board.event_ids == [running_event[0]["event_id"]]
    assert board.trigger_context["event"]["kind"] == "run_status_running"
    # current.trigger inside the job saw the upstream run.
    assert board.outputs["url"].endswith(train.uuid)
    assert len(clones_of(train.uuid)) == 1
    assert marks("tensorboard") == [board.uuid]
    assert train.metrics and train.outputs["loss"] < 1.0


def test_run_failing_before_running_starts_no_tensorboard(stack, settings) -> None:
    stack.standard()
    add_seed_trigger()
    # submit checks params against train's signature and refuses them before queueing ...
    with pytest.raises(taskq.ValidationError, match=r"^job 'train' params\.learning_rate: "
                                                    r"expected float, got 'fast'$"):
        taskq.submit(examples.train, params={"learning_rate": "fast"})
    # ... so the run that fails before it runs is one sent with plain Celery: the worker's
    # check refuses it before the body runs.
    sent = examples.train.apply_async(kwargs={"learning_rate": "fast"}, queue="train")
    bad = wait_for(lambda: (t := taskq.get_run(sent.id)) and t.done and t, 20)
    assert bad.status == Status.FAILED
    assert "params.learning_rate" in (bad.reason or "")
    assert bad.started_at is None
    # A later good run proves the evaluator was alive and past the bad run's events.
    good = taskq.submit(examples.train, params={"epochs": 1, "seconds": 0.2})
    wait_for(lambda: clones_of(good.uuid), 20)
    assert clones_of(bad.uuid) == []


def test_run_stopped_before_start_starts_nothing(stack, settings) -> None:
    stack.evaluator()
    stack.worker("viz", ["viz"])
    add_seed_trigger()
    client = taskq.Client()
    queued = taskq.submit(examples.train, params={"seconds": 0.1})
    assert client.stop_run(queued.uuid)
    stack.worker("train", ["train"])  # the message is delivered now, and refused
    probe = taskq.submit(examples.train, params={"seconds": 0.1})
    wait_for(lambda: clones_of(probe.uuid), 20)
    stopped = taskq.get_run(queued.uuid)
    assert stopped.status == Status.STOPPED and stopped.started_at is None
    assert clones_of(queued.uuid) == []
    assert queued.uuid not in marks("train")


def test_trigger_on_one_run_and_on_done(stack, settings) -> None:
    stack.standard()
    first = taskq.submit(examples.train, params={"seconds": 1.0, "epochs": 1})
    taskq.add_trigger(name="eval-on-done", job="evaluate",
                      event=taskq.EventTrigger(ref=f"runs.{first.uuid}",
                                               kinds=["run_status_done"]),
                      params={"uuid": "{{ trigger.run.uuid }}"})
    other = taskq.submit(examples.train, params={"seconds": 0.1, "epochs": 1})
    wait_for(lambda: taskq.list_runs(trigger="eval-on-done"), 30)
    wait_for(lambda: taskq.get_run(other.uuid).done, 30)
    evals = taskq.list_runs(trigger="eval-on-done")
    assert len(evals) == 1
    assert evals[0].params["uuid"] == first.uuid
    assert evals[0].trigger_context["event"]["kind"] == "run_status_succeeded"
