"""A burst of firings goes out as one batch (``Publisher.send_many``, one Redis pipeline on
taskq's broker): every clone runs once, with the headers and eta ``send_task`` would have
given it, and Flower still sees one task-sent event per clone. A batch the broker refused
is left unpublished, and the relay sends each of its runs once."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from kombu.transport import redis as kombu_redis

import taskq
from taskq import constants
from taskq.celery.publisher import CeleryPublisher
from taskq.runtime import get_runtime
from taskq.services.outbox import relay_outbox
from tests.conftest import marks, wait_for
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
BURST = 60


class SentEvents:
    """What Flower reads: a real event receiver on the celeryev exchange, counting the
    task-sent events per task id. Entered once a probe's own event came back, so nothing
    sent after it is missed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: Counter[str] = Counter()
        self.queues: dict[str, str] = {}
        self.conn = app.connection_for_read()
        self.recv = app.events.Receiver(self.conn, handlers={"task-sent": self._on_sent})
        self.thread = threading.Thread(target=self.recv.capture, daemon=True,
                                       kwargs={"limit": None, "timeout": None})

    def _on_sent(self, event: dict[str, Any]) -> None:
        self.seen[event["uuid"]] += 1
        self.queues[event["uuid"]] = event.get("queue", "")

    def __enter__(self) -> SentEvents:
        self.thread.start()
        probe = str(uuid.uuid4())

        def probed() -> bool:
            self.app.send_task("taskq-test.probe", task_id=probe, queue="taskq-test-nobody")
            return self.seen[probe] > 0

        wait_for(probed, 20, interval=0.2, message="the event receiver to listen")
        return self

    def __exit__(self, *exc: object) -> None:
        self.recv.should_stop = True
        self.thread.join(10)
        self.conn.release()


def clones(trigger: str) -> list[Any]:
    return taskq.list_runs(trigger=trigger, limit=BURST * 2)


def test_burst_of_firings_runs_every_clone_once_with_its_task_sent_event(stack, settings
                                                                          ) -> None:
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], concurrency=2, wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_event_trigger(name="pings", job="noop", events=["ping"])
    with SentEvents(taskq.Client().rt.publisher.app) as sent:
        taskq.publish_events([{"name": "ping", "payload": {"i": i}} for i in range(BURST)])
        wait_for(lambda: len(marks("noop")) >= BURST, 120, message="every clone to start")
        runs = wait_for(lambda: (lambda rs: rs if len(rs) == BURST and all(
            r.status == "succeeded" for r in rs) else None)(clones("pings")), 60,
            message="every clone to succeed")
        ids = {run.uuid for run in runs}
        wait_for(lambda: all(sent.seen[i] for i in ids), 20, message="task-sent events")
        time.sleep(1.0)  # room for a duplicate publish or event to show up
    assert sorted(marks("noop")) == sorted(ids)
    assert {i: sent.seen[i] for i in ids} == dict.fromkeys(ids, 1)
    assert {sent.queues[i] for i in ids} == {"viz"}
    assert taskq.Client().rt.store.count("outbox_pending") == 0


def test_refused_pipeline_leaves_the_batch_unpublished_and_the_relay_sends_it_once(
        stack, settings, r, monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator runs here, its batch's pipeline refused by Redis; nothing reaches the
    queue, every row stays pending; the relay's batch then sends each run once, the
    submitted run that also failed to go out keeping its eta."""
    taskq.add_event_trigger(name="pings", job="noop", events=["ping"])
    made = kombu_redis.PublishBatch.__init__

    def refusing(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)

        def execute(*_: Any, **__: Any) -> None:
            raise redis.ConnectionError("injected: the pipeline was refused")

        self.pipeline.execute = execute

    def refused(*_: Any, **__: Any) -> None:
        raise ConnectionError("injected: send refused")

    with monkeypatch.context() as patched:
        patched.setattr(CeleryPublisher, "send", refused)
        eta = datetime.now(UTC) + timedelta(seconds=4)
        scheduled = taskq.submit(examples.noop, eta=eta)
    monkeypatch.setattr(kombu_redis.PublishBatch, "__init__", refusing)
    rt = get_runtime()
    ev = rt.evaluator()
    ev.refresh(force=True)
    taskq.publish_events([{"name": "ping", "payload": {"i": i}} for i in range(20)])
    deadline = time.monotonic() + 60
    while ev.stats.fired < 20 and time.monotonic() < deadline:
        ev.run_once(block_ms=100)
    ev.flush_marks()
    assert ev.stats.fired == 20
    assert r.llen("viz") == 0
    assert rt.store.count("outbox_pending") == 21
    monkeypatch.undo()

    time.sleep(settings.relay_grace_seconds + 0.2)
    assert relay_outbox(rt) == 21
    assert relay_outbox(rt) == 0
    ids = {run.uuid for run in clones("pings")} | {scheduled.uuid}
    messages = [json.loads(m) for m in r.lrange("viz", 0, -1)]
    assert sorted(m["headers"]["id"] for m in messages) == sorted(ids)
    for m in messages:
        assert m["headers"][constants.RUN_HEADER] == m["headers"]["id"]
        assert m["headers"][constants.QUEUED_HEADER] == "1"
        assert m["properties"]["delivery_info"]["routing_key"] == "viz"
    etas = {m["headers"]["id"]: m["headers"]["eta"] for m in messages}
    assert datetime.fromisoformat(etas.pop(scheduled.uuid)) == eta
    assert set(etas.values()) == {None}

    stack.worker("viz", ["viz"], concurrency=2)
    wait_for(lambda: all(taskq.get_run(i).status == "succeeded" for i in ids), 90,
             message="every relayed run to succeed")
    assert sorted(marks("noop")) == sorted(ids)
    started = taskq.get_run(scheduled.uuid).started_at
    assert started is not None and datetime.fromisoformat(started) >= eta
