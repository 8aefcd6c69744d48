"""Every run status is reached from its real source, each transition one event, once: a
trigger on ``run_status_<status>`` of the job fires exactly once per run, and the run it
starts reads that event from ``current.trigger.event``. Before: ``compiled``, ``scheduled``,
``starting``, ``initializing``, ``processing``, ``warning``, ``resuming``,
``unschedulable`` and ``unknown`` were never written, so such triggers never fired.
Real Redis, SQLite and PostgreSQL, real Celery workers (and beat for the sweeps).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import taskq
from taskq.errors import ValidationError
from tests.conftest import Stack, env_for, race, run_cli, running_stack, wait_for
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def seen() -> list[dict[str, Any]]:
    """What each ``observe`` run read from ``current.trigger.event``."""
    marks = Path(os.environ["TASKQ_EXAMPLE_MARKS"])
    return [json.loads(p.read_text()) for p in sorted(marks.glob("observe.*"))]


def seen_for(uuid: str, status: str) -> list[dict[str, Any]]:
    return [s for s in seen() if s["uuid"] == uuid and s["status"] == status]


def watch(job: str, *statuses: str) -> None:
    """One trigger per status on ``jobs.<job>``, each starting ``observe``."""
    for status in statuses:
        taskq.add_trigger(name=f"on-{job}-{status}", job="observe",
                          event=taskq.EventTrigger(ref=f"jobs.{job}",
                                                   kinds=[f"run_status_{status}"]))


def statuses_of(uuid: str) -> list[str]:
    return [e["status"] for e in taskq.Client().rt.store.run_events(uuid) if e["status"]]


def assert_fired_once(uuid: str, *statuses: str, timeout: float = 90) -> None:
    for status in statuses:
        wait_for(lambda s=status: seen_for(uuid, s), timeout,
                 message=f"the trigger on run_status_{status} of {uuid}")
    for status in statuses:
        [one] = seen_for(uuid, status)
        assert one["kind"] == f"run_status_{status}"


def test_each_status_of_a_run_fires_its_trigger_once(stack: Stack) -> None:
    stack.standard()
    watch("phases", "compiled", "queued", "scheduled", "starting", "initializing",
          "running", "processing", "warning", "succeeded")
    now = taskq.submit(examples.phases, params={"warn": "disk almost full"})
    later = taskq.submit(examples.phases, countdown=2)
    assert later.status == "scheduled"

    assert_fired_once(now.uuid, "compiled", "queued", "starting", "initializing",
                      "running", "processing", "warning", "succeeded")
    assert_fired_once(later.uuid, "compiled", "scheduled", "starting", "initializing",
                      "running", "processing", "succeeded")
    assert statuses_of(now.uuid) == ["compiled", "queued", "starting", "initializing",
                                     "running", "processing", "warning", "succeeded"]
    assert statuses_of(later.uuid) == ["compiled", "scheduled", "starting", "initializing",
                                       "running", "processing", "succeeded"]
    [warned] = seen_for(now.uuid, "warning")
    assert (warned["previous"], warned["reason"]) == ("processing", "disk almost full")
    assert [s["previous"] for s in seen_for(later.uuid, "starting")] == ["scheduled"]
    assert not seen_for(now.uuid, "scheduled") and not seen_for(later.uuid, "queued")
    stack.stop()  # every firing settled: no late duplicate may follow
    assert len(seen()) == 8 + 7


def test_a_stopped_run_resumed_fires_resuming_once_and_runs_again(
        stack: Stack, settings: Any, tmp_path: Path) -> None:
    stack.standard()
    watch("train", "resuming", "stopped", "failed")
    hold = tmp_path / "release"
    run = taskq.submit(examples.train, params={"hold": str(hold), "epochs": 1,
                                               "seconds": 0.0})
    wait_for(lambda: taskq.get_run(run.uuid).status == "running", 60, message="running")
    assert taskq.Client().stop_run(run.uuid)
    wait_for(lambda: taskq.get_run(run.uuid).status == "stopped", 60, message="stopped")
    hold.write_text("go")

    resumed = run_cli("runs", "resume", run.uuid, env=env_for(settings))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    done = wait_for(lambda: (t := taskq.get_run(run.uuid)) and t.done and t, 90,
                    message="the resumed run finished")
    assert done.status == "succeeded" and done.incarnation == 1
    assert_fired_once(run.uuid, "stopped", "resuming")
    [again] = seen_for(run.uuid, "resuming")
    assert (again["previous"], again["incarnation"]) == ("stopped", 1)
    assert statuses_of(run.uuid)[-7:] == ["stopped", "resuming", "queued", "starting",
                                          "initializing", "running", "succeeded"]
    with pytest.raises(ValidationError, match="succeeded; only a stopped or failed"):
        taskq.Client().resume_run(run.uuid)

    # Resumes racing on a failed run: one applies, once.
    failed = taskq.submit(examples.train, params={"fail": True, "epochs": 1})
    wait_for(lambda: taskq.get_run(failed.uuid).status == "failed", 60, message="failed")
    results = race(lambda: taskq.Client().resume_run(failed.uuid))
    assert results.count(True) == 1, results
    wait_for(lambda: statuses_of(failed.uuid).count("failed") == 2, 60,
             message="the resumed run failed again")
    assert statuses_of(failed.uuid).count("resuming") == 1
    assert_fired_once(failed.uuid, "resuming")


@pytest.fixture
def sweeping(settings: Any, tmp_path: Path, request: pytest.FixtureRequest
             ) -> Iterator[Stack]:
    """A stack whose sweep runs every 2 s, judges a worker dead 4 s after its last beat
    and a run unschedulable after 2 s on a queue no live worker consumes."""
    from taskq.settings import configure

    s = configure(settings, worker_lost_after_seconds=8.0, unschedulable_after_seconds=2.0)
    yield from running_stack(s, tmp_path, request)


def test_a_run_on_a_queue_no_worker_consumes_is_unschedulable_once(sweeping: Stack) -> None:
    for p in (sweeping.evaluator(wait=False), sweeping.worker("viz", ["viz"], wait=False),
              sweeping.worker("train", ["train"], wait=False), sweeping.beat()):
        p.wait_ready(90)
    watch("train", "unschedulable")
    stranded = taskq.submit(examples.train, params={"epochs": 1, "seconds": 0.0},
                            queue="nobody-consumes-this")
    served = taskq.submit(examples.train, params={"epochs": 1, "seconds": 0.0})

    assert_fired_once(stranded.uuid, "unschedulable", timeout=120)
    [why] = seen_for(stranded.uuid, "unschedulable")
    assert why["previous"] == "queued"
    assert "queue 'nobody-consumes-this', which no live worker consumes" in why["reason"]
    assert taskq.get_run(served.uuid).status == "succeeded"
    time.sleep(6)  # three more sweeps: still one event
    assert statuses_of(stranded.uuid) == ["compiled", "queued", "unschedulable"]
    assert not seen_for(served.uuid, "unschedulable")


def test_a_run_whose_worker_vanished_is_unknown_then_failed(sweeping: Stack,
                                                           tmp_path: Path) -> None:
    for p in (sweeping.evaluator(wait=False), sweeping.worker("viz", ["viz"], wait=False),
              sweeping.beat()):
        p.wait_ready(90)
    doomed = sweeping.worker("train-1", ["train"])
    watch("train", "unknown", "failed")
    run = taskq.submit(examples.train, params={"hold": str(tmp_path / "never"), "epochs": 1,
                                               "seconds": 0.0})
    wait_for(lambda: taskq.get_run(run.uuid).status == "running", 60, message="running")
    doomed.kill(signal.SIGKILL)
    doomed.popen.wait(10)

    assert_fired_once(run.uuid, "unknown", "failed", timeout=180)
    assert statuses_of(run.uuid)[-3:] == ["running", "unknown", "failed"]
    [lost] = seen_for(run.uuid, "failed")
    assert lost["previous"] == "unknown" and lost["reason"].startswith("worker lost")
    assert seen_for(run.uuid, "unknown")[0]["previous"] == "running"
