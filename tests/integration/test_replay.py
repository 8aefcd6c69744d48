"""`taskq events replay`: events that happened before a trigger existed fire it once when
replayed; a second replay fires nothing; a dry run says what would fire and writes nothing;
events outside the range, or of another trigger, are left alone. Real Redis, a real
database, a real evaluator and job worker."""

from __future__ import annotations

import json

import pytest

import taskq
from tests.conftest import env_for, marks, run_cli, wait_for
from tests.integration.test_exactly_once import drained

pytestmark = pytest.mark.integration


def test_replay_fires_what_newly_matches_once(stack, settings, r) -> None:
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], concurrency=2, wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    client = taskq.Client()
    ids = [taskq.publish_event("deploy", {"i": i}) for i in range(5)]
    wait_for(lambda: drained(r), 30, message="the events evaluated (nothing listens yet)")
    # Added after its events happened: nothing fires by itself.
    taskq.add_trigger(name="late", job="noop", event={"ref": "events.deploy",
                                                      "kinds": ["custom_event"]})
    taskq.add_trigger(name="other", job="noop", event={"ref": "events.other",
                                                       "kinds": ["custom_event"]})
    assert client.firings("late") == []

    env = env_for(settings)
    dry = run_cli("events", "replay", "--since", "1h", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] and planned["events"] >= 5 and planned["fired"] == 0
    assert sorted(e for e, _, name in planned["new"] if name == "late") == sorted(ids)
    assert client.firings("late") == []  # a dry run writes nothing

    done = run_cli("events", "replay", "--since", "1h", "--trigger", "late", env=env)
    assert done.returncode == 0, done.stderr
    assert "fired late for custom_event" in done.stdout
    wait_for(lambda: len(marks("noop")) >= 5, 60, message="five noop runs")
    firings = client.firings("late")
    assert sorted(f["event_id"] for f in firings) == sorted(ids)
    assert {f["outcome"] for f in firings} == {"fired"}

    again = client.replay_events("1h", trigger="late")
    assert (again["fired"], again["already"], again["new"]) == (0, 5, [])
    assert client.replay_events("1h", until="30m")["events"] == 0  # none that old
    with pytest.raises(taskq.ValidationError, match=r"^trigger: no enabled trigger named"):
        client.replay_events("1h", trigger="nosuch")
    with pytest.raises(taskq.ValidationError, match=r"^since: 'soon' is not a duration"):
        client.replay_events("soon")
    wait_for(lambda: drained(r), 30, message="stream drained")
    assert len(marks("noop")) == 5 and client.firings("other") == []
