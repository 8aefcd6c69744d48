"""Runs that need approval: ``approval=True`` on a job or a trigger keeps each run
``created`` and unsent while workers run, until ``taskq runs approve`` queues it (once,
however many approve at the same moment) or ``taskq runs invalidate`` skips it, each
decision a ``run_approved_actor`` / ``run_invalidated_actor`` event that triggers hear.
Before: both kinds were refused as "not emitted yet" and nothing could hold a run back.
Real Redis, SQLite and PostgreSQL, real Celery workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import taskq
from taskq.errors import ValidationError
from taskq.services.outbox import relay_outbox
from tests.conftest import Stack, env_for, marks, race, run_cli, wait_for
from tests.integration.test_run_statuses import seen, statuses_of, watch
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def on_kind(job: str, kind: str) -> None:
    taskq.add_trigger(name=f"on-{job}-{kind}", job="observe",
                      event=taskq.EventTrigger(ref=f"jobs.{job}", kinds=[kind]))


def seen_kind(uuid: str, kind: str) -> list[dict[str, Any]]:
    return [s for s in seen() if s["uuid"] == uuid and s["kind"] == kind]


def fired_once(uuid: str, *kinds: str) -> None:
    """A trigger on each kind of ``uuid``'s events started ``observe`` exactly once (a
    status is spelt ``run_status_<status>``)."""
    for kind in kinds:
        wait_for(lambda k=kind: seen_kind(uuid, k), 90, message=f"the trigger on {kind}")
    for kind in kinds:
        assert len(seen_kind(uuid, kind)) == 1, (kind, seen_kind(uuid, kind))


def kinds_of(uuid: str, kind: str) -> int:
    """How many events of ``kind`` the store holds for run ``uuid``."""
    events = taskq.Client().rt.store.stored_events(namespaces=["default"], limit=1000)
    return sum(1 for _, e, _ in events if e.kind == kind and e.payload.get("uuid") == uuid)


def still_waiting(uuid: str) -> None:
    """One relay pass, then a run submitted behind it on the same queue finishes: had the
    waiting run been sent, the train worker would have run it first."""
    relay_outbox(taskq.Client().rt)
    behind = taskq.submit(examples.train, params={"epochs": 1, "seconds": 0.0})
    wait_for(lambda: taskq.get_run(behind.uuid).status == "succeeded", 90,
             message="the run behind it")
    run = taskq.get_run(uuid)
    assert (run.status, run.approval) == ("created", "waiting")
    assert taskq.Client().rt.store.outbox_item(uuid) is None
    assert uuid not in marks("gated")


def test_a_job_needing_approval_waits_then_runs_once_when_approved(
        stack: Stack, settings: Any) -> None:
    stack.standard()
    watch("gated", "created", "queued", "succeeded")
    on_kind("gated", "run_approved_actor")
    run = taskq.submit(examples.gated, params={"label": "v1"})
    assert (run.status, run.approval) == ("created", "waiting")
    fired_once(run.uuid, "run_status_created")
    still_waiting(run.uuid)

    with pytest.raises(ValidationError, match=f"uuid: no run '{run.uuid}'"):
        taskq.Client(namespace="team-a").approve_run(run.uuid)
    approved = run_cli("runs", "approve", run.uuid, "--actor", "alice",
                       env=env_for(settings))
    assert approved.returncode == 0, approved.stderr
    assert "approved" in approved.stdout
    done = wait_for(lambda: (t := taskq.get_run(run.uuid)) and t.done and t, 90,
                    message="the approved run finished")
    assert (done.status, done.approval) == ("succeeded", "approved")
    assert statuses_of(run.uuid) == ["created", "compiled", "queued", "starting",
                                     "initializing", "running", "succeeded"]
    fired_once(run.uuid, "run_status_created", "run_status_queued", "run_status_succeeded",
               "run_approved_actor")
    [heard] = seen_kind(run.uuid, "run_approved_actor")
    assert (heard["actor"], heard["status"]) == ("alice", "created")
    assert marks("gated").count(run.uuid) == 1
    with pytest.raises(ValidationError, match=f"uuid: run {run.uuid} is succeeded: it was "
                                              "approved already"):
        taskq.Client().approve_run(run.uuid)

    # Approvals racing on one waiting run (a countdown: approved, it is scheduled): one
    # applies, one event, one message, one execution.
    later = taskq.submit(examples.gated, params={"label": "v2"}, countdown=1)
    assert later.status == "created"
    results = race(lambda: taskq.Client().approve_run(later.uuid))
    assert results.count(True) == 1, results
    wait_for(lambda: taskq.get_run(later.uuid).status == "succeeded", 90,
             message="the raced run finished")
    assert statuses_of(later.uuid)[:3] == ["created", "compiled", "scheduled"]
    assert kinds_of(later.uuid, "run_approved_actor") == 1
    fired_once(later.uuid, "run_status_succeeded", "run_approved_actor")
    [heard] = seen_kind(later.uuid, "run_approved_actor")
    assert heard["actor"]  # this process's user
    stack.stop()  # every firing settled: no late duplicate may follow
    assert marks("gated").count(later.uuid) == 1
    assert len(seen_kind(later.uuid, "run_approved_actor")) == 1

    # A run that never needed approval: refused naming it and its status.
    plain = taskq.submit(examples.noop)
    with pytest.raises(ValidationError, match=f"uuid: run {plain.uuid} is queued and does "
                                              "not need approval"):
        taskq.Client().approve_run(plain.uuid)


def test_an_invalidated_run_never_runs_and_fires_its_event_once(
        stack: Stack, settings: Any) -> None:
    stack.standard()
    watch("gated", "skipped")
    on_kind("gated", "run_invalidated_actor")
    run = taskq.submit(examples.gated)
    invalidated = run_cli("runs", "invalidate", run.uuid, "--reason", "wrong dataset",
                          env=env_for(settings))
    assert invalidated.returncode == 0, invalidated.stderr
    assert "invalidated" in invalidated.stdout
    fired_once(run.uuid, "run_status_skipped", "run_invalidated_actor")
    done = taskq.get_run(run.uuid)
    assert (done.status, done.approval, done.reason) == ("skipped", "invalidated",
                                                        "wrong dataset")
    assert statuses_of(run.uuid) == ["created", "skipped"]
    relay_outbox(taskq.Client().rt)  # nothing left to send: its outbox row is gone
    assert taskq.Client().rt.store.outbox_item(run.uuid) is None
    refused = run_cli("runs", "approve", run.uuid, env=env_for(settings))
    assert refused.returncode != 0
    assert f"run {run.uuid} is skipped: it was invalidated" in refused.stdout + refused.stderr
    stack.stop()
    [heard] = seen_kind(run.uuid, "run_invalidated_actor")
    assert (heard["reason"], heard["status"]) == ("wrong dataset", "created")
    assert heard["actor"]
    assert run.uuid not in marks("gated")
    assert kinds_of(run.uuid, "run_invalidated_actor") == 1


def test_a_trigger_with_approval_holds_each_run_it_fires(
        stack: Stack, settings: Any, tmp_path: Path) -> None:
    stack.standard()
    taskq.add_trigger(name="gate-noop", job="noop", approval=True,
                      event=taskq.EventTrigger(ref="jobs.train",
                                               kinds=["run_status_succeeded"]))
    upstream = taskq.submit(examples.train, params={"epochs": 1, "seconds": 0.0})
    [clone] = wait_for(lambda: taskq.list_runs(trigger="gate-noop"), 90,
                       message="the trigger's clone")
    assert (clone.status, clone.approval) == ("created", "waiting")
    assert clone.trigger.run.uuid == upstream.uuid
    relay_outbox(taskq.Client().rt)
    assert taskq.Client().rt.store.outbox_item(clone.uuid) is None

    # Approved, then the process dies before sending: the relay sends it, once.
    rt = taskq.Client().rt
    assert rt.store.decide_approval(clone.uuid, approve=True, actor="bob", reason=None)
    assert taskq.get_run(clone.uuid).status == "queued"
    wait_for(lambda: relay_outbox(rt) or taskq.get_run(clone.uuid).status != "queued", 30,
             message="the relay sent the approved clone")
    wait_for(lambda: taskq.get_run(clone.uuid).status == "succeeded", 90,
             message="the approved clone ran")
    assert marks("noop").count(clone.uuid) == 1

    # The same option from YAML: stored, and applied twice changes nothing.
    path = tmp_path / "gate.yaml"
    path.write_text("triggers:\n  - name: gate-yaml\n    job: noop\n    approval: true\n"
                    "    event: {ref: jobs.phases, kinds: [run_status_succeeded]}\n")
    for expected in ("added", "unchanged"):
        applied = run_cli("apply", "-f", str(path), env=env_for(settings))
        assert applied.returncode == 0, applied.stderr
        assert expected in applied.stdout
    assert taskq.Client().get_trigger("gate-yaml")["spec"]["approval"] is True
    added = run_cli("triggers", "add", "gate-cli", "--ref", "jobs.phases", "--kind",
                    "run_status_failed", "--job", "noop", "--approval", env=env_for(settings))
    assert added.returncode == 0, added.stderr
    assert taskq.Client().get_trigger("gate-cli")["spec"]["approval"] is True
    upstream = taskq.submit(examples.phases)
    [clone] = wait_for(lambda: taskq.list_runs(trigger="gate-yaml"), 90,
                       message="the YAML trigger's clone")
    assert (clone.status, clone.approval) == ("created", "waiting")
    stack.stop()
    assert taskq.get_run(clone.uuid).status == "created"
