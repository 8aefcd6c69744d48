"""Evaluation behaviour a user relies on: live trigger changes, namespaces, dead letters,
and the reconciler repairing events that never reached Redis."""

from __future__ import annotations

import json
import time

import pytest

import taskq
from taskq import constants
from taskq.core.statuses import Status
from taskq.runtime import Runtime
from taskq.worker.signals import record
from tests.conftest import wait_for
from tests.integration.test_exactly_once import drained
from tests.integration.test_seed_scenario import add_seed_trigger, clones_of
from workers import examples

pytestmark = pytest.mark.integration


def quick_train(client: object = taskq, **kw: object) -> taskq.RunRecord:
    return client.submit(examples.train,  # type: ignore[attr-defined]
                         params={"seconds": 0.05, "epochs": 1}, **kw)


def settle(r, run_uuid: str) -> None:
    """Wait until the run finished and every event so far was evaluated."""
    wait_for(lambda: taskq.get_run(run_uuid).done, 20)
    wait_for(lambda: drained(r), 20, message="stream drained")


def test_trigger_changes_take_effect_without_restart(stack, settings, r) -> None:
    stack.standard()
    before = quick_train()
    settle(r, before.uuid)
    add_seed_trigger()
    added = quick_train()
    wait_for(lambda: clones_of(added.uuid), 20)
    taskq.Client().disable_trigger("tb-on-running")
    disabled = quick_train()
    settle(r, disabled.uuid)
    taskq.Client().enable_trigger("tb-on-running")
    enabled = quick_train()
    wait_for(lambda: clones_of(enabled.uuid), 20)
    taskq.Client().delete_trigger("tb-on-running")
    deleted = quick_train()
    settle(r, deleted.uuid)
    time.sleep(0.3)
    assert clones_of(before.uuid) == [] and clones_of(disabled.uuid) == []
    assert [len(clones_of(u.uuid)) for u in (added, enabled)] == [1, 1]
    assert taskq.list_runs(job="tensorboard", limit=100).__len__() == 2
    assert taskq.get_run(deleted.uuid).status == Status.SUCCEEDED


def test_namespaces_isolate_and_route(stack, settings, r) -> None:
    stack.evaluator(wait=False)
    stack.worker("train", ["train", "team-a--train"], wait=False)
    stack.worker("viz-a", ["team-a--viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    # A client per namespace (each is bound to one); clones_of looks as an admin.
    team_a, team_b = taskq.Client(namespace="team-a"), taskq.Client(namespace="team-b")
    add_seed_trigger(name="tb-team-a", client=team_a, namespace="team-a")
    mine = quick_train(team_a, namespace="team-a")
    assert mine.namespace == "team-a" and mine.queue == "team-a--train"
    theirs = quick_train()
    b = quick_train(team_b, namespace="team-b")
    board = wait_for(lambda: next(iter(clones_of(mine.uuid, "tb-team-a")), None), 20)
    settle(r, theirs.uuid)
    assert board.namespace == "team-a" and board.queue == "team-a--viz"
    wait_for(lambda: team_a.get_run(board.uuid).status == Status.SUCCEEDED, 20)
    assert clones_of(theirs.uuid, "tb-team-a") == [] and clones_of(b.uuid, "tb-team-a") == []
    assert taskq.list_runs(namespace="default", job="tensorboard") == []


def test_malformed_entries_are_dead_lettered_and_never_block(stack, settings, r) -> None:
    stack.standard()
    add_seed_trigger()
    bad_kind = {"id": "x", "kind": "run_status_bogus", "ref": "jobs.train",
                "timestamp": "2026-01-01T00:00:00Z"}
    r.xadd(constants.EVENTS_STREAM, {"event": "{not json"})
    r.xadd(constants.EVENTS_STREAM, {"something": "else"})
    r.xadd(constants.EVENTS_STREAM, {"event": json.dumps(bad_kind)})
    good = quick_train()
    wait_for(lambda: clones_of(good.uuid), 20)
    wait_for(lambda: drained(r), 20)
    dead = taskq.Client().rt.bus.dead_letters()
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == 3
    assert any("not valid JSON" in x for x in reasons)
    assert any("no 'event' field" in x for x in reasons)
    assert any("'kind'" in x and "run_status_bogus" in x for x in reasons)


def test_reconciler_reemits_what_redis_missed(stack, settings, r) -> None:
    """A status change committed while Redis was unreachable reaches the evaluator through
    the beat-driven reconciler, once."""
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    add_seed_trigger()
    client = taskq.Client()
    run_uuid = "0b6f3c1e-8d7a-4e9b-9c1d-2f3a4b5c6d7e"
    client.rt.store.create_run(uuid=run_uuid, job="train", namespace="default", project=None,
                               queue="train", agent="default", task_name="taskq.job.train",
                               params={})
    offline = Runtime(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    assert record(run_uuid, Status.RUNNING, rt=offline)  # committed; the XADD failed
    assert taskq.get_run(run_uuid).status == Status.RUNNING
    time.sleep(1.0)
    assert clones_of(run_uuid) == []  # nothing in the stream, nothing fired

    stack.beat()
    board = wait_for(lambda: next(iter(clones_of(run_uuid)), None), 20)
    wait_for(lambda: taskq.get_run(board.uuid).done, 20)
    # Later passes confirm and never re-emit again.
    from taskq.services.reconciler import reconcile

    time.sleep(1.5)
    again = wait_for(lambda: reconcile(client.rt), 10)
    assert again.reemitted == 0
    assert len(clones_of(run_uuid)) == 1
    assert client.rt.store.oldest_unconfirmed_id() is None or again.watermark > 0


def test_a_corrupt_trigger_row_does_not_stop_the_others(stack, settings, r) -> None:
    """A stored spec that no longer validates is skipped with a log line; every other
    trigger keeps firing."""
    from sqlalchemy import update

    from taskq.store.models import Trigger

    stack.standard()
    broken = taskq.add_trigger(name="broken", job="evaluate",
                               event=taskq.EventTrigger(ref="jobs.train",
                                                        kinds=["run_status_running"]))
    with taskq.Client().rt.store.tx() as conn:
        conn.execute(update(Trigger).where(Trigger.id == broken["id"])
                     .values(spec={"ref": "nonsense", "kinds": 7}))
    add_seed_trigger()
    run = quick_train()
    wait_for(lambda: clones_of(run.uuid), 20)
    assert taskq.list_runs(trigger="broken") == []
