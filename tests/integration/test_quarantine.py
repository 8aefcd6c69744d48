"""A trigger that fails on every event is quarantined with the reason, the others go on;
`taskq triggers list/show` say so and `taskq triggers enable` releases it. Failures count
in a row: one that succeeds in between starts the count again. Real Redis, a real
database, a real evaluator worker."""

from __future__ import annotations

import json
from typing import Any

import pytest

import taskq
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.test_entity_triggers import drained

pytestmark = pytest.mark.integration


def outcomes(name: str) -> list[str]:
    return [f["outcome"] for f in reversed(taskq.Client().firings(name))]


def work(r: Any, *ns: int, healthy: int) -> None:
    """Publish one `work` event per value of `n` and wait until all are evaluated (the
    healthy trigger has fired `healthy` times in all)."""
    for n in ns:
        taskq.publish_event("work", payload={"n": n})
    wait_for(lambda: len(outcomes("healthy")) == healthy and drained(r), 60,
             message=f"{healthy} firings of the healthy trigger")


def test_a_trigger_failing_every_time_is_quarantined_and_released(stack, settings,
                                                                  r) -> None:
    stack.evaluator()
    taskq.add_event_trigger(name="broken", job="train", events=["work"],
                            params={"seconds": "{{ fields.n // 0 }}"})
    taskq.add_event_trigger(name="flaky", job="train", events=["work"],
                            params={"seconds": "{{ 0 // fields.n }}"})
    taskq.add_event_trigger(name="healthy", job="noop", events=["work"])

    work(r, 0, 0, 0, 0, healthy=4)
    work(r, 1, healthy=5)  # broken fails a fifth time; flaky fires, and counts from 0
    broken = taskq.Client().get_trigger("broken")
    assert broken["quarantined"]["reason"].startswith(
        "5 evaluations in a row failed; last: params.seconds: ZeroDivisionError"), broken
    assert outcomes("flaky") == ["error"] * 4 + ["fired"]
    assert taskq.Client().get_trigger("flaky")["failures"] == 0

    work(r, 0, 0, 0, 0, healthy=9)  # broken is not evaluated; flaky fails 4 in a row
    assert outcomes("broken") == ["error"] * 5
    flaky = taskq.Client().get_trigger("flaky")
    assert flaky["failures"] == 4 and flaky["quarantined"] is None
    assert outcomes("healthy") == ["fired"] * 9

    env = env_for(settings)
    listed = run_cli("triggers", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "broken" in line)
    assert "quarantined" in row
    assert ("(q) default/broken quarantined: 5 evaluations in a row failed; last: "
            "params.seconds: ZeroDivisionError") in " ".join(listed.stdout.split())
    shown = json.loads(run_cli("triggers", "show", "broken", env=env).stdout)
    assert shown["quarantined"]["reason"] == broken["quarantined"]["reason"]
    assert shown["quarantined"]["at"]

    released = run_cli("triggers", "enable", "broken", env=env)
    assert released.returncode == 0, released.stderr
    broken = taskq.Client().get_trigger("broken")
    assert broken["quarantined"] is None and broken["failures"] == 0
    work(r, 1, healthy=10)  # evaluated again: its sixth error, the first of a new count
    wait_for(lambda: len(outcomes("broken")) == 6, 30, message="broken evaluated again")
    assert taskq.Client().get_trigger("broken")["failures"] == 1
    assert taskq.Client().get_trigger("flaky")["failures"] == 0
