"""Payload filters: each operator as a user writes it, the refusals naming the field, the
index returning exactly what checking every rule returns (fuzzed), and explain naming the
clause and the value seen."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticError

from taskq.core.events import Event, custom_event
from taskq.core.explaining import mismatch
from taskq.core.matching import EventTrigger, Rule, RuleIndex
from taskq.core.payload import compile_filter
from taskq.core.stored import StoredTrigger
from taskq.core.triggers import chaining, default_kinds
from taskq.core.triggers.entity_spec import EntitySpec
from taskq.core.triggers.hook import Hook
from taskq.errors import FieldError, first_error
from tests.unit.factories import FIXED_TS

KINDS = default_kinds()


def matches(pattern: dict[str, Any], payload: dict[str, Any]) -> bool:
    return compile_filter(pattern).matches(payload)


@pytest.mark.parametrize("pattern,yes,no", [
    ({"branch": ["main"]}, {"branch": "main"}, {"branch": "dev"}),
    ({"branch": "main"}, {"branch": "main"}, {"branch": "Main"}),  # a bare value: one value
    ({"n": [1]}, {"n": 1.0}, {"n": True}),  # 1 and 1.0 are one number; true is not 1
    ({"ok": [True]}, {"ok": True}, {"ok": 1}),
    ({"v": [None]}, {"v": None}, {}),  # null is a value, not a missing field
    ({"n": ["1"]}, {"n": "1"}, {"n": 1}),
    ({"b": [{"prefix": "release/"}]}, {"b": "release/2.1"}, {"b": "main"}),
    ({"f": [{"suffix": ".py"}]}, {"f": "train.py"}, {"f": "train.pyc"}),
    ({"u": [{"equals-ignore-case": "ADA"}]}, {"u": "ada"}, {"u": "adam"}),
    ({"w": [{"wildcard": "img-*-v*"}]}, {"w": "img-resnet-v3"}, {"w": "img-resnet"}),
    ({"w": [{"wildcard": "a\\*b"}]}, {"w": "a*b"}, {"w": "axb"}),
    ({"w": [{"wildcard": "a.c"}]}, {"w": "a.c"}, {"w": "abc"}),  # no regex in a wildcard
    ({"a": [{"numeric": [">=", 0.9]}]}, {"a": 0.9}, {"a": 0.85}),
    ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, {"a": 0}),
    ({"a": [{"numeric": ["=", 3]}]}, {"a": 3.0}, {"a": "3"}),  # numbers only
    ({"a": [{"exists": True}]}, {"a": None}, {"b": 1}),
    ({"a": [{"exists": False}]}, {"b": 1}, {"a": 0}),
    ({"s": [{"anything-but": "dev"}]}, {"s": "prod"}, {"s": "dev"}),
    ({"s": [{"anything-but": ["dev", "test"]}]}, {"s": "prod"}, {"s": "test"}),
    ({"s": [{"anything-but": "dev"}]}, {"s": "prod"}, {}),  # a missing field is no value
    ({"s": [{"anything-but": {"prefix": "tmp-"}}]}, {"s": "data"}, {"s": "tmp-1"}),
    ({"b": ["main", {"prefix": "release/"}]}, {"b": "release/1"}, {"b": "feature/x"}),
    ({"metric": {"accuracy": [{"numeric": [">=", 0.9]}]}},
     {"metric": {"accuracy": 0.95}}, {"metric": {"loss": 0.1}}),
    ({"tags": ["gpu"]}, {"tags": ["cpu", "gpu"]}, {"tags": ["cpu"]}),  # any element
    ({"commits": {"author": ["ada"]}}, {"commits": [{"author": "bob"}, {"author": "ada"}]},
     {"commits": [{"author": "bob"}]}),
    ({"tags": [{"exists": False}]}, {"tags": []}, {"tags": ["x"]}),  # [] holds no value
    ({"$or": [{"a": [1]}, {"b": [2]}]}, {"b": 2}, {"a": 2, "b": 1}),
    ({"x": ["y"], "$or": [{"a": [1]}, {"b": {"c": [2]}}]}, {"x": "y", "b": {"c": 2}},
     {"x": "z", "a": 1}),
    ({"m": {"$or": [{"a": [1]}, {"b": [2]}]}}, {"m": {"b": 2}}, {"b": 2}),  # relative
])
def test_each_operator(pattern: dict[str, Any], yes: dict[str, Any], no: dict[str, Any]
                       ) -> None:
    assert matches(pattern, yes)
    assert not matches(pattern, no)


def test_every_field_must_hold() -> None:
    p = {"branch": ["main"], "repo": [{"suffix": "/trainer"}]}
    assert matches(p, {"branch": "main", "repo": "acme/trainer"})
    assert not matches(p, {"branch": "main", "repo": "acme/other"})


def test_a_wildcard_takes_linear_time() -> None:
    # A backtracking matcher spends exponential time on this; RE2 does not.
    assert not matches({"w": [{"wildcard": "*a*a*a*a*a*a*a*a*a*a*b"}]}, {"w": "a" * 5000})


def refusal(pattern: Any) -> str:
    with pytest.raises(PydanticError) as caught:
        EventTrigger(ref="events.deploy", kinds=["custom_event"], payload=pattern)
    return first_error(caught.value, "event")


@pytest.mark.parametrize("pattern,message", [
    ({"metric": {"accuracy": [{"numeric": [">=", "high"]}]}},
     "event.payload.metric.accuracy[0].numeric[1]: \"high\" is not a finite number"),
    ({"a": [{"numeric": ["~", 1]}]}, "event.payload.a[0].numeric[0]: \"~\" is not a "
                                     "comparison"),
    ({"a": [{"numeric": [">"]}]}, "event.payload.a[0].numeric: takes comparisons"),
    ({"branch": {"prefix": "release/"}}, "event.payload.branch.prefix: 'prefix' is an "
                                         "operator: put it in the field's list"),
    ({"a": [{"prefixx": "x"}]}, "event.payload.a[0]: unknown operator 'prefixx'"),
    ({"a": [{"prefix": 3}]}, "event.payload.a[0].prefix: takes a string, got 3"),
    ({"a": [{"exists": "yes"}]}, "event.payload.a[0].exists: takes true or false"),
    ({"a": [{"prefix": "x", "suffix": "y"}]}, "event.payload.a[0]: an operator mapping "
                                              "has one key"),
    ({"a": []}, "event.payload.a: an empty list matches no payload"),
    ({"a": [[1]]}, "event.payload.a[0]: expected a value"),
    ({"a": [{"wildcard": "a\\b"}]}, "event.payload.a[0].wildcard: only \\* (a star)"),
    ({"a": [{"anything-but": {"numeric": [">", 1]}}]},
     "event.payload.a[0].anything-but: takes values, or one of"),
    ({"a": [{"anything-but": [{"x": 1}]}]}, "event.payload.a[0].anything-but[0]: takes "
                                            "values"),
    ({"$or": [{"a": [1]}]}, "event.payload.$or: takes a list of at least two"),
    ({"$or": [{"a": [1]}, {"b": [{"numeric": [1]}]}]},
     "event.payload.$or[1].b[0].numeric: takes comparisons"),
    ({"$and": []}, "event.payload.$and: unknown operator '$and'"),
    ({}, "event.payload: an empty payload filter matches every payload"),
    ("branch=main", "event.payload: a payload filter is a mapping"),
    ({"a": [float("nan")]}, "event.payload: must be plain JSON"),
])
def test_a_wrong_filter_is_refused_naming_the_field(pattern: Any, message: str) -> None:
    assert refusal(pattern).startswith(message), refusal(pattern)


def test_a_filter_is_stored_as_written_and_specs_without_one_are_unchanged() -> None:
    pattern = {"fields": {"branch": ["main", {"prefix": "release/"}]}}
    t = EventTrigger(ref="events.deploy", kinds=["custom_event"], payload=pattern)
    assert t.model_dump(mode="json")["payload"] == pattern
    assert EventTrigger.model_validate(t.model_dump(mode="json")) == t
    plain = EventTrigger(ref="events.deploy", kinds=["custom_event"])
    assert plain.model_dump(mode="json") == {"ref": "events.deploy", "kinds": ["custom_event"]}
    assert isinstance(FieldError("a", "b"), ValueError)


# -- every trigger kind ------------------------------------------------------------------


def row(kind: str, spec: dict[str, Any], job: str = "train") -> StoredTrigger:
    return StoredTrigger(id=1, name="t", namespace="default", kind=kind, spec=spec, job=job,
                         params={}, queue=None)


def deploy(branch: str) -> Event:
    return custom_event("deploy", {"branch": branch}, event_id=f"e-{branch}")


def run_event(job: str, tags: list[str], kind: str = "run_status_succeeded") -> Event:
    return Event(id=f"r-{'-'.join(tags)}", kind=kind, ref="runs.0f0e0d0c-0b0a-4908-8706-"
                 "050403020100", timestamp=FIXED_TS,
                 payload={"job": job, "uuid": "0f0e0d0c-0b0a-4908-8706-050403020100",
                          "status": kind.removeprefix("run_status_"), "tags": tags})


def fires(rule: Rule, event: Event) -> bool:
    return bool(RuleIndex([rule]).match(event))


def test_every_kind_takes_a_payload_filter() -> None:
    on_main = {"fields": {"branch": ["main"]}}
    event = KINDS.build_rule(row("event", {"ref": "events.deploy", "kinds": ["custom_event"],
                                           "payload": on_main}))
    assert fires(event, deploy("main")) and not fires(event, deploy("dev"))

    hook = KINDS.build_rule(row("hook", {"ref": "jobs.train", "hook": {
        "hubRef": "evaluate", "trigger": "succeeded", "payload": {"tags": ["gpu"]}}}))
    assert fires(hook, run_event("train", ["gpu"]))
    assert not fires(hook, run_event("train", ["cpu"]))

    _, spec = chaining.build_spec("default", [chaining.Upstream(job="train", payload={
        "tags": ["gpu"]})], [chaining.EventInput(name="deploy", payload=on_main)],
        mode="any", reset=None)
    join = KINDS.build_rule(row("join", spec.model_dump(mode="json")))
    assert fires(join, deploy("main")) and not fires(join, deploy("dev"))
    assert fires(join, run_event("train", ["gpu"]))
    assert not fires(join, run_event("train", ["cpu"]))

    model = KINDS.build_rule(row("model", {"family": "models", "target": "job",
                                           "on_publish": True, "payload": {
                                               "entity": {"name": [{"prefix": "resnet"}]}}}))
    entity = {"id": "m1", "name": "resnet50", "project": None, "published": True,
              "archived": False, "tags": []}
    published = Event(id="m", kind="model_published", ref="models.m1", timestamp=FIXED_TS,
                      payload={"entity": entity, "previous": {**entity, "published": False},
                               "actions": ["published"]})
    assert fires(model, published)
    other = published.model_copy(update={"payload": {**published.payload, "entity": {
        **entity, "name": "bert"}}})
    assert not fires(model, other)


def test_specs_stored_before_filters_build_as_they_did() -> None:
    _, spec = chaining.build_spec("default", [], [chaining.EventInput(name="deploy")],
                                  mode="all", reset=None)
    assert "payload" not in spec.model_dump(mode="json")["inputs"][0]
    assert "payload" not in chaining.EventInput(name="deploy").model_dump()
    hook = KINDS.build_rule(row("hook", {"ref": "jobs.train", "hook": {"hubRef": "evaluate"}}))
    assert "payload" not in hook.spec.spec()


# -- explain -----------------------------------------------------------------------------


def test_explain_names_the_clause_and_the_value_seen() -> None:
    rule = KINDS.build_rule(row("event", {"ref": "jobs.train", "kinds": [
        "run_status_succeeded"], "payload": {"metric": {"accuracy": [
            {"numeric": [">=", 0.9]}]}}}))
    event = run_event("train", []).model_copy(update={"payload": {
        "job": "train", "metric": {"accuracy": 0.85}}})
    assert mismatch(rule, event) == (
        "payload", "payload filter `payload.metric.accuracy` numeric >= 0.9, saw 0.85")
    absent = event.model_copy(update={"payload": {"job": "train"}})
    assert mismatch(rule, absent)[1] == ("payload filter `payload.metric.accuracy` numeric "
                                         ">= 0.9, saw nothing (the field is absent)")
    either = compile_filter({"$or": [{"a": ["x"]}, {"b": [{"prefix": "y"}]}]})
    assert either.miss({"a": "z"}) == ("payload filter `$or`: none of its 2 alternatives "
                                       "matched (the first: payload filter `payload.a` "
                                       "\"x\", saw \"z\")")


# -- the index returns what checking every rule returns ----------------------------------

FIELDS = ("a", "b")
SCALARS = st.one_of(st.sampled_from(["x", "y", "xy", "yx", "X", ""]), st.integers(-2, 2),
                    st.sampled_from([0.5, 1.0, True, False, None]))
OPERATOR = st.one_of(
    SCALARS,
    st.builds(lambda s: {"prefix": s}, st.sampled_from(["x", "y", ""])),
    st.builds(lambda s: {"suffix": s}, st.sampled_from(["x", "y"])),
    st.builds(lambda s: {"equals-ignore-case": s}, st.sampled_from(["x", "XY"])),
    st.builds(lambda s: {"wildcard": s}, st.sampled_from(["x*", "*y", "*", "x*y"])),
    st.builds(lambda s: {"anything-but": s}, st.one_of(SCALARS, st.lists(SCALARS,
                                                                        min_size=1))),
    st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["<", ">=", "="]),
              st.integers(-2, 2)),
    st.builds(lambda b: {"exists": b}, st.booleans()))
CLAUSE = st.lists(OPERATOR, min_size=1, max_size=3)
FLAT = st.dictionaries(st.sampled_from(FIELDS), CLAUSE, min_size=1, max_size=2)
PATTERN = st.one_of(
    FLAT,
    st.builds(lambda f, alts: {**f, "$or": alts}, st.dictionaries(
        st.sampled_from(FIELDS), CLAUSE, max_size=1), st.lists(FLAT, min_size=2, max_size=2)),
    st.builds(lambda f: {"n": f}, FLAT))
VALUE = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
PAYLOAD = st.fixed_dictionaries({}, optional={
    "a": VALUE, "b": VALUE, "n": st.dictionaries(st.sampled_from(FIELDS), VALUE)})
REFS = ("events.e1", "events.e2")


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(st.tuples(st.sampled_from(REFS), st.one_of(st.none(), PATTERN)),
                      min_size=1, max_size=25),
       events=st.lists(st.tuples(st.sampled_from(REFS), PAYLOAD), min_size=1, max_size=5))
def test_the_index_finds_exactly_the_rules_a_check_of_each_finds(
        rules: list[tuple[str, dict[str, Any] | None]],
        events: list[tuple[str, dict[str, Any]]]) -> None:
    built = [Rule(id=i, name=f"r{i}", namespace="default", job="train",
                  event=EventTrigger(ref=ref, kinds=["custom_event"], payload=p))
             for i, (ref, p) in enumerate(rules)]
    index = RuleIndex(built)
    for n, (ref, payload) in enumerate(events):
        event = Event(id=f"e{n}", kind="custom_event", ref=ref, timestamp=FIXED_TS,
                      payload=payload)
        naive = [r.id for r in built if r.input_for(event) is not None]
        assert [r.id for r in index.rules_for(event)] == naive


def test_ten_thousand_rules_differing_by_a_value_are_not_checked_one_by_one() -> None:
    checked: list[int] = []

    class Counting(Rule):
        def input_for(self, event: Event) -> Any:
            checked.append(self.id)
            return super().input_for(event)

    rules = [Counting(id=i, name=f"r{i}", namespace="default", job="train",
                      event=EventTrigger(ref="events.deploy", kinds=["custom_event"],
                                         payload={"fields": {"service": [f"svc-{i}"],
                                                             "env": [{"prefix": "prod"}]}}))
             for i in range(10_000)]
    index = RuleIndex(rules)
    event = custom_event("deploy", {"service": "svc-42", "env": "prod-eu"})
    assert [r.id for r in index.rules_for(event)] == [42]
    assert checked == [42]


def test_every_kind_refuses_a_wrong_filter_naming_the_field() -> None:
    with pytest.raises(PydanticError) as hook:
        Hook.model_validate({"hubRef": "evaluate", "payload": {"tags": [{"exists": 1}]}})
    assert first_error(hook.value, "hook") == ("hook.payload.tags[0].exists: takes true or "
                                               "false, got 1")
    with pytest.raises(ValueError, match=r"^trigger_on\[1\]: payload\.fields\.v\[0\]\.prefix"
                                         r": takes a string, got 2$"):
        chaining.parse("default", None, ["a", {"name": "b", "payload": {"fields": {
            "v": [{"prefix": 2}]}}}])
    with pytest.raises(ValueError, match=r"^trigger_on_finish\[0\]: payload: an empty "):
        chaining.parse("default", [{"job": "train", "payload": {}}], None)
    with pytest.raises(PydanticError) as entity:
        EntitySpec.model_validate({"family": "models", "target": "job",
                                   "payload": {"entity": {"name": [{"wildcard": 5}]}}})
    assert first_error(entity.value) == ("payload.entity.name[0].wildcard: takes a string, "
                                         "got 5")
