"""One worker for every queue: the evaluator must never take a pool slot from the jobs.

`celery -A taskq.app worker -Q train,viz,taskq.triggers,default -c 2` used to run the
evaluator loop as a task holding one of the two slots for a whole slice, `train` the other,
so the `tensorboard` cloned on train's RUNNING could start only after train finished. Here
train holds its slot until the test has seen tensorboard running, so the test fails (at its
deadline) unless tensorboard gets a slot while train still runs.
"""

from __future__ import annotations

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


def test_one_worker_starts_tensorboard_while_train_runs(stack, settings,
                                                        tmp_path: Path) -> None:
    stack.worker("one", ONE_WORKER_QUEUES, concurrency=2,
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
