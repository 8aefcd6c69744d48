"""The pure half of dispatch: dedup keys, deterministic clone uuids and the firing plan."""

from __future__ import annotations

import uuid
from typing import Any

from taskq.core.planning import Delivery, clone_uuid, dedup_key
from tests.unit.factories import make_event, make_rule, plan_firing, run_uuid, template_context

TEMPLATE: dict[str, Any] = {
    "queue": "viz",
    "task_name": "taskq.job.viz",
    "project": "proj",
    "inputs": {
        "upstream": {"type": "str"},
        "lr": {"type": "float", "default": 0.1},
        "epochs": {"type": "int", "default": 3},
        "plain": "str",
    },
}


# -- dedup_key ----------------------------------------------------------------------------


def test_run_status_event_keys_on_run_and_kind() -> None:
    event = make_event(kind="run_status_running", ref=f"runs.{run_uuid(1)}")
    assert dedup_key(event) == f"runs.{run_uuid(1)}:run_status_running"


def test_same_run_and_kind_share_a_key_across_event_ids() -> None:
    """A transition appended twice (signal + reconciler) or a retry reaching ``running`` again
    must fire a trigger once."""
    a = make_event(kind="run_status_running", event_id="first")
    b = make_event(kind="run_status_running", event_id="second")
    assert a.id != b.id
    assert dedup_key(a) == dedup_key(b)


def test_different_kind_or_run_gives_a_different_key() -> None:
    base = make_event(kind="run_status_running", ref=f"runs.{run_uuid(1)}")
    other_kind = make_event(kind="run_status_failed", ref=f"runs.{run_uuid(1)}")
    other_run = make_event(kind="run_status_running", ref=f"runs.{run_uuid(2)}")
    assert len({dedup_key(base), dedup_key(other_kind), dedup_key(other_run)}) == 3


def test_non_run_event_keys_on_event_id() -> None:
    custom = make_event(kind="custom_ping", ref="events.ping", event_id="abc", job=None)
    assert dedup_key(custom) == "event:abc"
    # A run-status kind on a non-run ref is not "run X reached S" either.
    odd = make_event(kind="run_status_running", ref="jobs.train", event_id="xyz")
    assert dedup_key(odd) == "event:xyz"


# -- clone_uuid ---------------------------------------------------------------------------


def test_clone_uuid_is_deterministic_and_valid() -> None:
    """The same (trigger, key) must always name the same run: that is the exactly-once key."""
    first = clone_uuid(7, "runs.x:run_status_succeeded")
    assert first == clone_uuid(7, "runs.x:run_status_succeeded")
    assert str(uuid.UUID(first)) == first
    assert uuid.UUID(first).version == 5


def test_clone_uuid_differs_per_trigger_and_key() -> None:
    names = {clone_uuid(7, "k"), clone_uuid(8, "k"), clone_uuid(7, "k2")}
    assert len(names) == 3


# -- plan_firing --------------------------------------------------------------------------


def _plan(rule_kwargs: dict[str, Any] | None = None, template: dict[str, Any] | None = TEMPLATE,
          **event_kwargs: Any) -> Any:
    rule = make_rule(3, name="after-train", **(rule_kwargs or {}))
    event = make_event(kind="run_status_succeeded", ref=f"runs.{run_uuid(1)}", **event_kwargs)
    return plan_firing(rule, event, template, "default", dedup_key(event))


def test_plan_without_template_is_an_error_naming_the_job() -> None:
    plan = _plan({"job": "viz", "namespace": "team-a"}, template=None, namespace="team-a")
    assert plan.run is None
    assert plan.outbox is None
    assert plan.error is not None
    assert "'viz'" in plan.error
    assert "'team-a'" in plan.error


def test_plan_template_error_names_the_field() -> None:
    plan = _plan({"params": {"upstream": "{{ trigger.nope }}"}})
    assert plan.run is None
    assert plan.outbox is None
    assert plan.error is not None
    assert plan.error.startswith("params.upstream: ")


def test_plan_routing_error_is_an_error_plan() -> None:
    plan = _plan({"queue": "gpu/train"})
    assert plan.run is None
    assert plan.error is not None
    assert "unknown agent 'gpu'" in plan.error


def test_plan_merges_template_defaults_under_trigger_params() -> None:
    plan = _plan({"params": {"upstream": "{{ trigger.run.uuid }}", "lr": 0.5, "extra": [1]}})
    assert plan.error is None
    assert plan.run.params == {"lr": 0.5, "epochs": 3, "upstream": run_uuid(1),
                                  "extra": [1]}


def test_plan_run_fields_and_outbox() -> None:
    event_key = f"runs.{run_uuid(1)}:run_status_succeeded"
    plan = _plan()
    assert plan.error is None
    assert plan.run.uuid == clone_uuid(3, event_key)
    assert plan.run.job == "viz"
    assert plan.run.namespace == "default"
    assert plan.run.project == "proj"
    assert plan.run.queue == "viz"
    assert plan.outbox == Delivery("taskq.job.viz", "viz", "default")


def test_plan_project_falls_back_to_the_event() -> None:
    plan = _plan(template={**TEMPLATE, "project": None}, project="from-event")
    assert plan.run.project == "from-event"


def test_plan_applies_namespace_routing() -> None:
    """A team's clone goes to the team's queue, whichever queue spec won."""
    from_template = _plan({"namespace": "team-a"}, namespace="team-a")
    assert from_template.run.queue == "team-a--viz"
    assert from_template.outbox.queue == "team-a--viz"
    from_trigger = _plan({"namespace": "team-a", "queue": "train"}, namespace="team-a")
    assert from_trigger.run.queue == "team-a--train"
    from_default = _plan({"namespace": "team-a"}, template={**TEMPLATE, "queue": None},
                         namespace="team-a")
    assert from_default.run.queue == "team-a--default"


def test_plan_trigger_context_has_trigger_event_and_upstream_run() -> None:
    plan = _plan(payload={"job": "train", "status": "succeeded"})
    ctx = plan.run.trigger_context
    assert ctx["trigger"] == "after-train"
    assert ctx["event"]["id"] == "ev-1"
    assert ctx["event"]["kind"] == "run_status_succeeded"
    assert ctx["event"]["ref"] == f"runs.{run_uuid(1)}"
    assert ctx["event"]["timestamp"].startswith("2024-01-02T03:04:05")
    assert ctx["run"] == {"job": "train", "status": "succeeded", "uuid": run_uuid(1)}


def test_template_context_has_no_run_for_non_run_events() -> None:
    rule = make_rule(1, ref="events.ping", kinds=("custom_event",))
    event = make_event(kind="custom_event", ref="events.ping", job=None, payload={"x": 1})
    ctx = template_context(rule, event)
    assert ctx["run"] is None
    assert ctx["trigger"]["run"] is None
    assert ctx["trigger"]["name"] == "rule-1"
    assert ctx["event"]["payload"] == {"x": 1}


def test_plan_is_pure_and_repeatable() -> None:
    """Re-evaluating the same event (after a crash) must plan the identical run."""
    assert _plan() == _plan()
