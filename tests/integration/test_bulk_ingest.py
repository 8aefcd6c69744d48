"""Many events in one call: `taskq.publish_events([...])` commits them in one transaction
and appends them in one round trip, with the checks and the `event_id` idempotency of one
publish. Real Redis, a real database, a real evaluator and job worker."""

from __future__ import annotations

import time

import pytest

import taskq
from tests.conftest import marks, wait_for
from tests.integration.test_exactly_once import drained

pytestmark = pytest.mark.integration


def test_publish_events_in_one_call_fires_each_event_once(stack, settings, r) -> None:
    stack.evaluator()
    stack.worker("viz", ["viz"], concurrency=2)
    taskq.add_event_trigger(name="pings", job="noop", events=["ping"])
    with pytest.raises(taskq.ValidationError,
                       match=r"^events\[2\]\.name: 'bad name!' is not an event name"):
        taskq.publish_events([{"name": "ping"}, {"name": "ping"}, {"name": "bad name!"}])
    with pytest.raises(taskq.ValidationError, match=r"^events\[0\]: must be a mapping"):
        taskq.publish_events([{"name": "ping", "fields": {}}])

    batch = [{"name": "ping", "payload": {"i": i}, "event_id": f"ping-{i}"}
             for i in range(50)]
    ids = taskq.publish_events(batch + batch[:5])  # part of it twice in the same call
    assert len(ids) == 55 and ids[50:] == ids[:5] and len(set(ids)) == 50
    assert taskq.publish_events(batch[:10]) == ids[:10]  # the caller retrying the call

    wait_for(lambda: len(marks("noop")) >= 50, 60, message="fifty noop runs")
    wait_for(lambda: drained(r), 30, message="stream drained")
    time.sleep(1.0)  # room for a duplicate to show up, if there were one
    firings = taskq.Client().firings("pings")  # the newest fifty: all there are
    assert sorted(f["event_id"] for f in firings) == sorted(set(ids))
    assert len(marks("noop")) == 50
    # The refused calls published nothing: only the fifty events fired.
    assert {f["outcome"] for f in firings} == {"fired"}
