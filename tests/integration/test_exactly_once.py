"""Exactly once, nothing lost: duplicate appends, evaluators SIGKILLed mid-dispatch, two
evaluators on one stream, and a job worker's child killed mid-run."""

from __future__ import annotations

import os
import signal
import time

import pytest

import taskq
from taskq import constants
from taskq.core.events import Event
from taskq.core.statuses import Status
from tests.conftest import marks, wait_for
from tests.integration.test_seed_scenario import add_seed_trigger, clones_of
from workers import examples

pytestmark = pytest.mark.integration


def store():
    return taskq.Client().rt.store


def running_event(run_uuid: str) -> Event:
    from sqlalchemy import select

    from taskq.store.models import RunEvent

    with store().tx() as conn:
        body = conn.execute(select(RunEvent.body).where(
            RunEvent.run_uuid == run_uuid, RunEvent.status == "running")).scalar_one()
    return Event.model_validate(body)


def drained(r) -> bool:
    """Every entry appended so far was delivered to an evaluator and acknowledged."""
    last = r.xinfo_stream(constants.EVENTS_STREAM)["last-generated-id"]
    for g in r.xinfo_groups(constants.EVENTS_STREAM):
        if g["name"] in (constants.EVALUATOR_GROUP, constants.EVALUATOR_GROUP.encode()):
            return g["pending"] == 0 and g["last-delivered-id"] == last
    return False


def firings_of(trigger: str) -> list[dict]:
    return taskq.Client().firings(trigger)


def test_same_event_appended_twice_fires_once(stack, settings, r) -> None:
    stack.standard()
    add_seed_trigger()
    train = taskq.submit(examples.train, params={"seconds": 0.2, "epochs": 1})
    wait_for(lambda: clones_of(train.uuid), 20)
    event = running_event(train.uuid)
    bus = taskq.Client().rt.bus
    bus.append(event)
    bus.append(event)
    wait_for(lambda: drained(r), 20, message="stream drained")
    # The clone's first line may come after the stream drained (its worker's first claim
    # on a loaded machine); wait for it, then give a duplicate time to show.
    wait_for(lambda: marks("tensorboard"), 30, message="tensorboard's first line")
    time.sleep(0.5)
    assert len(clones_of(train.uuid)) == 1
    assert len([f for f in firings_of("tb-on-running") if f["event_id"] == event.id]) == 1
    assert len(marks("tensorboard")) == 1


@pytest.mark.parametrize("point", ["after_record", "after_publish"])
def test_evaluator_killed_mid_dispatch(stack, settings, r, tmp_path, point) -> None:
    """SIGKILL between committing the firing and publishing (or acking): the restarted
    evaluator reclaims the entry and the run is created, published and executed once."""
    first = stack.evaluator("evaluator-1", TASKQ_CRASH_AT=point,
                            TASKQ_CRASH_ONCE=str(tmp_path / "crashed"))
    stack.worker("train", ["train"], wait=False)
    stack.worker("viz", ["viz"])
    add_seed_trigger()
    train = taskq.submit(examples.train, params={"seconds": 0.3, "epochs": 1})
    wait_for(lambda: (tmp_path / "crashed").exists(), 20, message="the crash point")
    first.kill(signal.SIGKILL)  # and the rest of that worker: the node is gone
    first.popen.wait(10)
    firing = wait_for(lambda: firings_of("tb-on-running"), 5)
    assert len(firing) == 1
    if point == "after_record":
        assert store().count("outbox_pending") == 1

    stack.evaluator("evaluator-2")
    board = wait_for(lambda: next(iter(clones_of(train.uuid)), None), 30)
    wait_for(lambda: taskq.get_run(board.uuid).done, 20)
    wait_for(lambda: drained(r), 20, message="stream drained")
    time.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
    assert len(clones_of(train.uuid)) == 1
    assert len(firings_of("tb-on-running")) == 1
    assert taskq.get_run(board.uuid).status == Status.SUCCEEDED
    assert taskq.get_run(board.uuid).attempts == 1
    assert marks("tensorboard") == [board.uuid]
    assert store().count("outbox_pending") == 0


def stored_event(event_id: str) -> Event:
    from sqlalchemy import select

    from taskq.store.models import RunEvent

    with store().tx() as conn:
        body = conn.execute(select(RunEvent.body).where(
            RunEvent.event_id == event_id)).scalar_one()
    return Event.model_validate(body)


@pytest.mark.parametrize("point", ["before_record", "after_record"])
def test_evaluator_killed_mid_batch_fires_each_event_once(stack, settings, r, tmp_path,
                                                          point) -> None:
    """Forty events wait in the stream (five of them twice) when the evaluator starts, so
    it reads them as one batch, whose firings commit in one transaction. SIGKILLed before
    that transaction (nothing recorded) or right after it (everything recorded, nothing
    published or acknowledged), the restarted evaluator fires each event exactly once, and
    the copies inside the batch fire nothing more."""
    taskq.add_event_trigger(name="pings", job="noop", events=["ping"])
    ids = [taskq.publish_event("ping", {"i": i}) for i in range(40)]
    bus = taskq.Client().rt.bus
    bus.append_many([stored_event(i) for i in ids[:5]])
    first = stack.evaluator("evaluator-1", TASKQ_CRASH_AT=point,
                            TASKQ_CRASH_ONCE=str(tmp_path / "crashed"))
    wait_for(lambda: (tmp_path / "crashed").exists(), 30, message="the crash point")
    first.kill(signal.SIGKILL)
    first.popen.wait(10)
    recorded = len(firings_of("pings"))
    assert recorded == (0 if point == "before_record" else 40)

    stack.evaluator("evaluator-2")
    stack.worker("viz", ["viz"], concurrency=2)
    wait_for(lambda: len(marks("noop")) >= 40, 60, message="forty noop runs")
    wait_for(lambda: drained(r), 30, message="stream drained")
    time.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
    firings = firings_of("pings")
    assert sorted(f["event_id"] for f in firings) == sorted(ids)
    assert {f["outcome"] for f in firings} == {"fired"}
    assert len(marks("noop")) == 40 and len(set(marks("noop"))) == 40
    assert store().count("outbox_pending") == 0


def test_two_evaluators_one_stream(stack, settings, r) -> None:
    stack.evaluator("evaluator-1", wait=False, TASKQ_EVALUATORS="2")
    stack.evaluator("evaluator-2", wait=False, TASKQ_EVALUATORS="2")
    stack.worker("train", ["train"], concurrency=2, wait=False)
    stack.worker("viz", ["viz"], concurrency=2, wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    wait_for(lambda: r.zcard(constants.EVALUATORS_LIVE) == 2, 20, message="two live loops")
    add_seed_trigger()
    runs = [taskq.submit(examples.train, params={"seconds": 0.05, "epochs": 1})
            for _ in range(8)]
    for run in runs:
        wait_for(lambda run=run: clones_of(run.uuid), 30)
    # The same events again, all at once: both evaluators race on them.
    bus = taskq.Client().rt.bus
    bus.append_many([running_event(run.uuid) for run in runs] * 2)
    wait_for(lambda: drained(r), 20, message="stream drained")
    wait_for(lambda: all(b.done for b in taskq.list_runs(job="tensorboard", limit=100)), 30)
    for run in runs:
        assert len(clones_of(run.uuid)) == 1
    assert len(marks("tensorboard")) == 8
    consumers = {c["name"] for c in r.xinfo_consumers(constants.EVENTS_STREAM,
                                                       constants.EVALUATOR_GROUP)}
    assert len(consumers) >= 2


def test_job_worker_child_killed_mid_run(stack, settings) -> None:
    """The child dies (OOM-style SIGKILL): the run is failed by the MainProcess signal, a
    trigger on failure fires once, and the redelivered message does not run it again."""
    stack.evaluator(wait=False)
    train_worker = stack.worker("train", ["train"], wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_trigger(name="eval-on-failed", job="evaluate",
                      event=taskq.EventTrigger(ref="jobs.train", kinds=["run_status_failed"]),
                      params={"uuid": "{{ trigger.run.uuid }}"})
    train = taskq.submit(examples.train, params={"seconds": 20, "epochs": 2})
    wait_for(lambda: taskq.get_run(train.uuid).status == Status.RUNNING, 20)
    children = wait_for(train_worker.child_pids, 5)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    failed = wait_for(lambda: (t := taskq.get_run(train.uuid)) and t.done and t, 30)
    assert failed.status == Status.FAILED
    assert "WorkerLost" in (failed.reason or "")
    wait_for(lambda: taskq.list_runs(trigger="eval-on-failed"), 20)
    time.sleep(2.0)  # the requeued message is delivered again and must be refused
    assert marks("train") == [train.uuid]
    assert len(taskq.list_runs(trigger="eval-on-failed")) == 1
    assert taskq.get_run(train.uuid).status == Status.FAILED


def test_whole_worker_killed_run_fails_once_not_stuck(stack, settings) -> None:
    """The whole worker (MainProcess too) is SIGKILLed mid-run: no signal fires. When the
    broker redelivers the message after its visibility timeout, the new worker refuses to
    start the run again and records it failed, so triggers on failure fire once."""
    fast = {"TASKQ_BROKER_VISIBILITY_TIMEOUT": "2"}
    stack.evaluator(wait=False)
    first = stack.worker("train-1", ["train"], wait=False, **fast)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_trigger(name="eval-on-failed", job="evaluate",
                      event=taskq.EventTrigger(ref="jobs.train", kinds=["run_status_failed"]),
                      params={"uuid": "{{ trigger.run.uuid }}"})
    train = taskq.submit(examples.train, params={"seconds": 30, "epochs": 3})
    wait_for(lambda: taskq.get_run(train.uuid).status == Status.RUNNING, 20)
    wait_for(lambda: marks("train") == [train.uuid], 20)  # its body is running, not just claimed
    first.kill(signal.SIGKILL)
    first.popen.wait(10)
    time.sleep(3)  # past the visibility timeout
    stack.worker("train-2", ["train"], **fast)
    failed = wait_for(lambda: (t := taskq.get_run(train.uuid)) and t.done and t, 30)
    assert failed.status == Status.FAILED and "worker lost" in (failed.reason or "")
    wait_for(lambda: taskq.list_runs(trigger="eval-on-failed"), 20)
    time.sleep(1.0)
    assert marks("train") == [train.uuid]  # never started a second time
    assert len(taskq.list_runs(trigger="eval-on-failed")) == 1
