"""A whole worker SIGKILLed (main process and pool children, as the OOM killer or a lost
host does) with a run it was running and a clone it had prefetched. Before: both stayed as
they were (``running``, ``queued``) until the broker's visibility timeout, an hour by
default. Now each is resolved within ``worker_lost_after_seconds``: the running one failed
once ("worker lost", its failure trigger fires once), the prefetched one run once elsewhere.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import taskq
from taskq.core.statuses import Status
from tests.conftest import Stack, marks, running_stack, wait_for
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

#: Generous: the bound under test is 20 s; a loaded machine may take several times that.
DEADLINE = 240.0


@pytest.fixture
def dying(settings: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack whose workers are judged dead 20 s after their last heartbeat at the most."""
    from taskq.settings import configure

    s = configure(settings, worker_lost_after_seconds=20.0)
    yield from running_stack(s, tmp_path, request)


def unacked(r: Any) -> bytes:
    """The broker's unacknowledged messages, raw (a prefetched one is there)."""
    return b"".join(r.hgetall("unacked").values())


def test_whole_worker_killed_holding_a_running_and_a_prefetched_run(
        dying: Stack, r: Any, tmp_path: Path) -> None:
    kill_whole_worker(dying, tmp_path, lambda uuid: uuid.encode() in unacked(r))


def kill_whole_worker(dying: Stack, tmp_path: Path, prefetched_by_it: Callable[[str], bool],
                      *, republished: bool = True) -> None:
    """The scenario, for any broker; ``prefetched_by_it(uuid)`` says the worker took it.
    ``republished``: the broker keeps a dead consumer's messages (Redis), so the sweep
    sends the prefetched run again as a new incarnation; AMQP hands them back itself."""
    for p in (dying.evaluator(wait=False), dying.worker("viz", ["viz"], wait=False),
              dying.beat()):
        p.wait_ready(90)
    # One pool slot, two messages: the second one waits in the worker, prefetched.
    doomed = dying.worker("train-1", ["train"], extra_args=("--prefetch-multiplier", "2"))
    taskq.add_trigger(name="eval-on-failed", job="evaluate",
                      event=taskq.EventTrigger(ref="jobs.train", kinds=["run_status_failed"]),
                      params={"uuid": "{{ trigger.run.uuid }}"})
    hold = tmp_path / "never"  # the running run holds until killed
    running = taskq.submit(examples.train, params={"hold": str(hold), "epochs": 1,
                                                   "seconds": 0.0})
    wait_for(lambda: marks("train") == [running.uuid], 60, message="the first run running")
    prefetched = taskq.submit(examples.train, params={"epochs": 1, "seconds": 0.0})
    wait_for(lambda: prefetched_by_it(prefetched.uuid), 60,
             message="the second run prefetched by the same worker")
    assert taskq.get_run(prefetched.uuid).status == Status.QUEUED

    doomed.kill(signal.SIGKILL)  # the process group: the worker and its pool child
    doomed.popen.wait(10)
    killed = time.monotonic()
    # Restarted under the same name (a container restarted in place): its runs are still
    # those of a dead worker.
    dying.worker("train-1", ["train"])

    failed = wait_for(lambda: (t := taskq.get_run(running.uuid)) and t.done and t, DEADLINE,
                      interval=0.5, message="the running run resolved")
    print(f"\nrunning run resolved {time.monotonic() - killed:.1f} s after the kill")
    done = wait_for(lambda: (t := taskq.get_run(prefetched.uuid)) and t.done and t, DEADLINE,
                    interval=0.5, message="the prefetched run resolved")
    print(f"prefetched run resolved {time.monotonic() - killed:.1f} s after the kill")
    wait_for(lambda: taskq.list_runs(trigger="eval-on-failed"), DEADLINE, interval=0.5,
             message="the failure trigger fired")
    time.sleep(3.0)  # room for a duplicate start or firing to show up, if there were one

    assert failed.status == Status.FAILED
    assert "worker lost" in (failed.reason or "")
    assert taskq.get_run(running.uuid).status == Status.FAILED
    assert done.status == Status.SUCCEEDED
    if republished:
        assert done.incarnation >= 1  # republished under a new start claim
    assert marks("train") == sorted([running.uuid, prefetched.uuid])  # each started once
    assert len(taskq.list_runs(trigger="eval-on-failed")) == 1
    store = taskq.Client().rt.store
    for run in (running, prefetched):
        statuses = [e["status"] for e in store.run_events(run.uuid)]
        assert statuses.count("running") == 1, (run.uuid, statuses)
        assert statuses.count(failed.status.value if run is running else "succeeded") == 1
