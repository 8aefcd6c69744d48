"""Approval through taskq.testing's ports: a waiting run (a job's or a trigger's approval)
is committed with its outbox row held, so neither the relay nor a second evaluation sends
it; one decision applies, its events in order; an invalidated run can never be sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq import constants
from taskq.celery.jobs import declare
from taskq.core.statuses import Status
from taskq.errors import JobError
from taskq.services.approvals import decide
from taskq.services.outbox import relay_outbox
from taskq.services.recording import append_quietly
from taskq.testing import TestContext, make_context
from tests.unit.test_services import drain, sent_uuids, start_run, started


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path, relay_grace_seconds=0)
    yield context
    context.close()


def waiting_run(ctx: TestContext, eta: bool = False) -> str:
    run = str(uuid.uuid4())
    events = ctx.store.create_run(uuid=run, job="train", namespace="default", project=None,
                                  queue="train", agent="default",
                                  task_name=constants.job_task_name("train"), params={},
                                  approval=True, eta=ctx.store.recent_before(1) if eta else None)
    append_quietly(ctx.bus, events)
    assert [e.kind for e in events] == ["run_status_created"]
    return run


def test_a_waiting_run_is_never_sent_until_approved_then_once(ctx: TestContext) -> None:
    run = waiting_run(ctx)
    assert relay_outbox(ctx) == 0 and ctx.store.outbox_item(run) is None
    assert ctx.store.count("outbox_pending") == 0  # `taskq status`: nothing stuck
    stored = ctx.store.get_run(run)
    assert stored is not None and (stored.status, stored.approval) == ("created", "waiting")

    assert decide(ctx, run, approve=True, actor="alice")
    assert not decide(ctx, run, approve=True, actor="bob")  # the loser of a race
    assert not decide(ctx, run, approve=False, actor="bob")
    assert sent_uuids(ctx) == [run]
    assert relay_outbox(ctx) == 0  # marked published: nothing left for the relay
    kinds = [e.kind for _, e in ctx.bus.scan("0") if e is not None]
    assert kinds == ["run_status_created", "run_approved_actor", "run_status_compiled",
                     "run_status_queued"]
    approved = next(e for _, e in ctx.bus.scan("0")
                    if e is not None and e.kind == "run_approved_actor")
    assert (approved.payload["actor"], approved.payload["status"]) == ("alice", "created")
    assert ctx.store.get_run(run).approval == "approved"  # type: ignore[union-attr]


def test_an_approval_whose_send_fails_is_sent_by_the_relay(ctx: TestContext) -> None:
    run = waiting_run(ctx, eta=True)
    ctx.publisher.fail_next = 1
    assert decide(ctx, run, approve=True, actor="alice")
    assert ctx.store.get_run(run).status == Status.SCHEDULED  # type: ignore[union-attr]
    assert relay_outbox(ctx) == 1 and sent_uuids(ctx) == [run]
    assert ctx.publisher.sent[0][0].eta is not None


def test_an_invalidated_run_is_skipped_and_its_outbox_row_gone(ctx: TestContext) -> None:
    run = waiting_run(ctx)
    assert decide(ctx, run, approve=False, actor="carol", reason="wrong data")
    assert not decide(ctx, run, approve=True, actor="alice")
    stored = ctx.store.get_run(run)
    assert stored is not None
    assert (stored.status, stored.reason, stored.approval) == ("skipped", "wrong data",
                                                              "invalidated")
    assert relay_outbox(ctx) == 0 and sent_uuids(ctx) == []
    invalidated = next(e for _, e in ctx.bus.scan("0")
                       if e is not None and e.kind == "run_invalidated_actor")
    assert (invalidated.payload["actor"], invalidated.payload["reason"]) == ("carol",
                                                                            "wrong data")


def test_a_trigger_with_approval_fires_a_held_clone(ctx: TestContext) -> None:
    ctx.store.upsert_job_template(name="tensorboard", namespace="default", queue="viz",
                                  task_name="taskq.job.tensorboard", inputs={}, outputs={},
                                  project=None, description=None)
    ctx.store.add_trigger(name="gate", namespace="default", kind="event",
                          spec={"ref": "jobs.train", "kinds": ["run_status_running"],
                                "approval": True}, job="tensorboard", params={}, queue=None)
    start_run(ctx)
    ev = started(ctx)
    drain(ev)
    assert ev.stats.fired == 1
    [clone] = ctx.store.list_runs(trigger="gate")
    assert (clone.status, clone.approval) == ("created", "waiting")
    assert clone.uuid not in sent_uuids(ctx)
    assert relay_outbox(ctx) == 0 and ctx.store.outbox_item(clone.uuid) is None
    assert decide(ctx, clone.uuid, approve=True, actor="alice")
    assert sent_uuids(ctx).count(clone.uuid) == 1


def test_a_job_declares_approval_as_a_bool() -> None:
    def deploy() -> None: ...

    common = dict(name=None, queue="deploy", inputs=None, outputs=None, namespace="default",
                  project=None, hooks=None, presets=None, trigger_on_finish=None,
                  trigger_on=None, trigger_options=None)
    assert declare(deploy, **common, approval=True).approval is True  # type: ignore[arg-type]
    with pytest.raises(JobError, match="job 'deploy' approval: must be true or false"):
        declare(deploy, **common, approval="yes")  # type: ignore[arg-type]
