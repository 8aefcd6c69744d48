"""A stored event judged before its body is decoded: the index keys, the ``taskq run`` tag
and the event itself must be exactly what the decoded event gives, or what-if and replay
would skip an event the matcher takes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from taskq import constants
from taskq.core.events import Event, is_local
from taskq.core.logged import LoggedEvent
from taskq.core.matching import Rule, RuleIndex, lookup_keys
from tests.unit.factories import make_event, make_rule, run_uuid
from tests.unit.test_rules import _events, _rules


def logged(event: Event, seq: int = 1) -> LoggedEvent:
    return LoggedEvent.of(seq, event.namespace, event.kind, event.ref, event.model_dump_json())


@settings(max_examples=200, deadline=None)
@given(rules=_rules(), event=_events(), tags=st.sampled_from([None, [], ["a"],
                                                              [constants.LOCAL_TAG]]))
def test_an_undecoded_event_may_match_whenever_the_index_matches_it(
        rules: list[Rule], event: Event, tags: list[str] | None) -> None:
    if tags is not None:
        event = event.model_copy(update={"payload": {**event.payload, "tags": tags}})
    index, row = RuleIndex(rules), logged(event)
    assert row.index_keys() == lookup_keys(event.namespace, event.kind, event.ref,
                                     event.payload.get("job"))
    assert row.local == is_local(event)
    assert row.event() == event
    if index.match(event):
        assert index.may_match(row.index_keys())
    if not index.may_match(row.index_keys()):
        assert index.match(event) == []


def test_only_a_run_event_reads_its_payload() -> None:
    run = make_event(kind="run_status_succeeded", ref=f"runs.{run_uuid(1)}", job="train",
                     payload={"tags": [constants.LOCAL_TAG]})
    row = logged(run)
    assert (row.job, row.tags, row.local) == ("train", [constants.LOCAL_TAG], True)
    assert ("default", "run_status_done", "jobs.train") in row.index_keys()
    published = make_event(kind="custom_event", ref="events.work", job="train",
                           payload={"tags": [constants.LOCAL_TAG]})
    row = logged(published)
    assert (row.job, row.tags, row.local) == (None, None, False)
    assert row.index_keys() == [("default", "custom_event", "events.work"),
                          ("default", "custom_event", "events.*")]
    index = RuleIndex([make_rule(ref="jobs.train", kinds=("run_status_done",))])
    assert index.may_match(logged(run).index_keys()) and not index.may_match(row.index_keys())
