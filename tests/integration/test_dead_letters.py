"""Dead letters on real Redis: delivery counts that survive a restart, each entry's own
reason, and ``taskq events dead --replay`` (once per dead letter, never firing twice)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import taskq
from taskq import constants
from taskq.core.events import Event, custom_event
from taskq.core.stored import Entry
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.test_exactly_once import drained
from tests.integration.test_poison import PROBE, add_probe_trigger, fired_event_ids

pytestmark = pytest.mark.integration


class Refuses:
    """An observer that fails on every probe event, with the event's own message."""

    def begin_batch(self, rt: Any) -> None:
        pass

    def observe(self, rt: Any, event: Event) -> None:
        if event.ref == f"events.{PROBE}":
            raise ValueError(f"refused probe {event.payload['fields']['i']}")


def test_pending_reads_report_delivery_counts(settings, r) -> None:
    """Failure: read(pending=True) said deliveries=1 whatever Redis counted."""
    bus = taskq.Client().rt.bus
    bus.append(custom_event(PROBE, {"i": 0}))
    assert [e.deliveries for e in bus.read("me", block_ms=None)] == [1]
    assert [e.deliveries for e in bus.read("me", pending=True)] == [2]
    assert [e.deliveries for e in bus.read("me", pending=True)] == [3]


def test_a_restarted_evaluator_dead_letters_with_each_entrys_own_error(settings, r) -> None:
    """Failure: an evaluator restarted under the same name re-read its pending list with
    deliveries=1, so never reached max deliveries; and a dead letter quoted the
    evaluator's last error rather than the entry's own."""
    from taskq.runtime import get_runtime
    from taskq.services.evaluator import Evaluator

    rt = get_runtime()
    ids = [rt.bus.append(custom_event(PROBE, {"i": i})) for i in range(2)]

    def restarted() -> Evaluator:
        return Evaluator(rt, "same-name", kinds=rt.kinds, observers=(Refuses(),))

    restarted().run_once(block_ms=10)
    for _ in range(rt.settings.max_deliveries + 1):
        restarted().recover()  # a restart re-reads its own pending list first
        if rt.bus.dead_letters():
            break
    dead = {d["stream_id"]: d["reason"] for d in rt.bus.dead_letters()}
    assert sorted(dead) == sorted(ids)
    for i, sid in enumerate(ids):
        assert f"ValueError: refused probe {i}" in dead[sid], dead[sid]
        assert f"refused probe {1 - i}" not in dead[sid], dead[sid]


def probes_in_stream(r: Any) -> int:
    """Probe events in the stream (the clones' queued events are there too)."""
    return sum(json.loads(f[b"event"])["ref"] == f"events.{PROBE}"
               for _, f in r.xrange(constants.EVENTS_STREAM))


def dead_letter(bus: Any, event: Event) -> str:
    bus.dead_letter(Entry("0-1", event.to_fields(), 6), "made up for the test")
    return str(bus.dead_letters(1)[0]["id"])


def test_dead_letters_replay_once_each_and_fire_once(stack, settings, r) -> None:
    trigger = add_probe_trigger()
    stack.evaluator()
    bus = taskq.Client().rt.bus
    fired = custom_event(PROBE, {"i": 0})
    bus.append(fired)
    wait_for(lambda: fired_event_ids(trigger) == [fired.id], 30, message="first firing")
    lost = [custom_event(PROBE, {"i": i}) for i in (1, 2, 3)]
    dead_ids = [dead_letter(bus, e) for e in (fired, *lost)]
    env = env_for(settings)
    refused = run_cli("events", "dead", "--replay", dead_ids[1], env=env)
    assert refused.returncode != 0 and "--admin" in refused.stderr, refused.stderr
    env["TASKQ_ADMIN"] = "1"  # dead letters may hold every namespace's events

    one = run_cli("events", "dead", "--replay", dead_ids[1], env=env)
    assert one.returncode == 0, one.stderr
    assert "1 dead letter(s) replayed" in one.stdout, one.stdout
    again = run_cli("events", "dead", "--replay", dead_ids[1], env=env)
    assert again.returncode != 0 and "no dead letter" in again.stderr, again.stderr
    wait_for(lambda: lost[0].id in fired_event_ids(trigger), 30, message="replayed firing")

    rest = run_cli("events", "dead", "--replay", "--all", env=env)
    assert rest.returncode == 0, rest.stderr
    assert "3 dead letter(s) replayed" in rest.stdout, rest.stdout
    wait_for(lambda: drained(r), 30, message="stream drained")
    wait_for(lambda: len(fired_event_ids(trigger)) == 4, 30, message="every event fired")
    assert fired_event_ids(trigger) == sorted(e.id for e in (fired, *lost))
    assert bus.dead_letters() == []
    assert probes_in_stream(r) == 1 + 4  # each dead letter re-appended once
    assert run_cli("events", "dead", "--replay", env=env).returncode != 0


def test_a_replay_race_appends_each_dead_letter_once(settings, r) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = taskq.Client(admin=True)
    rt = client.rt
    for i in range(20):
        dead_letter(rt.bus, custom_event(PROBE, {"i": i}))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: client.replay_dead_letters(), range(4)))
    assert sum(len(x) for x in results) == 20
    assert probes_in_stream(r) == 20
    assert rt.bus.dead_letters() == []
