"""The services through taskq.testing's in-memory ports: the evaluator as it really runs
(stream entry -> rules -> firing in SQL -> publish -> ack), without Redis or Celery."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskq import constants
from taskq.core.events import Event, custom_event
from taskq.core.jobs import JobDef
from taskq.core.statuses import Status
from taskq.core.stored import OutboxItem
from taskq.core.triggers import chaining
from taskq.services import marks
from taskq.services.evaluator import Evaluator
from taskq.services.outbox import relay_outbox
from taskq.services.recording import append_quietly, record, stop_run
from taskq.testing import (
    InMemoryCoordination,
    InMemoryEventLog,
    StubPublisher,
    TestContext,
    make_context,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: int) -> None:
        self.now += ms / 1000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(tmp_path: Path, clock: FakeClock) -> Iterator[TestContext]:
    context = make_context(tmp_path, clock=clock, relay_grace_seconds=0)
    yield context
    context.close()


# -- helpers ------------------------------------------------------------------------------


def add_tensorboard_trigger(ctx: TestContext) -> dict[str, Any]:
    ctx.store.upsert_job_template(
        name="tensorboard", namespace="default", queue="viz",
        task_name="taskq.job.tensorboard", inputs={"uuid": {"type": "str", "required": True}},
        outputs={}, project=None, description=None)
    return ctx.store.add_trigger(
        name="tb-on-train", namespace="default", kind="event",
        spec={"ref": "jobs.train", "kinds": ["run_status_running"]}, job="tensorboard",
        params={"uuid": "{{ trigger.run.uuid }}"}, queue=None)


def create_run(ctx: TestContext, job: str = "train") -> str:
    """A run as the API makes it: committed, published, its queued event appended."""
    run = str(uuid.uuid4())
    queued = ctx.store.create_run(uuid=run, job=job, namespace="default", project=None,
                                  queue="train", agent="default",
                                  task_name=constants.job_task_name(job), params={})
    ctx.store.mark_published(run)
    append_quietly(ctx.bus, queued)
    return run


def start_run(ctx: TestContext, job: str = "train") -> str:
    run = create_run(ctx, job)
    assert record(ctx, run, Status.RUNNING, attempt=1)
    return run


def finish_run(ctx: TestContext, job: str, status: Status = Status.SUCCEEDED) -> str:
    run = start_run(ctx, job)
    assert record(ctx, run, status, attempt=1)
    return run


def started(ctx: TestContext) -> Evaluator:
    ev = ctx.evaluator()
    ev.refresh(force=True)
    return ev


def drain(ev: Evaluator) -> int:
    """run_once until the stream is quiet (the quiet read also flushes outbox marks)."""
    total = 0
    for _ in range(20):
        n = ev.run_once(block_ms=1)
        total += n
        if n == 0:
            return total
    raise AssertionError("the stream never went quiet")


def status_event(ctx: TestContext, run: str, kind: str) -> Event:
    found = [e for _, e in ctx.bus.scan("0")
             if e is not None and e.ref == f"runs.{run}" and e.kind == kind]
    assert len(found) == 1
    return found[0]


def sent_uuids(ctx: TestContext) -> list[str]:
    return [item.run_uuid for item, _ in ctx.publisher.sent]


# -- the evaluator ------------------------------------------------------------------------


def test_running_upstream_publishes_one_clone_on_the_template_queue(ctx: TestContext) -> None:
    trigger = add_tensorboard_trigger(ctx)
    upstream = start_run(ctx)
    ev = started(ctx)

    assert ev.run_once(block_ms=1) == 3  # the compiled, queued and running events
    assert (ev.stats.fired, ev.stats.duplicates, ev.stats.errors) == (1, 0, 0)
    assert len(ctx.publisher.sent) == 1
    item, headers = ctx.publisher.sent[0]
    assert (item.queue, item.task_name, item.agent) == ("viz", "taskq.job.tensorboard",
                                                        "default")
    assert item.params == {"uuid": upstream}
    assert headers == {constants.RUN_HEADER: item.run_uuid, constants.QUEUED_HEADER: "1"}
    clone = ctx.store.get_run(item.run_uuid)
    assert clone is not None
    assert (clone.job, clone.status, clone.queue, clone.trigger_name) == (
        "tensorboard", "queued", "viz", "tb-on-train")
    assert [f["run_uuid"] for f in ctx.store.firings(trigger.id)] == [item.run_uuid]

    assert drain(ev) == 2  # the clone's compiled and queued events, after the publish
    assert status_event(ctx, item.run_uuid, "run_status_queued").payload["job"] == "tensorboard"
    assert ctx.bus.pending_entries() == {}
    assert ctx.store.outbox_item(item.run_uuid) is None  # marked once the stream was quiet
    assert len(ctx.publisher.sent) == 1


def test_the_same_event_again_fires_nothing(ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    upstream = start_run(ctx)
    ev = started(ctx)
    drain(ev)
    running = status_event(ctx, upstream, "run_status_running")

    ctx.bus.append(running)  # appended twice (signal handler and reconciler)
    ctx.bus.append(running.model_copy(update={"id": "another-id"}))  # same logical event
    assert drain(ev) == 2
    assert (ev.stats.fired, ev.stats.duplicates) == (1, 2)
    assert len(ctx.publisher.sent) == 1
    assert len(ctx.store.list_runs(job="tensorboard")) == 1


def test_a_duplicate_before_the_mark_republishes_the_same_run(
        ctx: TestContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(marks, "MARK_MAX_WAIT", 3600.0)  # a slow machine must not flush
    add_tensorboard_trigger(ctx)
    upstream = start_run(ctx)
    ev = started(ctx)
    ev.run_once(block_ms=1)  # published; the outbox mark is still batched
    ctx.bus.append(status_event(ctx, upstream, "run_status_running"))
    drain(ev)
    assert (ev.stats.fired, ev.stats.duplicates) == (1, 1)
    # Harmless by design: same task id, and the worker's start claim refuses the second.
    assert len(ctx.publisher.sent) == 2
    assert len(set(sent_uuids(ctx))) == 1
    assert len(ctx.store.list_runs(job="tensorboard")) == 1


@pytest.mark.parametrize(("fields", "reason"), [
    ({"event": "{not json"}, "event is not valid JSON"),
    ({"other": "x"}, "stream entry has no 'event' field"),
    ({"event": '{"id": "x", "kind": "Bad Kind", "ref": "jobs.a", "timestamp": "2024-01-01"}'},
     "event field 'kind'"),
])
def test_an_undecodable_entry_is_dead_lettered_and_blocks_nothing(
        ctx: TestContext, fields: dict[str, str], reason: str) -> None:
    add_tensorboard_trigger(ctx)
    bad = ctx.bus.append_raw(fields)
    start_run(ctx)
    ev = started(ctx)

    assert ev.run_once(block_ms=1) == 4
    assert (ev.stats.dead_lettered, ev.stats.fired, ev.stats.processed) == (1, 1, 3)
    [dead] = ctx.bus.dead_letters()
    assert dead["stream_id"] == bad
    assert dead["reason"].startswith(reason)
    assert all(dead[f"original.{k}"] == v for k, v in fields.items())
    assert ctx.bus.pending_entries() == {}


def test_an_entry_that_keeps_failing_is_dead_lettered_after_max_deliveries(
        tmp_path: Path, clock: FakeClock) -> None:
    class Broken:
        def begin_batch(self, rt: Any) -> None:
            pass

        def observe(self, rt: Any, event: Event) -> None:
            raise RuntimeError("observer down")

    ctx = make_context(tmp_path, clock=clock, max_deliveries=3)
    ctx.observers = (Broken(),)
    ev = started(ctx)
    sid = ctx.bus.append(custom_event("ping"))
    ev.run_once(block_ms=1)
    assert ctx.bus.pending_entries() == {sid: ("test", 1)}
    for deliveries in (2, 3):
        clock.advance_ms(ctx.settings.claim_idle_ms)
        ev.process(ctx.bus.claim_stale("test", min_idle_ms=ctx.settings.claim_idle_ms))
        assert ctx.bus.pending_entries() == {sid: ("test", deliveries)}
    clock.advance_ms(ctx.settings.claim_idle_ms)
    ev.process(ctx.bus.claim_stale("test", min_idle_ms=ctx.settings.claim_idle_ms))
    assert ctx.bus.pending_entries() == {}
    assert ev.stats.errors == 3
    [dead] = ctx.bus.dead_letters()
    assert dead["reason"] == ("delivered 4 times without being evaluated; "
                              "last error: RuntimeError: observer down")
    ctx.close()


def test_a_failed_publish_is_left_for_the_relay(ctx: TestContext) -> None:
    add_tensorboard_trigger(ctx)
    upstream = start_run(ctx)
    ctx.publisher.fail_next = 1
    ev = started(ctx)
    drain(ev)

    assert ev.stats.fired == 1
    assert ctx.publisher.sent == []
    [clone] = ctx.store.list_runs(job="tensorboard")
    left = ctx.store.outbox_item(clone.uuid)
    assert left is not None and left.attempts == 1
    assert ctx.store.count("outbox_pending") == 1

    with ctx.coord.single_runner(constants.RELAY_LOCK, timeout=60) as mine:
        assert mine
        assert relay_outbox(ctx) == 0  # another relay holds the lock
    assert relay_outbox(ctx) == 1
    assert sent_uuids(ctx) == [clone.uuid]
    item, _ = ctx.publisher.sent[0]
    assert (item.queue, item.params) == ("viz", {"uuid": upstream})
    assert ctx.store.outbox_item(clone.uuid) is None
    assert relay_outbox(ctx) == 0


def test_the_relay_leaves_rows_younger_than_the_grace(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, relay_grace_seconds=3600)
    add_tensorboard_trigger(ctx)
    start_run(ctx)
    ctx.publisher.fail_next = 1
    drain(started(ctx))
    assert ctx.store.count("outbox_pending") == 1
    assert relay_outbox(ctx) == 0
    assert ctx.publisher.sent == []
    ctx.close()


def test_entries_of_an_evaluator_killed_before_evaluating_are_reclaimed(
        ctx: TestContext, clock: FakeClock) -> None:
    add_tensorboard_trigger(ctx)
    upstream = start_run(ctx)
    assert len(ctx.bus.read("a")) == 3  # "a" read them and died

    b = ctx.evaluator("b")
    assert b.recover() == 0  # not idle long enough to be a dead evaluator's
    assert ctx.publisher.sent == []
    clock.advance_ms(ctx.settings.claim_idle_ms)
    assert b.recover() == 3
    assert (b.stats.fired, b.stats.duplicates) == (1, 0)
    assert [item.params for item, _ in ctx.publisher.sent] == [{"uuid": upstream}]
    assert ctx.bus.pending_entries() == {}


def test_entries_of_an_evaluator_killed_before_acking_fire_once(
        ctx: TestContext, clock: FakeClock) -> None:
    add_tensorboard_trigger(ctx)
    start_run(ctx)
    a = ctx.evaluator("a")
    a.refresh(force=True)
    for entry in ctx.bus.read("a"):
        assert a.handle(entry)
    a.firings.flush()  # the batch committed, then killed before XACK
    assert a.stats.fired == 1

    clock.advance_ms(ctx.settings.claim_idle_ms)
    b = ctx.evaluator("b")
    assert b.recover() == 3
    assert (b.stats.fired, b.stats.duplicates) == (0, 1)
    [clone] = ctx.store.list_runs(job="tensorboard")
    # "a" never marked its publish, so "b" sends the same run again (refused by the worker).
    assert sent_uuids(ctx) == [clone.uuid, clone.uuid]
    assert ctx.bus.pending_entries() == {}


def test_an_and_join_fires_once_when_both_upstreams_succeed(ctx: TestContext) -> None:
    ctx.store.upsert_job_template(
        name="report", namespace="default", queue="services", task_name="taskq.job.report",
        inputs={"train_run": {"type": "str"}, "prep_run": {"type": "str"}}, outputs={},
        project=None, description=None)
    upstream, events, mode, reset = chaining.parse("default", ["train", "prep"], None, "all")
    kind, spec = chaining.build_spec("default", upstream, events, mode=mode, reset=reset)
    assert kind == chaining.FINISH
    trigger = ctx.store.add_trigger(
        name="report-after-both", namespace="default", kind=kind,
        spec=spec.model_dump(mode="json"), job="report",
        params={"train_run": "{{ trigger.runs.train.uuid }}",
                "prep_run": "{{ trigger.runs.prep.uuid }}"}, queue=None)
    ev = started(ctx)

    train = finish_run(ctx, "train")
    finish_run(ctx, "prep", Status.FAILED)  # a failed prep arms nothing
    drain(ev)
    assert ev.stats.fired == 0
    assert ctx.publisher.sent == []
    assert [s["input"] for s in ctx.store.join_state(trigger.id)] == ["train"]

    prep = finish_run(ctx, "prep")
    drain(ev)
    assert ev.stats.fired == 1
    [(item, _)] = ctx.publisher.sent
    assert item.queue == "services"
    assert item.params == {"train_run": train, "prep_run": prep}
    assert ctx.store.join_state(trigger.id) == []

    ctx.bus.append(status_event(ctx, prep, "run_status_succeeded"))  # redelivered
    drain(ev)
    assert (ev.stats.fired, ev.stats.duplicates) == (1, 1)
    assert len(ctx.publisher.sent) == 1
    assert len(ctx.store.list_runs(job="report")) == 1


def test_a_trigger_added_and_bumped_applies_to_the_next_event(ctx: TestContext) -> None:
    ev = started(ctx)
    start_run(ctx)
    drain(ev)
    assert (ev.stats.reloads, ev.stats.fired) == (1, 0)

    add_tensorboard_trigger(ctx)
    ctx.coord.bump_triggers()
    upstream = start_run(ctx)
    drain(ev)
    assert ev.stats.reloads == 2
    assert [item.params for item, _ in ctx.publisher.sent] == [{"uuid": upstream}]


def test_stop_run_stops_a_queued_run_and_terminates_a_running_one(ctx: TestContext) -> None:
    queued, running = create_run(ctx), start_run(ctx)
    stop_run(ctx, queued, "by test")
    stop_run(ctx, running, "by test")
    assert ctx.publisher.revocations == [(queued, False, "SIGTERM"), (running, True, "SIGTERM")]
    assert ctx.publisher.revoked == [queued, running]
    assert [(r.status, r.reason) for r in map(ctx.store.get_run, (queued, running))
            if r is not None] == [("stopped", "by test"), ("running", None)]


def test_sync_jobs_stores_the_context_jobs(ctx: TestContext) -> None:
    ctx.jobs.add(JobDef(name="train", queue="train", namespace="default", project=None,
                        inputs={"lr": {"type": "float", "default": 0.1}}))
    assert ctx.sync_jobs() == 1
    template = ctx.store.get_job_template("train", "default")
    assert template is not None
    assert (template.queue, template.task_name) == ("train", "taskq.job.train")
    assert template.inputs == {"lr": {"type": "float", "default": 0.1}}


# -- the in-memory adapters themselves ----------------------------------------------------


def events(n: int) -> list[Event]:
    return [custom_event(f"e{i}", event_id=f"id-{i}") for i in range(n)]


def test_ids_are_redis_shaped_and_increase() -> None:
    bus = InMemoryEventLog()
    ids = bus.append_many(events(50))
    assert all(re.fullmatch(r"\d+-\d+", i) for i in ids)
    parsed = [tuple(map(int, i.split("-"))) for i in ids]
    assert parsed == sorted(parsed) and len(set(parsed)) == 50


def test_the_group_delivers_each_entry_to_one_consumer(clock: FakeClock) -> None:
    bus = InMemoryEventLog(clock=clock)
    ids = bus.append_many(events(3))
    a = bus.read("a", count=2)
    b = bus.read("b")
    assert [e.stream_id for e in a] == ids[:2] and [e.stream_id for e in b] == ids[2:]
    assert [e.decode().id for e in a + b] == ["id-0", "id-1", "id-2"]
    assert {e.deliveries for e in a + b} == {1}
    assert bus.read("a") == [] and bus.undelivered() == 0
    assert bus.pending_entries() == {ids[0]: ("a", 1), ids[1]: ("a", 1), ids[2]: ("b", 1)}


def test_pending_rereads_own_entries_and_counts_deliveries(clock: FakeClock) -> None:
    bus = InMemoryEventLog(clock=clock)
    ids = bus.append_many(events(2))
    bus.read("a")
    assert [(e.stream_id, e.deliveries) for e in bus.read("a", pending=True)] == [
        (ids[0], 2), (ids[1], 2)]
    assert [e.deliveries for e in bus.read("a", pending=True, count=1)] == [3]
    assert bus.read("b", pending=True) == []
    bus.ack([ids[0], "0-0"])  # an unknown id is ignored, as XACK does
    assert [e.stream_id for e in bus.read("a", pending=True)] == [ids[1]]
    bus.ack([ids[1]])
    assert bus.read("a", pending=True) == [] and bus.pending_entries() == {}


def test_claim_stale_takes_only_idle_entries(clock: FakeClock) -> None:
    bus = InMemoryEventLog(clock=clock)
    ids = bus.append_many(events(3))
    bus.read("a", count=2)
    clock.advance_ms(4000)
    bus.read("a")  # ids[2], delivered later
    assert bus.claim_stale("b", min_idle_ms=5000) == []
    clock.advance_ms(1000)
    claimed = bus.claim_stale("b", min_idle_ms=5000, count=1)
    assert [(e.stream_id, e.deliveries) for e in claimed] == [(ids[0], 2)]
    assert [e.stream_id for e in bus.claim_stale("b", min_idle_ms=5000)] == [ids[1]]
    assert bus.pending_entries() == {ids[0]: ("b", 2), ids[1]: ("b", 2), ids[2]: ("a", 1)}
    clock.advance_ms(5000)  # the claimer's own idle entries too, as XAUTOCLAIM does
    assert [(e.stream_id, e.deliveries) for e in bus.claim_stale("b", min_idle_ms=5000)] == [
        (ids[0], 3), (ids[1], 3), (ids[2], 2)]


def test_dead_letter_acks_and_keeps_the_original() -> None:
    bus = InMemoryEventLog()
    first, second = bus.append_many(events(2))
    entries = bus.read("a")
    bus.dead_letter(entries[0], "first")
    bus.dead_letter(entries[1], "second")
    assert bus.pending_entries() == {}
    assert [(d["reason"], d["stream_id"]) for d in bus.dead_letters()] == [
        ("second", second), ("first", first)]
    assert bus.dead_letters(count=1)[0]["original.event"] == entries[1].fields["event"]


def test_scan_is_exclusive_and_decodes_what_it_can() -> None:
    bus = InMemoryEventLog()
    good = bus.append(custom_event("a", event_id="ok"))
    bad = bus.append_raw({"event": "nope"})
    last = bus.append(custom_event("b", event_id="ok2"))
    everything = bus.scan("0")
    assert [sid for sid, _ in everything] == [good, bad, last]
    assert [e.id if e else None for _, e in everything] == ["ok", None, "ok2"]
    assert [sid for sid, _ in bus.scan(good)] == [bad, last]
    assert [sid for sid, _ in bus.scan("0", count=1)] == [good]
    assert bus.scan(last) == []


def test_read_then_get_reads_the_linked_coordination() -> None:
    assert InMemoryEventLog().read_then_get("a", constants.TRIGGERS_VERSION) == ([], None)
    coord = InMemoryCoordination()
    bus = InMemoryEventLog(coord)
    bus.append(custom_event("a"))
    coord.bump_triggers()
    coord.bump_triggers()
    entries, version = bus.read_then_get("a", constants.TRIGGERS_VERSION)
    assert len(entries) == 1 and version == "2" == coord.trigger_version()


def test_coordination_locks_values_and_members() -> None:
    coord = InMemoryCoordination()
    assert coord.trigger_version() is None
    with coord.single_runner("lock", timeout=1) as first:
        with coord.single_runner("lock", timeout=1) as second:
            assert (first, second) == (True, False)
        with coord.single_runner("other", timeout=1) as other:
            assert other
    with coord.single_runner("lock", timeout=1) as again:
        assert again
    coord.set_value("k", "v")
    assert (coord.get_value("k"), coord.get_value("missing")) == ("v", None)
    coord.heartbeat("e1", 10.0)
    coord.heartbeat("e2", 20.0)
    coord.prune_members(10.0)
    assert (coord.is_member("e1"), coord.is_member("e2"), coord.member_count()) == (
        False, True, 1)
    coord.leave("e2")
    assert coord.member_count() == 0


def test_stub_publisher_fails_the_next_n_sends() -> None:
    publisher = StubPublisher(fail_next=2)
    item = OutboxItem(run_uuid="r1", task_name="t", queue="q", agent="default",
                      params={"p": 1}, attempts=0)
    for _ in range(2):
        with pytest.raises(ConnectionError, match="r1"):
            publisher.send(item, {})
    publisher.send(item, {"h": "1"})
    assert (publisher.fail_next, publisher.sent) == (0, [(item, {"h": "1"})])
    publisher.revoke("r1", terminate=True, signal="SIGKILL")
    assert (publisher.revoked, publisher.revocations) == (["r1"], [("r1", True, "SIGKILL")])


def test_redis_emptied_between_the_epoch_read_and_write_is_still_found_lost(
        ctx: TestContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reconciler pass reads the epoch key intact, Redis restarts empty, the pass goes on:
    the next pass must still see the key gone (it used to write it back into the new Redis,
    and the events it had confirmed in the old stream were never emitted again)."""
    from taskq.services.reconciler import check_redis

    assert check_redis(ctx) is None  # the first pass writes the epoch
    assert check_redis(ctx) is None
    read = ctx.coord.get_value

    def read_then_restart(key: str) -> str | None:
        value = read(key)
        if key == constants.REDIS_EPOCH:
            ctx.coord.values.clear()  # the restart lands right after this read
        return value

    monkeypatch.setattr(ctx.coord, "get_value", read_then_restart)
    assert check_redis(ctx) is None  # this pass read the key before the restart
    monkeypatch.setattr(ctx.coord, "get_value", read)
    assert check_redis(ctx) == "the epoch key is gone"
    assert check_redis(ctx) is None  # repaired once, then trusted again
