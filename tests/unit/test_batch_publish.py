"""A batch's firings are published with one ``send_many``; a refused batch is left to the
relay whole, which sends each of its runs once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq import constants
from taskq.services.outbox import relay_outbox
from taskq.testing import TestContext, make_context
from tests.unit.test_services import add_tensorboard_trigger, drain, start_run, started


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path, relay_grace_seconds=0)
    yield context
    context.close()


def clone_uuids(ctx: TestContext) -> set[str]:
    return {r.uuid for r in ctx.store.list_runs(trigger="tb-on-train", limit=50)}


def test_a_batch_of_firings_goes_out_in_one_send_many(ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    for _ in range(5):
        start_run(ctx)
    drain(started(ctx))
    clones = clone_uuids(ctx)
    assert len(clones) == 5
    assert [set(b) for b in ctx.publisher.batches] == [clones]
    for item, headers in ctx.publisher.sent:
        assert headers == {constants.RUN_HEADER: item.run_uuid, constants.QUEUED_HEADER: "1"}
        assert item.queue == "viz"
    assert ctx.store.count("outbox_pending") == 0


def test_a_refused_batch_is_left_whole_to_the_relay(ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    for _ in range(5):
        start_run(ctx)
    ctx.publisher.fail_next = 1
    drain(started(ctx))
    assert ctx.publisher.sent == []
    assert ctx.store.count("outbox_pending") == 5
    assert relay_outbox(ctx) == 5
    assert relay_outbox(ctx) == 0
    assert sorted(item.run_uuid for item, _ in ctx.publisher.sent) == sorted(clone_uuids(ctx))


def test_a_repeat_inside_a_batch_fires_and_is_sent_once(ctx: TestContext) -> None:
    """The same event twice in one read: the repeat meets the first firing's row in the
    batch's transaction and sends nothing of its own."""
    add_tensorboard_trigger(ctx)
    run = start_run(ctx)
    running = [e for _, e in ctx.bus.scan("0")
               if e is not None and e.ref == f"runs.{run}" and e.kind == "run_status_running"]
    ctx.bus.append_many(running * 2)
    ev = started(ctx)
    drain(ev)
    assert (ev.stats.fired, ev.stats.duplicates) == (1, 2)
    assert len(clone_uuids(ctx)) == 1
    assert [item.run_uuid for item, _ in ctx.publisher.sent] == list(clone_uuids(ctx))
    assert ctx.store.count("runs") == 2 and ctx.store.count("outbox_pending") == 0
