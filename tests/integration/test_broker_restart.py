"""A worker holding messages when its Redis broker dies and comes back empty keeps consuming,
and a channel left open by a connection that closed half way can still be closed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Exchange, Queue  # type: ignore[attr-defined]

import taskq
from taskq.celery.app import create_app
from taskq.core.statuses import Status
from taskq.settings import configure
from tests.conftest import Stack, wait_for
from tests.integration.test_redis_loss import (  # noqa: F401  (fixtures)
    DEADLINE,
    OwnRedis,
    all_done,
    lossy,
    own_redis,
    trains,
)
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def test_a_worker_holding_messages_survives_its_broker_restarting_empty(
        lossy: Stack, own_redis: OwnRedis, tmp_path: Path) -> None:  # noqa: F811
    worker = lossy.worker("train", ["train"], concurrency=2)
    hold = tmp_path / "release"
    held = [taskq.submit(examples.train, params={"epochs": 1, "hold": str(hold)})
            for _ in range(2)]
    wait_for(lambda: all(taskq.get_run(r.uuid).status == Status.RUNNING  # type: ignore[union-attr]
                         for r in held), DEADLINE, interval=0.2, message="two runs running")
    own_redis.stop()
    time.sleep(4.0)
    own_redis.restarts += 1
    own_redis.start()
    time.sleep(3.0)
    hold.touch()
    after = trains(3)
    wait_for(lambda: all_done(after), DEADLINE, interval=0.5, message="runs after the restart")
    assert worker.alive()
    assert "Traceback" not in worker.output()


def test_a_channel_left_open_by_a_half_closed_connection_closes(
        settings: Any, own_redis: OwnRedis) -> None:  # noqa: F811
    """Before: ``AttributeError: 'NoneType' object has no attribute 'hostname'`` from kombu's
    ``restore_unacked``, raised where no ``ignore_errors`` catches it (a chaos run's evaluator
    consumer died of it on a Redis restart)."""
    app = create_app(configure(settings, redis_url=own_redis.url))
    held, other = (Queue(n, Exchange(n), n) for n in ("test.held", "test.other"))
    conn = app.connection_for_read()
    producer = conn.Producer()
    for i in range(3):
        producer.publish({"i": i}, exchange=held.exchange, routing_key=held.name,
                         declare=[held, other])
    holding = conn.channel()
    got: list[Any] = []
    consumer = conn.Consumer([held], channel=holding, callbacks=[lambda b, m: got.append(m)])
    consumer.qos(prefetch_count=2)
    consumer.consume()
    conn.drain_events(timeout=2)
    conn.drain_events(timeout=2)
    consumer.cancel()
    polling = conn.channel()  # a BRPOP outstanding when the broker dies
    conn.Consumer([other], channel=polling, callbacks=[lambda b, m: None]).consume()
    try:
        conn.drain_events(timeout=0.3)
    except TimeoutError:
        pass
    assert len(got) == 2 and polling._in_poll

    own_redis.stop()
    conn.collect(socket_timeout=5)  # as Celery's consumer does on a connection loss
    assert not holding.closed  # kombu gave up on it: the polling channel's close raised
    holding.close()
    assert holding.closed

    own_redis.start()
    assert redis.Redis.from_url(own_redis.url).ping()



def test_a_job_cancelled_on_a_lost_connection_fails_only_if_it_had_started(settings) -> None:
    """Celery cancels what its pool took when the broker connection drops (acks_late), and
    says so as a retry with no exception. A run it took before the claim is still queued:
    it must stay queued for its message, not be failed without ever running (then its
    ``running`` never comes and triggers on it never fire). One that had started fails."""
    from types import SimpleNamespace

    from taskq.worker import signals

    task = examples.train
    waiting = taskq.submit(examples.train, params={"epochs": 1})
    started = taskq.submit(examples.train, params={"epochs": 1})
    assert signals.record(started.uuid, Status.RUNNING, attempt=1)
    for run in (waiting, started):
        signals.on_retry(sender=task, request=SimpleNamespace(id=run.uuid, retries=0),
                         reason="connection lost", einfo=None)
    assert taskq.get_run(waiting.uuid).status == Status.QUEUED
    stopped = taskq.get_run(started.uuid)
    assert stopped.status == Status.FAILED
    assert "lost its broker connection" in (stopped.reason or "")
