"""Runs left running by a dead worker, through the in-memory coordination: failed once
"worker lost" when the claiming worker's liveness key is gone, never while it beats, never
before a Redis that lost its keys had time to hear from live workers again; a late finish of
the worker judged dead is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from taskq.core.statuses import Status
from taskq.core.times import utcnow
from taskq.services import worker_loss
from taskq.services.recording import record
from taskq.store.base import RUNS
from taskq.testing import TestContext, make_context
from tests.unit.test_services import create_run


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path, worker_lost_after_seconds=10.0)
    yield context
    context.close()


def claimed_long_ago(ctx: TestContext, worker: str = "train@a") -> str:
    run = create_run(ctx, "train")
    assert record(ctx, run, Status.RUNNING, attempt=1, worker=worker)
    with ctx.store.tx() as conn:
        conn.execute(update(RUNS).where(RUNS.c.uuid == run)
                     .values(started_at=utcnow() - timedelta(seconds=60)))
    return run


def watching_since(ctx: TestContext, seconds_ago: float) -> None:
    ctx.coord.set_value(worker_loss.WATCHING_KEY, f"{time.time() - seconds_ago:.3f}")


def test_a_run_of_a_dead_worker_is_failed_once_and_a_late_finish_is_refused(
        ctx: TestContext) -> None:
    run = claimed_long_ago(ctx)
    watching_since(ctx, 60)
    assert worker_loss.fail_lost_runs(ctx) == 1
    stored = ctx.store.get_run(run)
    assert stored is not None and stored.status == Status.FAILED.value
    assert "worker lost" in (stored.reason or "")
    assert worker_loss.fail_lost_runs(ctx) == 0  # once
    assert not record(ctx, run, Status.SUCCEEDED, attempt=1)  # the late finish loses
    statuses = [e["status"] for e in ctx.store.run_events(run)]
    assert statuses.count("failed") == 1 and "succeeded" not in statuses


def test_a_run_of_a_beating_worker_is_left_alone(ctx: TestContext) -> None:
    run = claimed_long_ago(ctx)
    watching_since(ctx, 60)
    worker_loss.beat(ctx, "train@a", time.time())
    assert worker_loss.fail_lost_runs(ctx) == 0
    stored = ctx.store.get_run(run)
    assert stored is not None and stored.status == Status.RUNNING.value


def test_no_worker_is_judged_dead_right_after_redis_lost_its_keys(ctx: TestContext) -> None:
    run = claimed_long_ago(ctx)
    assert worker_loss.fail_lost_runs(ctx) == 0  # first pass: starts watching
    assert ctx.coord.get_value(worker_loss.WATCHING_KEY) is not None
    assert worker_loss.fail_lost_runs(ctx) == 0  # watching for less than half the bound
    stored = ctx.store.get_run(run)
    assert stored is not None and stored.status == Status.RUNNING.value


def test_a_run_without_a_claiming_worker_is_never_touched(ctx: TestContext) -> None:
    run = create_run(ctx, "train")
    assert record(ctx, run, Status.RUNNING, attempt=1)  # a run in the calling process
    with ctx.store.tx() as conn:
        conn.execute(update(RUNS).where(RUNS.c.uuid == run)
                     .values(started_at=utcnow() - timedelta(seconds=60)))
    watching_since(ctx, 60)
    assert worker_loss.fail_lost_runs(ctx) == 0
