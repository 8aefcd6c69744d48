"""One worker for every queue: the evaluator must never take a pool slot from the jobs.

`celery -A taskq.app worker -Q train,viz,taskq.triggers,default -c 2` used to run the
evaluator loop as a task holding one of the two slots for a whole slice, `train` the other,
so the `tensorboard` cloned on train's RUNNING could start only after train finished. Here
train holds its slot until the test has seen tensorboard running, so the test fails (at its
deadline) unless tensorboard gets a slot while train still runs.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

import taskq
from taskq import constants
from taskq.core.statuses import Status
from tests.conftest import marks, wait_for
from tests.integration.test_seed_scenario import add_seed_trigger, clones_of
from workers import examples

pytestmark = pytest.mark.integration

ONE_WORKER_QUEUES = ["train", "viz", constants.TRIGGERS_QUEUE, "default"]
#: Far beyond the deadline below (the default slice is 10 s).
SLICE_SECONDS = 600


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_one_worker_starts_tensorboard_while_train_runs(stack, settings, tmp_path: Path,
                                                        pool: str) -> None:
    stack.worker("one", ONE_WORKER_QUEUES, concurrency=2, pool=pool,
                 TASKQ_EVALUATOR_SLICE_SECONDS=str(SLICE_SECONDS))
    stack.beat()  # the production shape: reconcile, relay and polling tasks share the slots
    add_seed_trigger()
    release = tmp_path / "release-train"
    train = taskq.submit(examples.train, params={"epochs": 1, "seconds": 0.1,
                                                 "hold": str(release)})
    try:
        board = wait_for(lambda: next(iter(clones_of(train.uuid)), None), 60,
                         message="tensorboard cloned")
        # Generous: the old evaluator task would let it in only after train ends, never.
        wait_for(lambda: board.uuid in marks("tensorboard"), 120,
                 message="tensorboard's first line while train holds its slot")
        held = taskq.get_run(train.uuid)
        assert held.status == Status.RUNNING and not held.finished_at
    finally:
        release.touch()
    board = wait_for(lambda: (b := taskq.get_run(board.uuid)) and b.done and b, 60,
                     message="tensorboard to finish")
    train = wait_for(lambda: (t := taskq.get_run(train.uuid)) and t.done and t, 60,
                     message="train to finish")
    assert board.status == Status.SUCCEEDED and train.status == Status.SUCCEEDED
    assert board.started_at < train.finished_at
    assert board.params["uuid"] == train.uuid and board.queue == "viz"
    assert len(clones_of(train.uuid)) == 1
    assert marks("tensorboard") == [board.uuid]


def live_loops(r) -> list[str]:
    return [m.decode() for m in r.zrange(constants.EVALUATORS_LIVE, 0, -1)]


def test_warm_shutdown_hands_the_loop_over(stack, settings, r) -> None:
    """TASKQ_EVALUATORS=1 and two evaluator workers: the second one's loop stands by; a
    warm shutdown of the first stops its loop, which leaves the slot, and the second takes
    over and fires."""
    first = stack.evaluator("evaluator-1", wait=False)
    job_workers = [stack.worker("train", ["train"], wait=False),
                   stack.worker("viz", ["viz"], wait=False)]
    for p in stack.procs:
        p.wait_ready(90)
    owner = wait_for(lambda: live_loops(r), 30, message="one live loop")
    # Only a worker consuming taskq.triggers runs loops.
    assert all("evaluator loop" not in w.output() for w in job_workers)
    second = stack.evaluator("evaluator-2")
    wait_for(lambda: "evaluator loop" in second.output() and "started" in second.output(),
             30, message="the second worker's loop")
    assert live_loops(r) == owner  # one slot, taken: the second loop stands by

    first.stop()  # SIGTERM: a warm shutdown
    assert not first.alive()
    assert f"evaluator loop {owner[0]} stopped" in first.output()
    taken = wait_for(lambda: (m := live_loops(r)) and m != owner and m, 30,
                     message="the standing-by loop to take the slot")
    assert len(taken) == 1

    add_seed_trigger()
    train = taskq.submit(examples.train, params={"seconds": 0.2, "epochs": 1})
    board = wait_for(lambda: next(iter(clones_of(train.uuid)), None), 30)
    wait_for(lambda: (b := taskq.get_run(board.uuid)) and b.done, 30)
    assert len(clones_of(train.uuid)) == 1
    assert taskq.get_run(board.uuid).status == Status.SUCCEEDED


def test_a_killed_loop_is_started_again(stack, settings, r) -> None:
    """The loop process dies (OOM-style SIGKILL) while its worker lives: the worker starts
    another, which takes the slot once the dead loop's heartbeat is stale, and fires."""
    worker = stack.worker("one", ONE_WORKER_QUEUES, concurrency=2)
    found = wait_for(lambda: re.search(r"beside the pool \(pids (\d+)\)", worker.output()), 30,
                     message="the loop's pid in the worker's log")
    dead = int(found.group(1))
    wait_for(lambda: live_loops(r), 30, message="the loop to take its slot")
    os.kill(dead, signal.SIGKILL)
    wait_for(lambda: f"evaluator loop {dead} exited" in worker.output(), 30,
             message="the worker to see the loop die")
    add_seed_trigger()
    train = taskq.submit(examples.train, params={"seconds": 0.2, "epochs": 1})
    board = wait_for(lambda: next(iter(clones_of(train.uuid)), None), 60,
                     message="tensorboard cloned by the new loop")
    wait_for(lambda: (b := taskq.get_run(board.uuid)) and b.done, 30)
    assert len(clones_of(train.uuid)) == 1
    assert all(not m.endswith(f":{dead}") for m in live_loops(r))
    assert worker.alive()


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for a reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_loop_stops_when_its_worker_is_killed(stack, settings, r) -> None:
    """The worker's main process is SIGKILLed alone (no shutdown ran): its loop stops itself
    instead of evaluating on without a worker."""
    worker = stack.worker("one", ONE_WORKER_QUEUES, concurrency=2)
    found = wait_for(lambda: re.search(r"beside the pool \(pids (\d+)\)", worker.output()), 30,
                     message="the loop's pid in the worker's log")
    loop = int(found.group(1))
    wait_for(lambda: live_loops(r), 30, message="the loop to take its slot")
    assert _running(loop)
    os.kill(worker.popen.pid, signal.SIGKILL)
    worker.popen.wait(10)
    wait_for(lambda: not _running(loop), 30, message="the orphaned loop to stop")
