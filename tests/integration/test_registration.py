"""Bad input is refused at registration with a message naming the field."""

from __future__ import annotations

import pytest

import taskq
from taskq import ValidationError
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

GOOD = {"ref": "jobs.train", "kinds": ["run_status_running"]}


@pytest.mark.parametrize(("kwargs", "field", "reason"), [
    ({"job": "nope"}, "job", "unknown job 'nope'"),
    ({"event": {"ref": "jobs", "kinds": ["run_status_running"]}}, "event.ref", "malformed"),
    ({"event": {"ref": "runs.123", "kinds": ["run_status_running"]}}, "event.ref",
     "not a run uuid"),
    ({"event": {"ref": "jobs.train", "kinds": ["run_status_exploded"]}}, "event.kinds",
     "not a run status event"),
    ({"event": {"ref": "jobs.train", "kinds": []}}, "event.kinds", "at least 1"),
    ({"event": {"ref": "jobs.train", "kinds": ["run_status_running"], "extra": 1}},
     "event.extra", "not permitted"),
    ({"queue": "a/b/c"}, "queue", "more than two parts"),
    ({"queue": "gpu-cluster/train"}, "queue", "unknown agent"),
    ({"queue": "bad queue"}, "queue", "malformed"),
    ({"namespace": "nowhere"}, "namespace", "not configured"),
    ({"namespace": "Bad NS"}, "namespace", "malformed"),
    ({"params": {"uuid": "{{ trigger.run.uuid "}}, "params.uuid", "syntax error"),
    ({"name": ""}, "name", "non-empty"),
])
def test_bad_trigger_is_refused(settings, kwargs, field, reason) -> None:
    args = {"name": "t", "event": GOOD, "job": "tensorboard", **kwargs}
    with pytest.raises(ValidationError) as err:
        taskq.add_trigger(**args)
    assert str(err.value).startswith(field), str(err.value)
    assert reason in str(err.value)
    assert taskq.list_triggers() == []


def test_duplicate_name_refused_per_namespace(settings) -> None:
    taskq.add_trigger(name="t", event=GOOD, job="tensorboard")
    with pytest.raises(ValidationError, match="name: a trigger named 't' already exists"):
        taskq.add_trigger(name="t", event=GOOD, job="evaluate")
    # One client per namespace; an admin client lists them all.
    taskq.Client(namespace="team-a").add_trigger(name="t", event=GOOD, job="tensorboard")
    admin = taskq.Client(admin=True)
    assert sorted(t["namespace"] for t in admin.list_triggers()) == ["default", "team-a"]


def test_submit_refuses_unknown_job_and_bad_queue(settings) -> None:
    with pytest.raises(ValidationError, match="job: unknown job 'ghost'"):
        taskq.submit("ghost")
    with pytest.raises(ValidationError, match="queue"):
        taskq.submit("train", queue="x/y/z")


def test_manual_run_lifecycle_recorded(stack, settings) -> None:
    stack.worker("train", ["train"])
    run = taskq.submit("train", params={"seconds": 0.1, "epochs": 2})
    done = wait_for(lambda: (x := taskq.get_run(run.uuid)) and x.done and x, 20)
    statuses = [e["status"] for e in taskq.Client().rt.store.run_events(run.uuid)]
    assert statuses == ["compiled", "queued", "starting", "initializing", "running",
                        "succeeded"]
    assert done.trigger_name is None and done.trigger is None and done.attempts == 1
    assert [m["step"] for m in done.metrics] == [0, 1]
    assert done.outputs["loss"] == pytest.approx(done.metrics[-1]["value"])


BAD_THEN_GOOD = '''
import taskq
from taskq.celery.jobs import bind_job
from taskq.core.jobs import JobDef


def early() -> None:
    pass


# A declaration that slipped past the decorator (older taskq let trigger_on=["a", "a"] in).
bind_job(JobDef(name="early", queue="train", namespace="default", project=None,
                triggers={"upstream": [], "events": [{"name": "a", "parameters": None}] * 2,
                          "mode": "all", "reset": None}), early)


@taskq.job(queue="train", trigger_on="go",
           hooks=[{"hubRef": "evaluate", "params": {"uuid": "{{ globals.uuid }}"}}])
def later(epochs: int = 1) -> None:
    pass
'''


def test_one_bad_declaration_never_blocks_the_others(stack, settings, tmp_path) -> None:
    """The raw pydantic error of one job's trigger used to escape the sync: a worker stored
    no hooks or triggers of the jobs after it, and submitting any other job raised it."""
    from taskq.celery import jobs
    from taskq.core.jobs import JobDef
    from tests.conftest import ROOT

    (tmp_path / "bad_then_good.py").write_text(BAD_THEN_GOOD)
    worker = stack.worker("train", ["train"], TASKQ_IMPORTS="workers.examples,bad_then_good",
                          PYTHONPATH=f"{tmp_path}:{ROOT}")
    client = taskq.Client()
    wait_for(lambda: client.get_trigger("later.trigger"), 30)
    assert client.get_trigger("later.hooks.0")["spec"]["ref"] == "jobs.later"
    assert wait_for(lambda: "trigger of job 'early' not stored: trigger_on[1]: 'a' is "
                            "listed twice" in worker.output(), 10)

    bad = JobDef(name="early-here", queue="train", namespace="default", project=None,
                 triggers={"upstream": [], "events": [{"name": "b", "parameters": None}] * 2,
                           "mode": "all", "reset": None})
    jobs.registry.add(bad)

    @taskq.job(queue="nobody")  # not stored yet: submit stores this process's jobs first
    def fresh(epochs: int = 1) -> None:
        pass

    try:
        run = taskq.submit("fresh", params={"epochs": "2"})
        assert run.params == {"epochs": 2}
    finally:
        jobs.registry.remove(bad.name)
        jobs.registry.remove("fresh")
