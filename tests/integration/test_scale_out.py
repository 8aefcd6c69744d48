"""Two evaluators on the one stream: exactly once when one of them is SIGKILLed mid-batch
(a few hundred events, some appended twice), and an AND join whose inputs the two evaluate
fires once per round."""

from __future__ import annotations

import re
import signal
import time
from typing import Any

import pytest
from sqlalchemy import select

import taskq
from taskq import constants
from taskq.core.events import Event
from taskq.store.models import RunEvent
from tests.conftest import marks, wait_for
from tests.integration.test_exactly_once import drained

pytestmark = pytest.mark.integration

EVENTS = 300


def store() -> Any:
    return taskq.Client().rt.store


def all_firings(trigger: str) -> list[dict[str, Any]]:
    found = taskq.Client().get_trigger(trigger)
    assert found is not None
    return store().firings(found["id"], limit=10 * EVENTS)


def stored_events(ids: list[str]) -> list[Event]:
    with store().tx() as conn:
        bodies = conn.execute(select(RunEvent.event_id, RunEvent.body)
                              .where(RunEvent.event_id.in_(ids))).all()
    by_id = {row.event_id: Event.model_validate(row.body) for row in bodies}
    return [by_id[i] for i in ids]


def two_evaluators(stack: Any, r: Any, **first_env: str) -> tuple[Any, Any]:
    """Two workers on taskq.triggers with one evaluating loop each (a worker starts
    ``TASKQ_EVALUATORS`` loops and the slots bound them across workers: the first allows
    one, the second two, so the second's extra loop stands by), and a worker for the
    clones."""
    first = stack.evaluator("evaluator-1", TASKQ_EVALUATORS="1", **first_env)
    second = stack.evaluator("evaluator-2", wait=False, TASKQ_EVALUATORS="2")
    stack.worker("viz", ["viz"], concurrency=2, wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    wait_for(lambda: r.zcard(constants.EVALUATORS_LIVE) == 2, 20, message="two live loops")
    live = {int(m.decode().rsplit(":", 1)[1]) for m in r.zrange(constants.EVALUATORS_LIVE,
                                                                0, -1)}
    assert all(live & set(p.child_pids()) for p in (first, second)), "a loop in each"
    return first, second


def entries_evaluated(proc: Any) -> int:
    """What a warm-stopped worker's loops say they evaluated on their way out."""
    proc.stop()
    found = re.findall(r"evaluator loop \S+ stopped: (\d+) entries", proc.output())
    assert found, "the loops did not report on their way out"
    return sum(int(n) for n in found)


@pytest.mark.parametrize("point", ["before_record", "after_record"])
def test_two_evaluators_one_killed_mid_batch_fire_each_event_once(stack, settings, r,
                                                                  tmp_path, point) -> None:
    """Both evaluators take batches of a burst of 300 events, twenty of them appended twice.
    One is SIGKILLed inside a batch, before its transaction or right after it; the other
    claims what it left pending and goes on. Every event fires exactly once and each run
    executes once."""
    taskq.add_event_trigger(name="pings", job="noop", events=["ping"])
    first, second = two_evaluators(stack, r, TASKQ_CRASH_AT=point,
                                   TASKQ_CRASH_ONCE=str(tmp_path / "crashed"))
    bus = taskq.Client().rt.bus
    ids: list[str] = []
    for b in range(0, EVENTS, 25):
        ids += taskq.publish_events([{"name": "ping", "payload": {"i": i}}
                                     for i in range(b, b + 25)])
        if b % 75 == 0:  # the same entries again, while both evaluators read
            bus.append_many(stored_events(ids[b:b + 5]))
    wait_for(lambda: (tmp_path / "crashed").exists(), 30, message="the crash point")
    first.kill(signal.SIGKILL)
    first.popen.wait(10)

    wait_for(lambda: len(marks("noop")) >= EVENTS, 120, message=f"{EVENTS} noop runs")
    wait_for(lambda: drained(r), 30, message="stream drained")
    time.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
    firings = all_firings("pings")
    assert sorted(f["event_id"] for f in firings) == sorted(ids)
    assert {f["outcome"] for f in firings} == {"fired"}
    assert len(marks("noop")) == EVENTS and len(set(marks("noop"))) == EVENTS
    assert store().count("outbox_pending") == 0
    assert entries_evaluated(second) > 0


def test_and_join_fed_by_two_evaluators_fires_once_per_round(stack, settings, r) -> None:
    """Each round's two inputs (and a copy of each) are appended at once, so both
    evaluators, blocked on the group, arm the join concurrently: it fires once per round,
    with that round's two events."""
    rounds = 12
    taskq.add_event_trigger(name="pairs", job="noop", events=["left", "right"])
    first, second = two_evaluators(stack, r)
    bus = taskq.Client().rt.bus
    for k in range(rounds):
        ids = taskq.publish_events([{"name": "left", "payload": {"round": k}},
                                    {"name": "right", "payload": {"round": k}}])
        bus.append_many(stored_events(ids) * 2)
        wait_for(lambda k=k: len([f for f in all_firings("pairs")
                                  if f["outcome"] == "fired"]) == k + 1, 20,
                 message=f"round {k} fired")
    wait_for(lambda: len(marks("noop")) >= rounds, 60, message="the joined runs")
    wait_for(lambda: drained(r), 30, message="stream drained")
    time.sleep(1.0)
    assert len(all_firings("pairs")) == rounds
    runs = taskq.list_runs(trigger="pairs", limit=100)
    assert len(runs) == rounds and len(marks("noop")) == rounds
    for run in runs:
        assert len({e.fields["round"] for e in run.trigger.events}) == 1
    assert sorted(run.trigger.events[0].fields["round"] for run in runs) == list(range(rounds))
    assert entries_evaluated(first) > 0 and entries_evaluated(second) > 0
