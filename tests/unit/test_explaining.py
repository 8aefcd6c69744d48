"""The pure decision behind `taskq triggers explain` / `test`: each outcome from a rule, an
event and the facts read beforehand, with the evaluator's own matcher and planners."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from taskq.core.decision_facts import ArmFact, FiringFact, Recorded
from taskq.core.events import custom_event
from taskq.core.explaining import Decision, decide
from taskq.core.planning import Facts, dedup_key
from taskq.core.revisions import Revision, change_source, changes_by, in_force, of_version
from taskq.core.stored import JobTemplate, StoredTrigger
from taskq.core.times import parse_age
from taskq.core.triggers import chaining, default_kinds
from tests.unit.factories import FIXED_TS, make_event

KINDS = default_kinds()
TEMPLATE = JobTemplate(name="train", namespace="default", queue="train",
                       task_name="taskq.job.train",
                       inputs={"seconds": {"type": "float", "default": 1.0}})


def revision(version: int = 1, *, at_minutes: int = -1, action: str = "created",
             enabled: bool = True, quarantined: str | None = None,
             params: dict[str, Any] | None = None, inputs: tuple[str, ...] = ("work",),
             mode: str = "all") -> Revision:
    kind, spec = chaining.build_spec("default", [], [chaining.EventInput(name=n)
                                                     for n in inputs], mode=mode, reset=None)
    return Revision(id=version, trigger_id=7, name="sized", namespace="default",
                    version=version, action=action, kind=kind,
                    spec=spec.model_dump(mode="json"), job="train",
                    params=params if params is not None else {"seconds": "{{ fields.n }}"},
                    queue=None, enabled=enabled, quarantined=quarantined, source="python",
                    at=FIXED_TS + timedelta(minutes=at_minutes))


def work(n: Any = 0.5, name: str = "work", event_id: str = "e-1", namespace: str = "default"):
    event = custom_event(name, {"n": n}, namespace=namespace, event_id=event_id)
    return event.model_copy(update={"timestamp": FIXED_TS})


NOTHING = Recorded()


def judge(event, rev: Revision | None, recorded: Recorded = NOTHING, **kw: Any
          ) -> Decision:
    rule = KINDS.build_rule(rev.trigger()) if rev is not None and rev.exists else None
    return decide(event, revision=rev, rule=rule,
                  kind=KINDS.get(rule.kind) if rule else None, recorded=recorded,
                  template=TEMPLATE, facts=lambda m: Facts(default_queue="default"), **kw)


def test_no_revision_yet_deleted_disabled_and_quarantined() -> None:
    assert judge(work(), None).outcome == "not_yet"
    assert judge(work(), revision(2, action="deleted")).outcome == "deleted"
    off = judge(work(), revision(3, enabled=False))
    assert (off.outcome, off.version) == ("disabled", 3)
    q = judge(work(), revision(4, quarantined="5 evaluations in a row failed"))
    assert q.outcome == "quarantined" and "5 evaluations" in q.reason


@pytest.mark.parametrize("event,part", [
    (work(namespace="team-a"), "namespace"),
    (make_event(kind="run_status_queued", ref="events.work", job=None), "kind"),
    (work(name="other"), "ref"),
])
def test_not_matched_names_the_part(event, part: str) -> None:
    d = judge(event, revision())
    assert (d.outcome, d.part) == ("not_matched", part), d.reason


def test_a_recorded_firing_wins_and_names_its_version() -> None:
    event = work()
    fired = FiringFact(id=3, trigger_id=7, dedup_key=dedup_key(event), event_id=event.id,
                       outcome="fired", run_uuid="r-1", version=1, run_status="queued",
                       run_queue="train")
    d = judge(event, revision(2, enabled=False), Recorded(firings=[fired]))
    assert (d.outcome, d.version, d.firing_id) == ("fired", 1, 3)
    assert d.run == {"uuid": "r-1", "status": "queued", "queue": "train"}
    error = FiringFact(id=4, trigger_id=7, dedup_key=dedup_key(event), event_id=event.id,
                       outcome="error", reason="params.seconds: ZeroDivisionError")
    assert judge(event, revision(), Recorded(firings=[error])).outcome == "error"


def test_duplicate_of_another_event_with_the_same_key() -> None:
    first = make_event(kind="run_status_succeeded", event_id="a")
    again = make_event(kind="run_status_succeeded", event_id="b")
    rev = Revision(id=1, trigger_id=7, name="h", namespace="default", version=1,
                   action="created", kind="event",
                   spec={"ref": "jobs.train", "kinds": ["run_status_succeeded"]},
                   job="train", params={}, queue=None, enabled=True, quarantined=None,
                   source="python", at=FIXED_TS - timedelta(minutes=1))
    firing = FiringFact(id=9, trigger_id=7, dedup_key=dedup_key(first), event_id="a",
                        outcome="fired", run_uuid="r")
    d = judge(again, rev, Recorded(firings=[firing]))
    assert d.outcome == "duplicate" and "firing 9" in d.reason


def test_dry_run_plans_params_and_render_errors() -> None:
    d = judge(work(0.25), revision(), dry_run=True)
    assert d.outcome == "would_fire" and d.params == {"seconds": 0.25}
    assert d.run is not None and d.run["queue"] == "train"
    bad = judge(work("x"), revision(params={"seconds": "{{ fields.n // 0 }}"}), dry_run=True)
    assert bad.outcome == "error" and "params.seconds" in bad.reason
    assert judge(work(), revision()).outcome == "would_fire"  # evaluated, nothing recorded
    assert judge(work(), revision(), evaluated=False).outcome == "pending"


def test_join_waiting_armed_missing_and_completed() -> None:
    rev = revision(inputs=("a", "b"))
    a = work(name="a", event_id="ea")
    arm = ArmFact(trigger_id=7, input_key="a", dedup_key=dedup_key(a), event_id="ea",
                  state="armed", at=FIXED_TS, event=a)
    waiting = judge(a, rev, Recorded(arms=[arm]))
    assert (waiting.outcome, waiting.armed, waiting.missing) == ("waiting", ("a",), ("b",))
    assert waiting.arms == ({"input": "a", "event_id": "ea", "at": FIXED_TS.isoformat(),
                             "drops_at": None},) and waiting.next_reset is None
    b = work(name="b", event_id="eb")
    dry = judge(b, rev, Recorded(arms=[arm]), dry_run=True)
    assert dry.outcome == "would_fire" and dry.missing == ()
    consumed = ArmFact(trigger_id=7, input_key="a", dedup_key=dedup_key(a), event_id="ea",
                       state="consumed", firing_id=5, at=FIXED_TS, event=a)
    fired = FiringFact(id=5, trigger_id=7, dedup_key="join:x", event_id="eb",
                       outcome="fired", run_uuid="r-5")
    done = judge(a, rev, Recorded(firings=[fired], arms=[consumed]))
    assert done.outcome == "fired" and done.firing_id == 5 and "join" in done.reason


def test_join_windows_say_when_they_drop_an_input() -> None:
    def windowed(reset: Any) -> Revision:
        kind, spec = chaining.build_spec("default", [], [chaining.EventInput(name=n)
                                                         for n in ("a", "b")], mode="all",
                                         reset=reset)
        return Revision(id=1, trigger_id=7, name="sized", namespace="default", version=1,
                        action="created", kind=kind, spec=spec.model_dump(mode="json"),
                        job="train", params={}, queue=None, enabled=True, quarantined=None,
                        source="python", at=FIXED_TS - timedelta(minutes=1))

    a = work(name="a", event_id="ea")
    arm = ArmFact(trigger_id=7, input_key="a", dedup_key=dedup_key(a), event_id="ea",
                  state="armed", at=FIXED_TS, event=a)
    timed = judge(a, windowed(600), Recorded(arms=[arm]))
    assert timed.arms[0]["drops_at"] == (FIXED_TS + timedelta(seconds=600)).isoformat()
    assert "the reset window (600s) drops a at" in timed.reason
    hourly = judge(work(name="a", event_id="new"), windowed("0 * * * *"), dry_run=True)
    top = FIXED_TS.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert hourly.outcome == "waiting" and hourly.next_reset == top.isoformat()
    assert hourly.arms[0]["event_id"] == "new" and hourly.missing == ("b",)
    expired = ArmFact(trigger_id=7, input_key="a", dedup_key=dedup_key(a), event_id="ea",
                      state="expired", at=FIXED_TS, event=a)
    dropped = judge(a, windowed(600), Recorded(arms=[expired]))
    assert dropped.outcome == "expired" and "dropped it at" in dropped.reason


def test_revision_in_force_and_by_version() -> None:
    revs = [revision(1, at_minutes=-10), revision(2, at_minutes=-5)]
    assert in_force(revs, FIXED_TS - timedelta(minutes=11)) is None
    assert in_force(revs, FIXED_TS - timedelta(minutes=7)) == revs[0]
    assert in_force(revs, FIXED_TS) == revs[1]
    assert of_version(revs, 7, 1) == revs[0] and of_version(revs, 8, 1) is None
    assert revs[0].trigger() == StoredTrigger(
        id=7, name="sized", namespace="default", kind=revs[0].kind, spec=revs[0].spec,
        job="train", params=revs[0].params, queue=None, version=1)


def test_change_source_and_ages() -> None:
    assert change_source() == "python"
    with changes_by("yaml"):
        assert change_source() == "yaml"
    assert change_source() == "python"
    with pytest.raises(ValueError), changes_by("somebody"):
        pass
    assert parse_age("1h") == timedelta(hours=1) and parse_age("90") == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_age("soon")


def test_recorded_answers_each_lookup_with_the_first_record_that_fits() -> None:
    first = FiringFact(id=1, trigger_id=7, dedup_key="k", event_id="e-1", outcome="fired")
    again = FiringFact(id=2, trigger_id=7, dedup_key="k", event_id="e-2", outcome="error")
    other = FiringFact(id=3, trigger_id=8, dedup_key="k", event_id="e-1", outcome="fired")
    armed = ArmFact(trigger_id=7, input_key="a", dedup_key="d", event_id="e-1",
                    state="armed")
    later = ArmFact(trigger_id=7, input_key="a", dedup_key="d2", event_id="e-1",
                    state="expired")
    known = Recorded(firings=[first, again, other], arms=[armed, later])
    assert known.firing(7, "k") is first and known.firing(8, "k") is other
    assert known.firing(7, "x") is None and known.firing_by_id(2) is again
    assert known.arm(7, "e-1") is armed and known.arm(8, "e-1") is None
    assert known.armed(7) == [armed] and known.armed(8) == []
    known.armed(7).clear()  # a caller's list, not the index
    assert known.armed(7) == [armed]
    assert known == Recorded(firings=[first, again, other], arms=[armed, later])
