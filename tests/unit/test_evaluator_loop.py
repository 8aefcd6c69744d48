"""The evaluator loop as the worker's bootstep runs it (services.serving.serve): slices
back to back while it holds a slot, standing by while every slot is taken, and its slot left
when it is told to stop (a warm shutdown), so another loop takes over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq import constants
from taskq.celery.app import EVALUATOR_STEP, beat_schedule, create_app
from taskq.services.serving import serve
from taskq.testing import TestContext, make_context
from taskq.worker.tasks import evaluate
from tests.unit.test_services import add_tensorboard_trigger, start_run


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path, relay_grace_seconds=0, evaluators=1)
    yield context
    context.close()


def test_serve_fires_then_leaves_its_slot_when_stopped(ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    upstream = start_run(ctx)
    ev = ctx.evaluator("loop-1")
    seen: list[bool] = []

    def stop() -> bool:
        seen.append(ctx.coord.is_member("loop-1"))
        return len(ctx.publisher.sent) >= 1

    serve(ev, slice_seconds=0.05, stop=stop)  # several slices, one slot throughout
    assert [item.params for item, _ in ctx.publisher.sent] == [{"uuid": upstream}]
    assert ev.stats.fired == 1 and any(seen)
    assert not ctx.coord.is_member("loop-1")  # left: a standing-by loop may take over


def test_serve_stands_by_while_every_slot_is_taken(ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    start_run(ctx)
    ctx.coord.heartbeat("loop-elsewhere", time.time())
    ev = ctx.evaluator("loop-2")
    checks = iter(range(5))
    serve(ev, slice_seconds=0.05, stop=lambda: next(checks, None) is None)
    assert ctx.publisher.sent == [] and ev.stats.processed == 0
    assert not ctx.coord.is_member("loop-2")
    assert ctx.coord.is_member("loop-elsewhere")


def test_the_old_task_is_a_noop_and_beat_no_longer_sends_it(ctx: TestContext) -> None:
    assert evaluate() == {"joined": False,
                          "reason": "the evaluator runs beside the worker's pool"}
    assert ctx.publisher.sent == []
    tasks = {entry["task"] for entry in beat_schedule(ctx.settings).values()}
    assert constants.EVALUATE_TASK not in tasks
    assert EVALUATOR_STEP in create_app(ctx.settings).steps["worker"]


def test_serve_says_it_is_up_once_joined_or_standing_by(ctx: TestContext) -> None:
    ev = ctx.evaluator("loop-3")
    told: list[bool] = []
    checks = iter(range(3))
    serve(ev, slice_seconds=0.05, stop=lambda: next(checks, None) is None,
          ready=lambda: told.append(ctx.coord.is_member("loop-3")))
    assert told == [True]  # once, and only after it had joined
