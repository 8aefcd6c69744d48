"""Job chaining and external events (Metaflow's seed examples, completed): finish triggers,
AND/OR joins that survive a SIGKILLed evaluator, published events with payload fields as
params, reset windows, namespaces, and current.trigger / run.trigger chains."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

import taskq
from taskq.core.statuses import Status
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def chain(settings: Any, chaining_jobs: None) -> Any:
    """The example settings plus workers/chaining.py (training, data, prediction, report,
    dataflow, deploy) in every process."""
    from taskq.settings import configure

    return configure(settings, imports=["workers.examples", "workers.chaining"],
                     watch_namespaces={"team-a": ["default"]})


def start(stack: Any, *extra: str) -> None:
    from taskq.settings import get_settings

    stack.settings = get_settings()  # the chain fixture's, so workers import chaining jobs
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    stack.worker("viz", ["viz", "default", *extra], concurrency=2, wait=False)
    for p in stack.procs:
        p.wait_ready(90)


def finished(run_uuid: str, timeout: float = 30) -> taskq.RunRecord:
    admin = taskq.Client(admin=True)  # runs of every namespace
    return wait_for(lambda: (x := admin.get_run(run_uuid)) and x.done and x, timeout,
                    message=f"run {run_uuid} to finish")


def runs_of(job: str, trigger: str | None = None) -> list[taskq.RunRecord]:
    return [r for r in taskq.Client(admin=True).list_runs(job=job, limit=200)
            if trigger is None or r.trigger_name == trigger]


def one_run(job: str, trigger: str | None = None, timeout: float = 30) -> taskq.RunRecord:
    run = wait_for(lambda: next(iter(runs_of(job, trigger)), None), timeout,
                   message=f"a run of {job}")
    return finished(run.uuid)


def success_event(run_uuid: str) -> Any:
    from sqlalchemy import select

    from taskq.core.events import Event
    from taskq.store.models import RunEvent

    with taskq.Client().rt.store.read() as conn:
        body = conn.execute(select(RunEvent.body).where(
            RunEvent.run_uuid == run_uuid, RunEvent.status == "succeeded")).scalar_one()
    return Event.model_validate(body)


def drained(r: Any) -> bool:
    from taskq import constants

    groups = r.xinfo_groups(constants.EVENTS_STREAM)
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


def test_finish_trigger_and_trigger_chains(stack, chain, r) -> None:
    """TrainingFlow -> PredictionFlow: prediction runs when training succeeds, reads the
    model through current.trigger.data; a failed training starts nothing; the client walks
    a chain data -> training -> prediction through run.trigger.run."""
    start(stack)
    failed = taskq.submit("training", params={"fail": True})
    assert finished(failed.uuid).status == Status.FAILED
    good = taskq.submit("training")
    pred = one_run("prediction")
    assert pred.status == Status.SUCCEEDED and pred.trigger_name == "prediction.trigger"
    seen = pred.outputs["seen"]
    assert seen["type"] == "RUN" and seen["run"] == good.uuid
    assert seen["event"] == "training" and seen["model"] == {"x": 1}
    assert [r.uuid for r in runs_of("prediction")] == [pred.uuid]  # not for the failed one

    client = taskq.Client()
    latest = client.job("prediction").latest_run
    assert latest is not None and latest.trigger is not None
    assert latest.trigger.run is not None and latest.trigger.run.uuid == good.uuid
    assert latest.trigger.data is not None and latest.trigger.data.model == {"x": 1}
    assert latest.trigger["training"].uuid == good.uuid

    # A longer chain: data -> training (a finish trigger added at runtime) -> prediction.
    taskq.add_finish_trigger(name="retrain-on-data", job="training", upstream="data")
    source = taskq.submit("data")
    wait_for(lambda: len(runs_of("prediction")) == 2, 40, message="the chained prediction")
    newest = client.job("prediction").latest_run
    assert newest is not None
    newest = finished(newest.uuid)
    assert newest.trigger.run.trigger_name == "retrain-on-data"
    assert newest.trigger.run.trigger.run.uuid == source.uuid
    assert newest.trigger.run.trigger.run.trigger is None  # started by hand


def test_and_join_survives_a_killed_evaluator(stack, chain, r) -> None:
    """report waits for a new training AND a new data run. The evaluator is SIGKILLed
    between the two; its replacement still fires exactly once, with both upstreams; a newer
    training before data wins (the latest event per input)."""
    start(stack)
    first = finished(taskq.submit("training").uuid)
    second = finished(taskq.submit("training").uuid)
    waiting = wait_for(lambda: (t := taskq.Client().get_trigger("report.trigger"))
                       and len(t["waiting"]) == 2 and t["waiting"], 20,
                       message="both trainings armed")
    assert {w["input"] for w in waiting} == {"training"}
    evaluator = stack.procs[0]
    evaluator.kill(signal.SIGKILL)
    evaluator.popen.wait(10)
    stack.evaluator("evaluator-2")
    upstream_data = finished(taskq.submit("data").uuid)
    report = one_run("report", timeout=40)
    assert report.status == Status.SUCCEEDED
    seen = report.outputs["seen"]
    assert seen["type"] == "MANY-RUNS" and seen["training"] == second.uuid
    assert seen["data"] == upstream_data.uuid and seen["model"] == {"x": 1}
    assert seen["rows"] == 1000
    assert seen["run"] == upstream_data.uuid  # Metaflow's .run: the one that finished last
    assert first.uuid not in {seen["training"], seen["data"]}
    # The upstreams' success events appended again (a reconciler racing a slow XADD, a
    # retried upstream): each arms nothing new, so no second report.
    for run in (second, upstream_data):
        taskq.Client().rt.bus.append(success_event(run.uuid))
    wait_for(lambda: drained(r), 20)
    assert len(runs_of("report")) == 1
    assert taskq.Client().get_trigger("report.trigger")["waiting"] == []


def test_or_mode_and_cross_namespace_scope(stack, chain, r) -> None:
    """mode="any" fires on each upstream (Metaflow has no OR); a namespace watches another's
    runs only where watch_namespaces allows it, and its clones stay in its own namespace."""
    start(stack, "team-a--viz")
    taskq.add_finish_trigger(name="noop-on-either", job="noop", upstream=["training", "data"],
                             mode="any")
    # A client per namespace: each is bound to one.
    team_a, team_b = taskq.Client(namespace="team-a"), taskq.Client(namespace="team-b")
    team_a.add_finish_trigger(name="team-a-follows", job="noop", namespace="team-a",
                              upstream="default.training")
    with pytest.raises(taskq.ValidationError, match="watch_namespaces"):
        team_b.add_finish_trigger(name="team-b-peeks", job="noop", namespace="team-b",
                                  upstream="default.training")
    t = finished(taskq.submit("training").uuid)
    d = finished(taskq.submit("data").uuid)
    either = wait_for(lambda: len(runs_of("noop", "noop-on-either")) == 2
                      and runs_of("noop", "noop-on-either"), 30)
    assert {x.trigger.run.uuid for x in either} == {t.uuid, d.uuid}
    assert {x.trigger.type for x in either} == {"ONE-OF-RUNS"}
    tenant = one_run("noop", "team-a-follows")
    assert tenant.namespace == "team-a" and tenant.queue == "team-a--viz"
    assert tenant.trigger.run.uuid == t.uuid


def test_published_events_with_payload_and_reset(stack, chain, r) -> None:
    """dataflow runs when first AND second are published, x from the payload; a retried
    publish (same id) is one event; a missing required field is recorded as the reason; a
    reset window drops a stale half of a join."""
    start(stack)
    taskq.publish_event("first", {"x": 5}, event_id="delivery-1")
    taskq.publish_event("first", {"x": 5}, event_id="delivery-1")  # a retry: one event
    taskq.publish_event("second")
    flow = one_run("dataflow")
    seen = flow.outputs["seen"]
    assert seen["type"] == "MANY-EVENTS" and seen["x"] == 5 and flow.params["x"] == 5
    assert seen["first"] <= seen["second"]
    assert {e.name for e in flow.trigger.events} == {"first", "second"}
    assert flow.trigger["first"].fields == {"x": 5}

    taskq.add_event_trigger(name="deploy-on-release", job="deploy",
                            events=[{"name": "release", "parameters": {"version": "tag"}}])
    taskq.publish_event("release", {"other": 1})
    taskq.publish_event("release", {"tag": "v2"})
    deployed = one_run("deploy")
    assert deployed.params["version"] == "v2" and deployed.outputs["version"] == "v2"
    firings = wait_for(lambda: len(f := taskq.Client().firings("deploy-on-release")) == 2
                       and f, 20)
    errors = [f for f in firings if f["outcome"] == "error"]
    assert len(errors) == 1 and "no field 'tag'" in errors[0]["reason"]

    taskq.add_event_trigger(name="pair-within-2s", job="noop", events=["ping", "pong"],
                            reset=2)
    taskq.publish_event("ping")
    time.sleep(3)  # ping is now outside the window: pong alone must not complete the join
    taskq.publish_event("pong")
    taskq.publish_event("ping")
    pair = one_run("noop", "pair-within-2s")
    assert [e.name for e in pair.trigger.events] == ["ping", "pong"]
    wait_for(lambda: drained(r), 20)
    assert len(runs_of("noop", "pair-within-2s")) == 1
    assert len(runs_of("dataflow")) == 1


def test_registration_refuses_bad_chaining(chain) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"job": "training", "upstream": "training"}, "may not start itself"),
        ({"job": "noop", "upstream": ["training"], "mode": "some"}, "mode: 'some'"),
        ({"job": "noop", "upstream": ["training"], "reset": "every day"}, "reset:"),
        ({"job": "noop", "upstream": ["bad name!"]}, "trigger_on_finish[0]"),
        ({"job": "nope", "upstream": ["training"]}, "job: unknown job 'nope'"),
    ]
    for kwargs, reason in cases:
        with pytest.raises(taskq.ValidationError, match=reason.replace("[", r"\[")
                           .replace("(", r"\(")):
            taskq.add_finish_trigger(name="bad", **kwargs)
    with pytest.raises(taskq.ValidationError, match=r"parameters\.nope: job 'deploy' has no"):
        taskq.add_event_trigger(name="bad", job="deploy",
                                events=[{"name": "release", "parameters": {"nope": "x"}}])
    with pytest.raises(taskq.ValidationError, match="name: 'no spaces' is not an event"):
        taskq.publish_event("no spaces")
    with pytest.raises(taskq.ValidationError, match="fields: must be a mapping"):
        taskq.publish_event("first", ["x"])  # type: ignore[arg-type]
    # A cycle through finish triggers: data -> training (-> prediction) and training -> data.
    taskq.add_finish_trigger(name="t-after-d", job="training", upstream="data")
    with pytest.raises(taskq.ValidationError, match="leads back"):
        taskq.add_finish_trigger(name="d-after-t", job="data", upstream="training")
    assert taskq.Client().get_trigger("bad") is None
