"""Bad events apart from a broken infrastructure, through the in-memory ports: outages are
classified per adapter, hold the evaluator without costing an entry its delivery budget, a
failing trigger is recorded and the others go on, poison text is stored escaped, and a final
status lands even when what the job left cannot be stored."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kombu.exceptions
import pytest
import redis
from sqlalchemy import exc as sa_exc

from taskq.core.events import Event, custom_event
from taskq.core.matching import Match, Rule
from taskq.core.planning import Facts, Plan
from taskq.core.statuses import Status
from taskq.core.storable import dumps_storable, storable_json, storable_text
from taskq.core.stored import JobTemplate
from taskq.core.triggers import KindRegistry
from taskq.core.triggers.base import TriggerRow
from taskq.core.triggers.event import EventKind
from taskq.services.health import fresh_reports
from taskq.services.outages import is_outage
from taskq.services.recording import record
from taskq.testing import TestContext, make_context
from tests.unit.test_services import FakeClock, create_run


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path, clock=FakeClock(), relay_grace_seconds=0)
    yield context
    context.close()


# -- storable text ------------------------------------------------------------------------


def test_unstorable_characters_are_written_as_escapes() -> None:
    plain = "nothing to see"
    assert storable_text(plain) is plain
    assert storable_text("a\x00b\udcffc") == "a\\x00b\\udcffc"
    assert storable_json({"k\x00": ["x\x00", 1, {"y": "\ud800"}]}) == {
        "k\\x00": ["x\\x00", 1, {"y": "\\ud800"}]}
    assert json.loads(dumps_storable({"a": "x\x00"})) == {"a": "x\\x00"}
    assert dumps_storable({"a": "\\u0000 typed by hand"}) == json.dumps(
        {"a": "\\u0000 typed by hand"})


def test_the_store_keeps_poison_text_escaped(ctx: TestContext) -> None:
    run = create_run(ctx)
    assert record(ctx, run, Status.RUNNING, attempt=1)
    assert record(ctx, run, Status.FAILED, attempt=1, reason="bad \x00 \udcff",
                  outputs={"note\x00": "x\x00"})
    stored = ctx.store.get_run(run)
    assert stored is not None
    assert stored.status == "failed" and stored.reason == "bad \\x00 \\udcff"
    assert stored.outputs == {"note\\x00": "x\\x00"}
    # An id is escaped the same way where it is written and where it is looked up.
    event = custom_event("ping", {"f": "\x00"}, event_id="id\x00")
    assert ctx.store.record_event(event) and not ctx.store.record_event(event)


def test_a_final_status_lands_when_the_outputs_cannot_be_stored(ctx: TestContext) -> None:
    run = create_run(ctx)
    assert record(ctx, run, Status.RUNNING, attempt=1)
    assert record(ctx, run, Status.FAILED, attempt=1, reason="boom",
                  outputs={"model": object()})
    stored = ctx.store.get_run(run)
    assert stored is not None and stored.status == "failed"
    assert stored.outputs == {}
    assert stored.reason.startswith("boom; outputs and metrics could not be stored (")


def test_a_success_whose_outputs_cannot_be_stored_is_left_to_the_caller(
        ctx: TestContext) -> None:
    """The worker's success handler then records the run failed, as it always did."""
    run = create_run(ctx)
    assert record(ctx, run, Status.RUNNING, attempt=1)
    with pytest.raises(Exception, match="not JSON serializable"):
        record(ctx, run, Status.SUCCEEDED, attempt=1, outputs={"model": object()})
    stored = ctx.store.get_run(run)
    assert stored is not None and stored.status == "running"


# -- what an outage is --------------------------------------------------------------------


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _dbapi(cls: type[sa_exc.DBAPIError], sqlstate: str) -> sa_exc.DBAPIError:
    return cls("INSERT ...", {}, _PgError(sqlstate))


@pytest.mark.parametrize(("exc", "outage"), [
    (sa_exc.OperationalError("x", {}, sqlite3.OperationalError("database is locked")), True),
    (sa_exc.OperationalError("x", {}, sqlite3.OperationalError("readonly database")), True),
    (_dbapi(sa_exc.ProgrammingError, "42501"), True),  # permission denied
    (_dbapi(sa_exc.InternalError, "25006"), True),  # read-only after a failover
    (_dbapi(sa_exc.OperationalError, "57P01"), True),  # admin shutdown
    (_dbapi(sa_exc.DataError, "22021"), False),  # a bad value
    (_dbapi(sa_exc.IntegrityError, "23505"), False),
    (_dbapi(sa_exc.ProgrammingError, "42601"), False),  # a syntax error
    (redis.ConnectionError("refused"), True),
    (redis.TimeoutError("slow"), True),
    (redis.ResponseError("LOADING Redis is loading the dataset in memory"), True),
    (redis.ResponseError("WRONGTYPE Operation against a key"), False),
    (kombu.exceptions.OperationalError("broker down"), True),
    (ConnectionRefusedError("refused"), True),
    (RecursionError("maximum recursion depth exceeded"), False),
    (ValueError("bad"), False),
])
def test_outages_are_told_from_bad_work(ctx: TestContext, exc: Exception,
                                        outage: bool) -> None:
    from taskq.celery.publisher import CeleryPublisher
    from taskq.store.manager import Store
    from taskq.stream.redis_stream import EventBus

    real = dataclasses.replace(ctx, publisher=CeleryPublisher(ctx.settings))  # type: ignore[arg-type]
    assert isinstance(ctx.store, Store)
    with_redis = dataclasses.replace(real, bus=EventBus(redis.Redis()))  # type: ignore[arg-type]
    assert is_outage(with_redis, exc) is outage


def test_an_outage_is_found_behind_the_error_it_caused(ctx: TestContext) -> None:
    try:
        try:
            raise ConnectionResetError("peer")
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as exc:
        assert is_outage(ctx, exc)


# -- the evaluator under an outage --------------------------------------------------------


class Refusing:
    """The store's firings refused while ``down`` (as a revoked INSERT would)."""

    def __init__(self, store: Any) -> None:
        self.store, self.down = store, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def record_firing(self, **kwargs: Any) -> Any:
        if self.down:
            raise _dbapi(sa_exc.ProgrammingError, "42501")
        return self.store.record_firing(**kwargs)

    def record_firings(self, writes: Any) -> Any:
        if self.down:
            raise _dbapi(sa_exc.ProgrammingError, "42501")
        return self.store.record_firings(writes)


def add_probe_trigger(ctx: TestContext, name: str = "on-ping", kind: str = "event") -> None:
    ctx.store.upsert_job_template(name="noop", namespace="default", queue="viz",
                                  task_name="taskq.job.noop", inputs={}, outputs={},
                                  project=None, description=None)
    ctx.store.add_trigger(name=name, namespace="default", kind=kind,
                          spec={"ref": "events.ping", "kinds": ["custom_event"]}, job="noop",
                          params={}, queue=None)


def test_an_outage_holds_entries_without_spending_their_budget(tmp_path: Path) -> None:
    clock = FakeClock()
    ctx = make_context(tmp_path, clock=clock, relay_grace_seconds=0, max_deliveries=2)
    add_probe_trigger(ctx)
    refusing = Refusing(ctx.store)
    ctx.store = refusing  # type: ignore[assignment]
    ev = ctx.evaluator()
    ev.refresh(force=True)
    ids = [ctx.bus.append(custom_event("ping", {"i": i})) for i in range(3)]
    with pytest.raises(sa_exc.ProgrammingError):
        ev.run_once(block_ms=1)
    assert [e.stream_id for e in ev.held] == ids
    assert ctx.bus.pending_entries() == {sid: ("test", 0) for sid in ids}  # refunded
    for _ in range(5):  # restarts and reclaims while the outage lasts: nothing is spent
        clock.advance_ms(ctx.settings.claim_idle_ms)
        again = ctx.evaluator()
        again.refresh(force=True)
        with pytest.raises(sa_exc.ProgrammingError):
            again.process(ctx.bus.claim_stale("test", min_idle_ms=ctx.settings.claim_idle_ms))
        assert {d for _, d in ctx.bus.pending_entries().values()} == {0}
    ev.health.outage(sa_exc.OperationalError("x", {}, Exception("down")), len(ev.held))
    [report] = fresh_reports(ctx, time.time()).values()
    assert report["state"] == "degraded" and report["held"] == 3
    refusing.down = False
    clock.advance_ms(ctx.settings.claim_idle_ms)
    final = ctx.evaluator()
    final.refresh(force=True)
    final.process(ctx.bus.claim_stale("test", min_idle_ms=ctx.settings.claim_idle_ms))
    assert final.stats.fired == 3
    assert ctx.bus.dead_letters() == [] and ctx.bus.pending_entries() == {}
    final.health.since = 1.0
    final.health.recovered()
    assert ctx.coord.health() == {}
    ctx.close()


class BrokenKind(EventKind):
    """An event trigger whose planning raises (a bug, a value it cannot handle)."""

    stored_kinds = ("broken",)

    def build_rule(self, row: TriggerRow) -> Rule:
        return dataclasses.replace(super().build_rule(row), kind="broken")

    def plan(self, match: Match, template: JobTemplate | None, key: str, facts: Facts,
             events: Mapping[str, Event] | None = None) -> Plan:
        raise RuntimeError(f"cannot plan {match.event.id}")


def test_a_failing_trigger_is_recorded_and_the_others_go_on(ctx: TestContext) -> None:
    from taskq.core.triggers.chaining import ChainingKind
    from taskq.core.triggers.entity import EntityKind
    from taskq.core.triggers.hook import HookKind

    ctx.kinds = KindRegistry((EventKind(), HookKind(), ChainingKind(), EntityKind(),
                              BrokenKind()))
    add_probe_trigger(ctx, "broken-one", kind="broken")
    add_probe_trigger(ctx, "good-one")
    ev = ctx.evaluator()
    ev.refresh(force=True)
    event = custom_event("ping")
    ctx.bus.append(event)
    ev.run_once(block_ms=1)
    assert ctx.bus.pending_entries() == {} and ctx.bus.dead_letters() == []
    by_name = {t.name: t.id for t in ctx.store.list_triggers()}
    [good] = ctx.store.firings(by_name["good-one"])
    [bad] = ctx.store.firings(by_name["broken-one"])
    assert good["outcome"] == "fired"
    assert (bad["outcome"], bad["event_id"]) == ("error", event.id)
    assert bad["reason"] == f"planning failed: RuntimeError: cannot plan {event.id}"
    ev.process(ctx.bus.read("again", pending=False))  # nothing new: nothing more recorded
    assert len(ctx.store.firings(by_name["broken-one"])) == 1


def test_dead_letters_replay_once_in_memory(ctx: TestContext) -> None:
    from taskq.core.stored import Entry

    event = custom_event("ping")
    ctx.bus.dead_letter(Entry("1-0", event.to_fields(), 6), "made up")
    [dead] = ctx.bus.dead_letters()
    [(moved, new)] = ctx.bus.replay_dead([dead["id"]])
    assert moved == dead["id"] and ctx.bus.replay_dead([dead["id"]]) == []
    [entry] = ctx.bus.read("test")
    assert (entry.stream_id, entry.decode()) == (new, event)
