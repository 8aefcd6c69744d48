"""Nothing lost when Redis loses its data, or a worker dies holding a message.

Each test runs its own redis-server without persistence (``--save '' --appendonly no``) on a
free port, as the event stream *and* the Celery broker, so that it can restart it empty:
the database, not Redis, must say what was delivered.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import taskq
from taskq.core.statuses import Status
from taskq.services.reconciler import reconcile
from taskq.testing.redis_server import VolatileRedis
from tests.conftest import Stack, marks, wait_for
from tests.integration.test_seed_scenario import add_seed_trigger, clones_of
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

#: Generous: two cores shared with other work; every wait is on a condition.
DEADLINE = 90.0


#: The server each test restarts empty.
OwnRedis = VolatileRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def lossy(settings: Any, own_redis: OwnRedis, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack whose Redis (stream and broker) is ``own_redis``; queued runs with no message
    anywhere are looked for every second, two seconds after they were queued."""
    from taskq.settings import configure

    s = configure(settings, redis_url=own_redis.url, redeliver_after_seconds=2.0,
                  redeliver_every=1.0)
    stack = Stack(s, tmp_path / "logs")
    yield stack
    stack.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print("not done:", getattr(all_done, "last", None))
        for p in stack.procs:
            print(f"\n===== {p.name} log (tail) =====\n{p.output()[-3000:]}")


def ready(*procs: Any) -> None:
    for p in procs:
        p.wait_ready(90)


def trains(n: int) -> list[taskq.RunRecord]:
    return [taskq.submit(examples.train, params={"seconds": 0.0, "epochs": 1})
            for _ in range(n)]


def all_done(runs: list[taskq.RunRecord]) -> bool:
    found = [taskq.get_run(run.uuid) for run in runs]
    all_done.last = sorted(f"{r.uuid[:8]}:{r.status.value}:{r.incarnation}"  # type: ignore[attr-defined]
                           for r in found if r is not None and not r.done)
    return all(r is not None and r.done for r in found)


def boards() -> list[taskq.RunRecord]:
    return taskq.list_runs(job="tensorboard", limit=1000)


def unfired(upstreams: list[taskq.RunRecord]) -> str:
    """Each upstream with no firing: what its run and its events say (for a failed run)."""
    client = taskq.Client()
    fired = {f.get("event_id") for f in client.firings("tb-on-running")}
    lines = []
    for up in upstreams:
        events = client.rt.store.run_events(up.uuid)
        if not any(e.get("event_id") in fired for e in events):
            lines.append(f"unfired {up.uuid}: " + ", ".join(
                f"{e.get('status')}/{e.get('event_id')}" for e in events))
    return "\n".join(lines) or "every upstream has a firing"


def delivered_exactly_once(upstreams: list[taskq.RunRecord]) -> None:
    """One firing and one clone per upstream, every clone succeeded, none ran twice."""
    n = len(upstreams)
    try:
        wait_for(lambda: len(taskq.Client().firings("tb-on-running")) >= n, DEADLINE,
                 interval=0.5, message=f"{n} firings")
    except AssertionError:
        print(unfired(upstreams))
        raise
    wait_for(lambda: len(boards()) >= n and all(b.done for b in boards()), DEADLINE,
             interval=0.5, message=f"{n} clones done")
    time.sleep(2.0)  # room for a duplicate delivery to show up, if there were one
    firings = taskq.Client().firings("tb-on-running")
    assert len(firings) == n
    for up in upstreams:
        assert len(clones_of(up.uuid)) == 1, up.uuid
    clones = boards()
    assert len(clones) == n
    assert [b.status for b in clones] == [Status.SUCCEEDED] * n
    assert marks("tensorboard") == sorted(b.uuid for b in clones)  # each ran once


def test_events_confirmed_in_the_stream_still_fire_after_redis_restarts_empty(
        lossy: Stack, own_redis: OwnRedis) -> None:
    """The evaluator lags while the reconciler confirms the events in the stream; Redis
    restarts without its data. Before: the confirmed events were never emitted again and
    their firings never happened (234 of 300 on a real stack)."""
    train_worker = lossy.worker("train", ["train"], concurrency=2)
    add_seed_trigger()
    upstreams = trains(30)
    wait_for(lambda: all_done(upstreams), DEADLINE, interval=0.2, message="trains done")
    rt = taskq.Client().rt
    reconcile(rt)
    wait_for(lambda: (reconcile(rt), _all_confirmed(rt))[1], 30, interval=0.5,
             message="events confirmed in the stream")
    assert taskq.Client().firings("tb-on-running") == []  # no evaluator yet: all lagging

    own_redis.restart_empty()
    ready(lossy.evaluator(wait=False), lossy.worker("viz", ["viz"], concurrency=2, wait=False),
          lossy.beat())
    delivered_exactly_once(upstreams)
    assert train_worker.alive()


def _all_confirmed(rt: Any) -> bool:
    from sqlalchemy import func, select

    from taskq.store.models import RunEvent

    with rt.store.read() as conn:
        return not conn.execute(select(func.count()).select_from(RunEvent).where(
            RunEvent.confirmed.is_(False))).scalar_one()


def test_clones_published_before_redis_restarts_empty_still_run(
        lossy: Stack, own_redis: OwnRedis) -> None:
    """The firings were recorded and their clones published; then Redis, the broker too,
    restarts empty. Before: every clone stayed queued forever (300 of 300), its outbox row
    marked published and its message gone."""
    ready(lossy.evaluator(wait=False), lossy.worker("train", ["train"], concurrency=2,
                                                    wait=False), lossy.beat())
    add_seed_trigger()
    upstreams = trains(30)
    wait_for(lambda: len(boards()) == 30, DEADLINE, interval=0.5, message="30 clones")
    store = taskq.Client().rt.store
    wait_for(lambda: store.count("outbox_pending") == 0, 30, message="outbox marked")
    assert all(b.status == Status.QUEUED for b in boards())  # no viz worker yet

    own_redis.restart_empty()
    lossy.worker("viz", ["viz"], concurrency=2)
    delivered_exactly_once(upstreams)


def test_a_worker_killed_holding_a_message_it_took_from_the_broker(
        lossy: Stack, tmp_path: Path) -> None:
    """SIGKILLed right after Redis handed it a message (BRPOP returned), before kombu put it
    in the unacknowledged set: the message is in no queue and no unacked hash. Before: the
    run stayed queued forever (3 runs in 25 kills over 1,500 on a real stack)."""
    crashed = tmp_path / "viz-crashed"
    ready(lossy.evaluator(wait=False), lossy.worker("train", ["train"], wait=False),
          lossy.beat())
    doomed = lossy.worker("viz-1", ["viz"], TASKQ_CRASH_AT="broker_delivered",
                          TASKQ_CRASH_ONCE=str(crashed),
                          TASKQ_IMPORTS="workers.examples,tests.integration.broker_crash")
    add_seed_trigger()
    upstreams = trains(1)
    wait_for(crashed.exists, 60, message="the worker killed holding the message")
    doomed.kill(signal.SIGKILL)  # its pool children too
    doomed.popen.wait(10)
    [board] = wait_for(boards, 10)
    assert board.status == Status.QUEUED
    lossy.worker("viz-2", ["viz"])
    delivered_exactly_once(upstreams)
    assert taskq.get_run(board.uuid).incarnation == 1  # republished under a new claim


def test_kills_and_an_empty_redis_lose_nothing_and_run_nothing_twice(
        lossy: Stack, own_redis: OwnRedis, tmp_path: Path) -> None:
    """The evaluator SIGKILLed between recording a firing and publishing it, Redis restarted
    empty while events are still being evaluated, a viz worker SIGKILLed holding a message
    it took: every train fires once, every clone ends succeeded, none runs twice."""
    eval_crashed, viz_crashed = tmp_path / "evaluator-crashed", tmp_path / "viz-crashed"
    first = lossy.evaluator("evaluator-1", wait=False, TASKQ_CRASH_AT="after_record",
                            TASKQ_CRASH_ONCE=str(eval_crashed))
    doomed = lossy.worker("viz-1", ["viz"], wait=False, TASKQ_CRASH_AT="broker_delivered",
                          TASKQ_CRASH_ONCE=str(viz_crashed),
                          TASKQ_IMPORTS="workers.examples,tests.integration.broker_crash")
    ready(first, doomed, lossy.worker("train", ["train"], concurrency=2, wait=False),
          lossy.beat())
    add_seed_trigger()
    upstreams = trains(40)
    wait_for(eval_crashed.exists, 60, message="the evaluator killed mid-firing")
    first.kill(signal.SIGKILL)
    first.popen.wait(10)
    wait_for(lambda: sum(1 for u in upstreams
                         if (r := taskq.get_run(u.uuid)) and r.status != Status.QUEUED) >= 20,
             DEADLINE, interval=0.2, message="half the trains started")
    own_redis.restart_empty()
    lossy.evaluator("evaluator-2")
    wait_for(viz_crashed.exists, DEADLINE, interval=0.2,
             message="the viz worker killed holding a message")
    doomed.kill(signal.SIGKILL)
    doomed.popen.wait(10)
    lossy.worker("viz-2", ["viz"], concurrency=2)
    wait_for(lambda: all_done(upstreams), DEADLINE, interval=0.5, message="trains done")
    delivered_exactly_once(upstreams)
