"""Trigger specs and the in-memory matcher the evaluator runs for every event."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from taskq.core.events import Event
from taskq.core.kinds import refusal
from taskq.core.matching import EventTrigger, Rule, RuleIndex
from taskq.core.statuses import FINAL, Status
from tests.unit.factories import FIXED_TS, make_event, make_rule, run_uuid

# -- EventTrigger -------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["{{ jobs.train }}", "{{jobs.train}}", "  jobs.train  ",
                                 "jobs.train"])
def test_trigger_accepts_braces_and_whitespace(ref: str) -> None:
    """Polyaxon documents refs as ``{{ ops.x }}``; both spellings must store the bare ref."""
    assert EventTrigger(ref=ref, kinds=["run_status_done"]).ref == "jobs.train"


def test_trigger_accepts_a_single_kind_string() -> None:
    trigger = EventTrigger(ref="jobs.train", kinds="run_status_done")  # type: ignore[arg-type]
    assert trigger.kinds == ("run_status_done",)


def test_trigger_dedups_kinds_keeping_order() -> None:
    trigger = EventTrigger(ref="jobs.train", kinds=["run_status_failed", "run_status_done",
                                                    "run_status_failed"])
    assert trigger.kinds == ("run_status_failed", "run_status_done")


def test_trigger_refuses_empty_kinds() -> None:
    with pytest.raises(ValidationError, match="kinds") as info:
        EventTrigger(ref="jobs.train", kinds=[])
    assert "at least 1" in str(info.value)


@pytest.mark.parametrize(("ref", "reason"), [
    ("nope", "ref 'nope' is malformed"),
    ("{{ runs.abc }}", "'abc' is not a run uuid"),
    ("jobs.", "is malformed"),
    ("{{ }}", "is malformed"),
])
def test_trigger_refuses_bad_refs(ref: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        EventTrigger(ref=ref, kinds=["run_status_done"])
    assert info.value.errors()[0]["loc"] == ("ref",)
    assert reason in str(info.value)


@pytest.mark.parametrize(("kinds", "reason"), [
    (["run_status_bogus"], "'run_status_bogus' is not a run status event"),
    (["BAD"], "kind 'BAD' is malformed"),
    (["run_status_done", ""], "kind '' is malformed"),
])
def test_trigger_refuses_bad_kinds(kinds: list[str], reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        EventTrigger(ref="jobs.train", kinds=kinds)
    assert info.value.errors()[0]["loc"] == ("kinds",)
    assert reason in str(info.value)


def test_trigger_is_frozen_and_rejects_extra_fields() -> None:
    trigger = EventTrigger(ref="jobs.train", kinds=["run_status_done"])
    with pytest.raises(ValidationError):
        trigger.ref = "jobs.other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        EventTrigger(ref="jobs.train", kinds=["run_status_done"], when="x")  # type: ignore[call-arg]


def test_rule_keys_one_per_kind() -> None:
    rule = make_rule(7, ref="jobs.train", kinds=("run_status_done", "run_status_failed"),
                     namespace="team-a")
    assert rule.index_keys() == [("team-a", "run_status_done", "jobs.train"),
                           ("team-a", "run_status_failed", "jobs.train")]


# -- RuleIndex ----------------------------------------------------------------------------


def test_empty_index_matches_nothing() -> None:
    index = RuleIndex()
    assert len(index) == 0
    assert index.rules_for(make_event()) == []


def test_index_counts_rules_not_keys() -> None:
    rules = [make_rule(1, kinds=("run_status_done", "run_status_failed")), make_rule(2)]
    assert len(RuleIndex(rules, version=3)) == 2
    assert RuleIndex(rules, version=3).version == 3


def test_namespace_isolation() -> None:
    """A tenant's trigger must never fire on another tenant's runs."""
    rule = make_rule(1, kinds=("run_status_succeeded",), namespace="team-a")
    index = RuleIndex([rule])
    assert index.rules_for(make_event(kind="run_status_succeeded", namespace="default")) == []
    assert index.rules_for(make_event(kind="run_status_succeeded", namespace="team-a")) == [rule]


@pytest.mark.parametrize("final", sorted(FINAL), ids=lambda s: s.value)
def test_done_rule_matches_every_final_status(final: Status) -> None:
    rule = make_rule(1, kinds=("run_status_done",))
    assert RuleIndex([rule]).rules_for(make_event(kind=f"run_status_{final.value}")) == [rule]


@pytest.mark.parametrize("status", [Status.RUNNING, Status.QUEUED, Status.RETRYING,
                                    Status.STOPPING])
def test_done_rule_ignores_non_final_statuses(status: Status) -> None:
    rule = make_rule(1, kinds=("run_status_done",))
    assert RuleIndex([rule]).rules_for(make_event(kind=f"run_status_{status.value}")) == []


def test_run_rule_matches_only_that_run() -> None:
    rule = make_rule(1, ref=f"runs.{run_uuid(1)}", kinds=("run_status_succeeded",))
    index = RuleIndex([rule])
    assert index.rules_for(make_event(kind="run_status_succeeded", ref=f"runs.{run_uuid(1)}")) == [
        rule]
    assert index.rules_for(make_event(kind="run_status_succeeded", ref=f"runs.{run_uuid(2)}")) == []


def test_job_rule_matches_only_runs_of_that_job() -> None:
    rule = make_rule(1, ref="jobs.train", kinds=("run_status_succeeded",))
    index = RuleIndex([rule])
    assert index.rules_for(make_event(kind="run_status_succeeded", job="train")) == [rule]
    assert index.rules_for(make_event(kind="run_status_succeeded", job="other")) == []


def test_match_is_deduped_and_ordered_by_rule_id() -> None:
    """A rule listening to both ``succeeded`` and ``done`` (and by job and run ref) fires once."""
    ref = f"runs.{run_uuid()}"
    both_kinds = make_rule(9, kinds=("run_status_succeeded", "run_status_done"))
    by_run = make_rule(2, ref=ref, kinds=("run_status_done", "run_status_succeeded"))
    by_job = make_rule(5, kinds=("run_status_done",))
    other = make_rule(1, kinds=("run_status_failed",))
    index = RuleIndex([both_kinds, by_run, by_job, other])
    matched = index.rules_for(make_event(kind="run_status_succeeded", ref=ref, job="train"))
    assert [r.id for r in matched] == [2, 5, 9]


# -- property: the index agrees with a brute-force scan ----------------------------------

_JOBS = ["train", "viz", "eval"]
_NAMESPACES = ["default", "team-a", "team-b"]
_RUNS = [run_uuid(i) for i in range(3)]
_KINDS = [f"run_status_{s.value}" for s in (Status.RUNNING, Status.SUCCEEDED, Status.FAILED,
                                            Status.STOPPED, Status.QUEUED)]
_KINDS += ["custom_event"]
_RULE_KINDS = [*_KINDS, "run_status_done"]
_REFS = [f"jobs.{j}" for j in _JOBS] + [f"runs.{u}" for u in _RUNS] + ["events.ping"]


@st.composite
def _rules(draw: st.DrawFn) -> list[Rule]:
    count = draw(st.integers(min_value=0, max_value=12))
    ids = draw(st.lists(st.integers(min_value=1, max_value=1000), min_size=count,
                        max_size=count, unique=True))
    refs = [draw(st.sampled_from(_REFS)) for _ in ids]
    # Only kinds the ref can send: anything else is refused at registration.
    return [
        make_rule(rule_id, ref=ref,
                  kinds=tuple(draw(st.lists(st.sampled_from(
                      [k for k in _RULE_KINDS if refusal(k, ref) is None]), min_size=1,
                      max_size=3))),
                  namespace=draw(st.sampled_from(_NAMESPACES)))
        for rule_id, ref in zip(ids, refs, strict=True)
    ]


@st.composite
def _events(draw: st.DrawFn) -> Event:
    ref = draw(st.sampled_from(_REFS))
    job = draw(st.one_of(st.none(), st.sampled_from(_JOBS)))
    payload = {} if job is None else {"job": job}
    return Event(id="e", kind=draw(st.sampled_from(_KINDS)), ref=ref,
                 namespace=draw(st.sampled_from(_NAMESPACES)), timestamp=FIXED_TS,
                 payload=payload)


def _brute_force(rules: list[Rule], event: Event) -> list[Rule]:
    return sorted(
        (r for r in rules
         if r.namespace == event.namespace
         and r.event.ref in event.match_refs()
         and any(k in event.match_kinds() for k in r.event.kinds)),
        key=lambda r: r.id,
    )


@settings(max_examples=200, deadline=None)
@given(rules=_rules(), event=_events())
def test_index_agrees_with_brute_force(rules: list[Rule], event: Event) -> None:
    """The keyed lookup must find exactly the rules a full scan would, each once."""
    matched = RuleIndex(rules).rules_for(event)
    assert [r.id for r in matched] == [r.id for r in _brute_force(rules, event)]
    assert all(m is next(r for r in rules if r.id == m.id) for m in matched)


@pytest.mark.parametrize("kinds", [None, 5, {"run_status_running": 1}])
def test_kinds_of_the_wrong_type_are_a_validation_error(kinds: object) -> None:
    """Bad user input is a clear validation error, never a TypeError from deep inside."""
    with pytest.raises(ValidationError, match="must be a list of event kinds"):
        EventTrigger(ref="jobs.train", kinds=kinds)  # type: ignore[arg-type]


def test_run_refs_are_normalised_so_they_match_emitted_events() -> None:
    u = uuid.uuid4()
    assert EventTrigger(ref=f"runs.{str(u).upper()}", kinds=["run_status_running"]).ref == \
        f"runs.{u}"
    assert EventTrigger(ref=f"runs.{u.hex}", kinds=["run_status_running"]).ref == f"runs.{u}"
