"""A running job says what happens to it beside its status, the way Polyaxon's event kinds
name it: `current.alert(level, message, **fields)` is an `alert_<level>` event and
`current.log_artifact(name, uri, kind)` a `run_new_artifacts` one. A trigger on either, on
the job, fires once per call, while the run goes on, and the run it starts reads what was
said in `current.trigger.event`. Real Redis, database and Celery workers."""

from __future__ import annotations

import pytest

import taskq
from taskq.core.statuses import Status
from tests.conftest import env_for, run_cli, wait_for
from tests.integration.test_exactly_once import drained
from tests.integration.test_run_statuses import seen
from workers import examples

pytestmark = pytest.mark.integration


def test_alerts_and_artifacts_of_a_running_job_fire_their_triggers(stack, settings) -> None:
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    for kind in ("alert_critical", "alert_warning", "run_new_artifacts"):
        taskq.add_trigger(name=f"on-{kind}", job="observe",
                          event=taskq.EventTrigger(ref="jobs.diverging", kinds=[kind]))

    run = taskq.submit(examples.diverging, params={"loss": 40.0})
    got = wait_for(lambda: (s := [x for x in seen() if x["uuid"] == run.uuid]) and len(s) >= 2
                   and s, 90, message="the alert's and the artifact's triggers")
    by_kind = {s["kind"]: s for s in got}
    assert set(by_kind) == {"alert_critical", "run_new_artifacts"}  # no warning was raised
    alert = by_kind["alert_critical"]
    assert alert["message"] == "loss diverged" and alert["fields"] == {"loss": 40.0,
                                                                       "epoch": 3}
    assert alert["status"] == "running"  # said while it ran
    [artifact] = by_kind["run_new_artifacts"]["artifacts"]
    assert artifact == {"name": "checkpoint", "uri": f"file:///tmp/ckpt-{run.uuid}.pt",
                        "kind": "model"}
    wait_for(lambda: taskq.get_run(run.uuid).status == Status.SUCCEEDED, 60)
    assert len([x for x in seen() if x["uuid"] == run.uuid]) == 2


def test_project_and_org_events_reach_triggers_on_the_project_and_the_org(
        stack, settings, r) -> None:
    """Polyaxon's custom event scopes: an event published to a project is heard by triggers
    on `projects.<name>` (whatever the event's name), one to the org by triggers on `org`;
    an event of the plain scope by neither. The CLI publishes to a scope too."""
    stack.evaluator(wait=False)
    stack.worker("viz", ["viz"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_trigger(name="on-vision", job="observe", event=taskq.EventTrigger(
        ref="projects.vision", kinds=["project_custom_event"]))
    taskq.add_trigger(name="on-org", job="observe", event=taskq.EventTrigger(
        ref="org", kinds=["org_custom_event"]))
    with pytest.raises(taskq.ValidationError, match=r"^project: None is not a project name"):
        taskq.publish_event("retrain", scope="project")
    with pytest.raises(taskq.ValidationError, match=r"^scope: 'team' is not one of"):
        taskq.publish_event("retrain", scope="team")

    taskq.publish_event("retrain", {"reason": "drift"}, scope="project", project="vision")
    taskq.publish_event("retrain", {"reason": "plain"})  # events.retrain: heard by neither
    taskq.publish_event("retrain", {"reason": "other"}, scope="project", project="nlp")
    cli = run_cli("events", "publish", "freeze", "-f", "until=monday", "--scope", "org",
                  env=env_for(settings))
    assert cli.returncode == 0, cli.stderr
    got = wait_for(lambda: (s := seen()) and len(s) >= 2 and s, 60,
                   message="the project's and the org's triggers")
    wait_for(lambda: drained(r), 30, message="stream drained")
    by_kind = {s["kind"]: s for s in seen()}
    assert len(seen()) == 2 and set(by_kind) == {"project_custom_event", "org_custom_event"}
    assert by_kind["project_custom_event"]["fields"] == {"reason": "drift"}
    assert by_kind["org_custom_event"]["fields"] == {"until": "monday"}
    assert len(got) == 2
