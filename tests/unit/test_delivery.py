"""Redis losing its data, through the in-memory ports: the database decides what was
evaluated (the reconciler re-emits the rest), and queued runs whose message vanished are
republished as a new incarnation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq import constants
from taskq.core.delivery import StreamState, redis_lost
from taskq.core.statuses import Status
from taskq.services.reconciler import reconcile
from taskq.services.recording import record
from taskq.services.redelivery import redeliver_lost
from taskq.testing import TestContext, make_context
from tests.unit.test_services import add_tensorboard_trigger, drain, start_run, started


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path, relay_grace_seconds=0, reconcile_grace_seconds=0,
                           redeliver_after_seconds=0.001)
    yield context
    context.close()


def lose_redis(ctx: TestContext) -> None:
    ctx.bus.lose_data()
    ctx.coord.lose_data()


def unevaluated(ctx: TestContext) -> int:
    return ctx.store.count_unevaluated()


# -- detection (pure) ---------------------------------------------------------------------

ALIVE = StreamState(exists=True, last_id="200-0", group_last_id="150-0")


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"epoch_sql": None, "epoch_redis": None, "seen_sql": None, "state": ALIVE}, None),
    ({"epoch_sql": "e", "epoch_redis": "e", "seen_sql": "190-3", "state": ALIVE}, None),
    ({"epoch_sql": "e", "epoch_redis": None, "seen_sql": None, "state": ALIVE}, "gone"),
    ({"epoch_sql": "e", "epoch_redis": "f", "seen_sql": None, "state": ALIVE}, "changed"),
    ({"epoch_sql": "e", "epoch_redis": "e", "seen_sql": "201-0", "state": ALIVE},
     "went back"),
    ({"epoch_sql": "e", "epoch_redis": "e", "seen_sql": "10-0",
      "state": StreamState(exists=False)}, "stream is gone"),
    ({"epoch_sql": "e", "epoch_redis": "e", "seen_sql": "0",
      "state": StreamState(exists=True, last_id="5-0", group_last_id="9-0")}, "ahead"),
])
def test_redis_lost(kwargs: dict, reason: str | None) -> None:
    found = redis_lost(**kwargs)
    assert (found is None) if reason is None else (found is not None and reason in found)


# -- events: evaluated in SQL, re-emitted after a loss ------------------------------------


def test_the_evaluator_marks_events_evaluated_once_the_stream_is_quiet(
        ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    start_run(ctx)
    assert unevaluated(ctx) == 3  # compiled, queued, running
    ev = started(ctx)
    assert ev.run_once(block_ms=1) == 3
    assert unevaluated(ctx) == 5  # batched: the clone's compiled and queued events as well
    drain(ev)
    assert unevaluated(ctx) == 0


def test_events_confirmed_in_a_stream_that_was_lost_are_emitted_again(
        ctx: TestContext) -> None:
    """Failure 1: the evaluator lags, the reconciler confirms the events in the stream,
    Redis restarts empty. Before: nothing re-emitted them, the firings never happened."""
    add_tensorboard_trigger(ctx)
    assert reconcile(ctx) is not None  # the epoch is set on the first pass
    runs = [start_run(ctx) for _ in range(5)]
    first = reconcile(ctx)
    assert first is not None and first.confirmed == 15 and first.reemitted == 0
    lose_redis(ctx)

    result = reconcile(ctx)
    assert result is not None and result.lost is not None and result.reemitted == 15
    ev = started(ctx)
    drain(ev)
    assert ev.stats.fired == 5
    assert sorted(i.params["uuid"] for i, _ in ctx.publisher.sent) == sorted(runs)
    assert unevaluated(ctx) == 0
    again = reconcile(ctx)  # nothing lost now: no second round
    assert again is not None and again.lost is None and again.reemitted == 0


def test_evaluated_events_are_not_emitted_again_and_duplicates_fire_nothing(
        ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    reconcile(ctx)
    start_run(ctx)
    ev = started(ctx)
    drain(ev)
    assert ev.stats.fired == 1
    late = start_run(ctx)  # committed, appended, not yet evaluated
    reconcile(ctx)
    lose_redis(ctx)
    result = reconcile(ctx)
    assert result is not None and result.reemitted == 3  # only the late run's three events
    drain(ev)
    assert ev.stats.fired == 2 and ev.stats.duplicates == 0
    assert [i.params["uuid"] for i, _ in ctx.publisher.sent][-1] == late


def test_the_watermark_never_passes_an_event_not_yet_evaluated(
        ctx: TestContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from taskq.services import reconciler

    monkeypatch.setattr(reconciler, "WATERMARK_SETTLE_SECONDS", 0.0)
    add_tensorboard_trigger(ctx)
    start_run(ctx)
    result = reconcile(ctx)
    assert result is not None and result.watermark == 0  # confirmed, not evaluated
    drain(started(ctx))
    result = reconcile(ctx)
    assert result is not None and result.watermark == 5


# -- queued runs whose message vanished ---------------------------------------------------


def test_a_queued_run_whose_message_is_lost_is_republished_as_a_new_incarnation(
        ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    start_run(ctx)
    drain(started(ctx))
    [(item, _)] = ctx.publisher.sent
    assert redeliver_lost(ctx) == 0  # its message is held: nothing to do
    ctx.publisher.lost.add(item.run_uuid)

    assert redeliver_lost(ctx) == 1
    again, headers = ctx.publisher.sent[-1]
    assert again.run_uuid == item.run_uuid and again.incarnation == 1
    assert headers[constants.INCARNATION_HEADER] == "1"
    run = ctx.store.get_run(item.run_uuid)
    assert run is not None and run.incarnation == 1
    assert redeliver_lost(ctx) == 0  # the new message is held
    # The lost original (incarnation 0) is refused by the start claim; the new one starts.
    assert not record(ctx, item.run_uuid, Status.RUNNING, attempt=1, incarnation=0)
    assert record(ctx, item.run_uuid, Status.RUNNING, attempt=1, incarnation=1)
    ctx.publisher.lost.add(item.run_uuid)
    assert redeliver_lost(ctx) == 0  # running: not queued any more


def test_unpublished_rows_are_left_to_the_relay(ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    start_run(ctx)
    ctx.publisher.fail_next = 1
    drain(started(ctx))
    assert ctx.publisher.sent == []
    assert redeliver_lost(ctx) == 0
    assert ctx.store.count("outbox_pending") == 1
