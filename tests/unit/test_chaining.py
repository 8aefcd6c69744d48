"""Chaining specs, lineage, payload mapping and reset windows: pure, no services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskq.api.records import Trigger
from taskq.core import cron
from taskq.core.events import custom_event
from taskq.core.matching import RuleIndex
from taskq.core.planning import mapped_params
from taskq.core.triggers import chaining, default_kinds
from taskq.errors import JobError
from tests.unit.factories import (
    FIXED_TS,
    job_template,
    lineage_of,
    make_event,
    run_uuid,
    stored_trigger,
)

TEMPLATE = job_template(inputs={"x": {"type": "int", "default": 0},
                               "version": {"type": "str", "required": True}})


def rule(kind_inputs: dict, mode: str = "all", rid: int = 1, namespace: str = "default"):
    upstream, events = (kind_inputs.get("upstream", []), kind_inputs.get("events", []))
    ups, evs, mode, reset = chaining.parse(namespace, upstream or None, events or None, mode)
    kind, spec = chaining.build_spec(namespace, ups, evs, mode=mode, reset=reset)
    return default_kinds().build_rule(stored_trigger({
        "id": rid, "name": f"r{rid}", "namespace": namespace, "kind": kind,
        "spec": spec.model_dump(mode="json"), "job": "target", "params": {}, "queue": None,
        "version": 1}))


def ext(name: str, fields: dict | None = None, at: int = 0, namespace: str = "default"):
    event = custom_event(name, fields, namespace=namespace)
    return event.model_copy(update={"timestamp": FIXED_TS + timedelta(seconds=at)})


def test_kinds_follow_what_is_listed() -> None:
    assert rule({"upstream": ["a"]}).kind == chaining.FINISH
    assert rule({"events": ["e"]}).kind == chaining.EVENTS
    mixed = rule({"upstream": ["a"], "events": ["e"]})
    assert mixed.kind == chaining.JOIN and mixed.is_join


@pytest.mark.parametrize(("upstream", "events", "mode", "message"), [
    (None, None, "all", "name at least one job or event"),
    (["a"], None, "both", "mode: 'both'"),
    (["bad name"], None, "all", "trigger_on_finish[0]: job: job name 'bad name'"),
    (None, [{"name": "e", "parameters": ["x", "x"]}], "all", "mapped twice"),
    (None, [{"nam": "e"}], "all", "trigger_on[0]"),
    (None, [3], "all", "trigger_on[0]: expected an event name"),
])
def test_parse_names_the_argument(upstream, events, mode, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        chaining.parse("default", upstream, events, mode)


def test_namespaced_upstream_and_job_names_with_dots() -> None:
    ups, _, _, _ = chaining.parse("team-a", ["default.training", "my.model.v2", "x"], None)
    assert [(u.namespace, u.job) for u in ups] == [("default", "training"),
                                                   ("my", "model.v2"), (None, "x")]
    r = rule({"upstream": ["default.training", "own"]}, namespace="team-a")
    assert [(i.key, i.namespace) for i in r.all_inputs()] == [
        ("default.training", "default"), ("own", "team-a")]


def test_join_inputs_index_in_their_own_namespace() -> None:
    r = rule({"upstream": ["default.training"]}, namespace="team-a")
    index = RuleIndex([r])
    done = make_event(kind="run_status_succeeded", job="training", namespace="default")
    assert index.rules_for(done) == [r]
    assert index.rules_for(done.model_copy(update={"namespace": "team-a"})) == []


def test_declared_options_are_checked() -> None:
    with pytest.raises(ValueError, match="trigger_options: unknown option 'window'"):
        chaining.declared("default", "a", None, {"window": 3})
    with pytest.raises(ValueError, match=r"trigger_options\.reset"):
        chaining.declared("default", "a", None, {"reset": -1})
    assert chaining.declared("default", "a", ["e"], {"mode": "any"})["mode"] == "any"


def test_mapped_params_map_default_and_refuse() -> None:
    r = rule({"events": [{"name": "release", "parameters": {"version": "tag"}}, "other"]})
    got = mapped_params(r, {"release": ext("release", {"tag": "v1"}),
                            "other": ext("other", {"x": 4, "y": 1})}, TEMPLATE)
    assert got == {"version": "v1", "x": 4}  # unmapped: same-named declared inputs only
    with pytest.raises(JobError, match=r"params\.version: event .release. has no field"):
        mapped_params(r, {"release": ext("release", {})}, TEMPLATE)
    lenient = rule({"events": [{"name": "e", "parameters": {"x": "missing"}}]})
    assert mapped_params(lenient, {"e": ext("e")}, TEMPLATE) == {}


def test_lineage_types_and_order() -> None:
    one = rule({"upstream": ["train"]})
    done = make_event(kind="run_status_succeeded", job="train")
    lin = lineage_of(one, done)
    assert lin["type"] == "RUN" and lin["events"][0]["key"] == "train"
    assert lin["run"]["uuid"] == run_uuid()
    both = rule({"events": ["a", "b"]})
    events = {"a": ext("a", at=1), "b": ext("b", at=5)}
    lin = lineage_of(both, events["a"], events)
    assert lin["type"] == "MANY-EVENTS" and [e["key"] for e in lin["events"]] == ["b", "a"]
    assert lin["run"] is None
    either = rule({"events": ["a", "b"]}, mode="any")
    assert lineage_of(either, events["a"])["type"] == "ONE-OF-EVENTS"
    mixed = rule({"upstream": ["train"], "events": ["a"]})
    assert lineage_of(mixed, done, {"train": done, "a": events["a"]})["type"] == "MIXED"


def test_trigger_view_reads_lineage_lazily() -> None:
    loads: list[str] = []

    class FakeRun:
        def __init__(self, uuid: str) -> None:
            self.uuid, self.outputs = uuid, {"model": {"x": 1}}

    def load(uuid: str):
        loads.append(uuid)
        return FakeRun(uuid)

    r = rule({"upstream": ["train"], "events": ["go"]})
    done = make_event(kind="run_status_succeeded", job="train")
    go = ext("go", {"k": 1}, at=3600)
    trig = Trigger({"trigger": "t", **lineage_of(r, go, {"train": done, "go": go})},
                   load)  # type: ignore[arg-type]
    assert trig.type == "MIXED" and trig.event is not None and trig.event.name == "go"
    assert loads == []
    assert trig["go"].fields == {"k": 1}
    assert trig["train"].uuid == run_uuid() and trig.data is not None
    assert trig.data.model == {"x": 1} and loads == [run_uuid()]  # loaded once, on demand
    with pytest.raises(AttributeError, match="has no output 'weights'"):
        _ = trig.data.weights
    with pytest.raises(KeyError, match="no triggering run or event named 'zzz'"):
        trig["zzz"]
    assert "go" in trig and "train" in trig and len(list(trig)) == 2


def test_reset_seconds_and_cron() -> None:
    at = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert cron.reset_boundary(None, at) is None
    assert cron.reset_boundary(90, at) == at - timedelta(seconds=90)
    assert cron.reset_boundary("0 0 * * *", at) == datetime(2026, 11, 24, tzinfo=UTC)
    assert cron.reset_boundary("45 * * * *", at) == datetime(2026, 11, 24, 9, 45,
                                                                 tzinfo=UTC)
    # Mondays at 06:00: 2026-11-24 is a Tuesday.
    assert cron.reset_boundary("0 6 * * 1", at) == datetime(2026, 11, 23, 6, 0,
                                                                tzinfo=UTC)
    for bad in ("every day", "* * *", "61 * * * *", 0, -5, True):
        with pytest.raises(ValueError, match="reset"):
            cron.check_reset(bad)  # type: ignore[arg-type]


@given(minute=st.integers(0, 59), hour=st.integers(0, 23), days=st.integers(0, 800))
def test_previous_tick_is_never_after_now_and_matches(minute: int, hour: int,
                                                      days: int) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=days, hours=hour, minutes=minute)
    tick = cron.reset_boundary("*/7 3,15 * * *", at)
    assert tick is not None and tick <= at and tick.minute % 7 == 0 and tick.hour in (3, 15)
    assert at - tick < timedelta(days=1)
