"""A running job says what happens to it beside its status, the way Polyaxon's event kinds
name it: `current.alert(level, message, **fields)` is an `alert_<level>` event and
`current.log_artifact(name, uri, kind)` a `run_new_artifacts` one. A trigger on either, on
the job, fires once per call, while the run goes on, and the run it starts reads what was
said in `current.trigger.event`. Real Redis, database and Celery workers."""

from __future__ import annotations

import pytest

import taskq
from taskq.core.statuses import Status
from tests.conftest import wait_for
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
