"""Model, dataset and run triggers (ClearML's TriggerScheduler) end to end: real Redis, real
workers and beat, SQLite and PostgreSQL; each of ClearML's bugs with the behaviour that
replaces it (docs/entity-triggers.md)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select, text

import taskq
from taskq import ValidationError, constants
from taskq.core.statuses import Status
from taskq.errors import UnmatchedName
from taskq.services import poller as polling
from tests.conftest import env_for, marks, run_cli, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def entity(settings: Any) -> Any:
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates
    from taskq.settings import configure

    s = configure(settings, imports=["workers.examples", "tests.integration.entity_jobs"])
    import taskq.worker.entity_jobs  # noqa: F401
    import tests.integration.entity_jobs  # noqa: F401

    sync_job_templates(get_runtime())
    return s


def start(stack: Any, *, beat: bool = False, **workers: Any) -> None:
    from taskq.settings import get_settings

    stack.settings = get_settings()
    stack.evaluator(wait=False)
    for name, (queues, env) in workers.items():
        stack.worker(name, queues, concurrency=2, wait=False, **env)
    for p in stack.procs:
        p.wait_ready(90)
    if beat:
        stack.beat()


def runs_of(trigger: str) -> list[taskq.RunRecord]:
    return taskq.list_runs(trigger=trigger, limit=200)


def done(trigger: str, count: int, timeout: float = 40) -> list[taskq.RunRecord]:
    """Exactly ``count`` runs of ``trigger``, all finished (oldest first)."""
    def check() -> list[taskq.RunRecord] | None:
        runs = runs_of(trigger)
        return runs if len(runs) >= count and all(r.done for r in runs) else None

    return list(reversed(wait_for(check, timeout, message=f"{count} runs of {trigger}")))


def outcomes(trigger: str) -> list[str]:
    return sorted(f["outcome"] for f in taskq.Client().firings(trigger))


def drained(r: Any) -> bool:
    groups = r.xinfo_groups(constants.EVENTS_STREAM)
    return bool(groups) and all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


def settle(r: Any) -> None:
    """Everything appended so far was evaluated, and whatever it fired has finished."""
    wait_for(lambda: drained(r), 30, message="stream drained")
    wait_for(lambda: all(x.done for x in taskq.list_runs(limit=200)), 40,
             message="every run finished")
    wait_for(lambda: drained(r), 30, message="stream drained")


def entity_events(entity_id: str) -> list[dict[str, Any]]:
    from taskq.store.models import RunEvent

    with taskq.Client().rt.store.read() as conn:
        bodies = conn.execute(select(RunEvent.body).order_by(RunEvent.id)).scalars().all()
    return [b for b in bodies if (b.get("payload") or {}).get("id") == entity_id]


def sql_change(table: str, entity_id: str, **values: Any) -> None:
    """Another writer: plain SQL that sets updated_at, as the contract asks."""
    store = taskq.Client().rt.store
    now = ("strftime('%Y-%m-%d %H:%M:%f', 'now')" if store.dialect == "sqlite"
           else "clock_timestamp()")
    sets = ", ".join(f"{k} = :{k}" for k in values)
    params = {k: json.dumps(v) if isinstance(v, list) else v for k, v in values.items()}
    with store.tx() as conn:
        conn.execute(text(f"UPDATE {table} SET {sets}, updated_at = {now} WHERE id = :id"),
                     {**params, "id": entity_id})


# -- models: each change fires; tags mean all; substitution in both; names unique ----------


def test_model_publish_evaluates_and_each_matching_change_fires(entity, stack, r) -> None:
    start(stack, viz=(["viz"], {}))
    model = taskq.models.register("resnet", project="vision", version="3",
                                  tags=["candidate"])
    sched = taskq.TriggerScheduler(pooling_frequency_minutes=3.0)
    # A project with no model yet is stored, said, and matched by name once it exists:
    # never refused (registration order must not matter), never every project.
    with pytest.warns(UnmatchedName, match=r"trigger_project of trigger 'never': project "
                      r"'nope' matches nothing"):
        sched.add_model_trigger(schedule_task_id="entity_consumer", trigger_project="nope",
                                trigger_on_publish=True, name="never")
    taskq.Client().delete_trigger("never")
    sched.add_model_trigger(
        schedule_task_id="entity_consumer", schedule_queue="viz", trigger_project="vision",
        trigger_on_publish=True, name="evaluate-on-publish",
        task_parameters={"Args/uuid": "${model.id}"},
        task_overrides={"project": "${model.project}-eval", "tags": ["v${model.version}"]})
    sched.add_model_trigger(schedule_task_id="entity_consumer", trigger_on_tags=["a", "b"],
                            trigger_required_tags=["candidate"], name="tags-all",
                            add_tag="tagged", task_overrides={"Args/uuid": "${model.name}"})
    archive = dict(schedule_task_id="entity_consumer", trigger_on_archive=True,
                   name="on-archive", add_tag=False)
    first = sched.add_model_trigger(**archive)
    assert sched.add_model_trigger(**archive)["id"] == first["id"]  # the same, again: no-op
    with pytest.raises(ValidationError, match="name: a different trigger named 'on-archive'"):
        sched.add_model_trigger(**{**archive, "trigger_on_archive": False})
    unnamed = sched.add_model_trigger(schedule_task_id="entity_consumer",
                                      trigger_on_tags=["zzz"])
    assert unnamed["name"] == "model.entity_consumer"  # ClearML would merge such by name
    with pytest.raises(ValidationError, match=r"name: a different trigger named 'model\.entity"):
        sched.add_model_trigger(schedule_task_id="entity_consumer", trigger_on_tags=["yyy"])
    assert sorted(t["name"] for t in sched.get_triggers()) == [
        "evaluate-on-publish", "model.entity_consumer", "on-archive", "tags-all"]

    taskq.models.publish(model.id)
    cli = run_cli("models", "publish", model.id, env=env_for(entity))  # publishing again
    assert cli.returncode == 0, cli.stderr
    taskq.models.add_tags(model.id, ["a"])          # not every tag yet: nothing
    taskq.models.add_tags(model.id, ["b"])          # all of a, b: fires
    taskq.models.remove_tags(model.id, ["b"])
    taskq.models.add_tags(model.id, ["b"])          # tagged again: fires again
    taskq.models.register("other", project="vision", tags=["a", "b"])  # not a candidate
    taskq.models.archive(model.id)
    settle(r)

    published = done("evaluate-on-publish", 2)
    assert [x.params["uuid"] for x in published] == [model.id, model.id]
    assert {x.project for x in published} == {"vision-eval"}
    assert published[0].tags == ["evaluate-on-publish", "v3"]  # add_tag=True: its name
    assert published[0].trigger.event.kind == "model_published"
    tagged = done("tags-all", 2)
    assert [(x.params["uuid"], x.tags) for x in tagged] == [("resnet", ["tagged"])] * 2
    assert [x.tags for x in done("on-archive", 1)] == [[]]
    assert outcomes("evaluate-on-publish") == ["fired", "fired"]
    assert outcomes("tags-all") == ["fired", "fired"] and outcomes("on-archive") == ["fired"]
    shown = run_cli("models", "show", model.id, env=env_for(entity))
    assert json.loads(shown.stdout)["archived"] is True


# -- datasets: other writers found by beat's poller; frequency at runtime; functions -------


def test_other_writers_are_polled_by_beat_once_each(entity, stack, r) -> None:
    start(stack, services=(["services"], {"TASKQ_TEST_FN_SECONDS": "3"}), beat=True)
    store = taskq.Client().rt.store
    data = taskq.datasets.register("images", project="data")
    sched = taskq.TriggerScheduler(pooling_frequency_minutes=10)
    with pytest.raises(ValidationError, match=r"schedule_function: .*lambda"):
        sched.add_dataset_trigger(schedule_function=lambda x: x, name="lam")
    sched.add_dataset_trigger(schedule_function="tests.integration.entity_jobs:record",
                              trigger_on_tags=["ready"], single_instance=True,
                              target_project="etl", name="fn-on-ready")
    wait_for(lambda: store.get_cursor("poll.last.datasets"), 20, message="beat's first poll")
    sql_change("datasets", data.id, tags=["ready"])
    time.sleep(4)  # two beat ticks: every 10 minutes is not due yet
    assert [e["kind"] for e in entity_events(data.id)] == ["dataset_created"]
    taskq.TriggerScheduler(pooling_frequency_minutes=0.02)  # beat applies it, no restart
    first = wait_for(lambda: next(iter(runs_of("fn-on-ready")), None), 20)
    assert first.job == constants.FUNCTION_JOB and first.queue == "services"
    assert first.params["entity_id"] == data.id and first.project == "etl"

    # single_instance: a change while the function still runs is skipped, with the reason
    wait_for(lambda: taskq.get_run(first.uuid).status == Status.RUNNING, 20)
    taskq.datasets.remove_tags(data.id, ["ready"])
    taskq.datasets.add_tags(data.id, ["ready"])
    skipped = wait_for(lambda: [f for f in taskq.Client().firings("fn-on-ready")
                                if f["outcome"] == "skipped"], 20)
    assert f"the previous run {first.uuid} is still running" in skipped[0]["reason"]
    wait_for(lambda: taskq.get_run(first.uuid).done, 20)
    taskq.datasets.remove_tags(data.id, ["ready"])
    taskq.datasets.add_tags(data.id, ["ready"])
    assert [x.status for x in done("fn-on-ready", 2)] == [Status.SUCCEEDED] * 2
    assert len([m for m in marks("function") if m.startswith(data.id)]) == 2

    # two pollers never at once: while another holds the lock, beat's polls skip
    lock = r.lock(constants.POLL_LOCK, timeout=30)
    assert lock.acquire(blocking=True, blocking_timeout=10)
    assert polling.poll_due(taskq.Client().rt, force=True) is None
    sql_change("datasets", data.id, archived=True)
    time.sleep(3)
    assert "dataset_archived" not in [e["kind"] for e in entity_events(data.id)]
    lock.release()
    wait_for(lambda: "dataset_archived" in [e["kind"] for e in entity_events(data.id)], 20)
    polled = store.get_cursor("poll.last.datasets")
    wait_for(lambda: store.get_cursor("poll.last.datasets") != polled, 20)  # polled again

    # a restart neither loses nor replays: the watermark is in the database
    next(p for p in stack.procs if p.name == "beat").stop()
    sql_change("datasets", data.id, archived=False)
    stack.beat()
    wait_for(lambda: "dataset_unarchived" in [e["kind"] for e in entity_events(data.id)], 20)
    settle(r)
    sources = [(e["kind"], e["payload"]["source"]) for e in entity_events(data.id)]
    assert sources == [("dataset_created", "api"), ("dataset_tagged", "poll"),
                       ("dataset_untagged", "api"), ("dataset_tagged", "api"),
                       ("dataset_untagged", "api"), ("dataset_tagged", "api"),
                       ("dataset_archived", "poll"), ("dataset_unarchived", "poll")]


# -- runs: metrics (threshold 0, last or extreme), status (+ metric), dev runs, tags --------


def test_run_triggers_on_metrics_statuses_and_tags(entity, stack, r) -> None:
    from tests.integration.entity_jobs import metric_curve

    start(stack, train=(["train"], {}), viz=(["viz"], {}))
    sched = taskq.TriggerScheduler()
    common = dict(schedule_task_id="entity_consumer", trigger_name="^metric_curve$",
                  task_parameters={"Args/uuid": "${task.id}"}, add_tag=False)
    # threshold 0 works (ClearML drops the filter): each crossing below 0 of the last value
    sched.add_task_trigger(trigger_on_metric="loss", trigger_on_variant="val",
                           trigger_on_threshold=0, trigger_on_sign="min", name="below-0",
                           **common)
    sched.add_task_trigger(trigger_on_metric="loss", trigger_on_threshold=0,
                           trigger_on_sign="minimum", trigger_on_metric_value="extreme",
                           name="min-below-0", **common)
    sched.add_run_trigger(trigger_on_metric="loss", trigger_on_variant="val",
                          trigger_on_threshold=0.4, trigger_on_sign="max", name="above-0.4",
                          **common)
    sched.add_task_trigger(trigger_on_status=["completed"], trigger_on_metric="loss",
                           trigger_on_threshold=-0.05, name="done-below", **common)
    sched.add_task_trigger(trigger_on_status=["completed"], trigger_on_metric="loss",
                           trigger_on_threshold=-0.5, name="done-far-below", **common)
    sched.add_task_trigger(trigger_on_status=["failed"], trigger_exclude_dev_tasks=True,
                           name="on-failed", **common)
    sched.add_task_trigger(trigger_on_tags=["deploy", "approved"], name="tagged", **common)
    sched.add_task_trigger(schedule_task_id="entity_consumer", trigger_name="^metric_curve$",
                           add_tag=False)  # any run created (no status, metric or tags)
    with pytest.raises(ValidationError, match="trigger_on_status: 'publishing'"):
        sched.add_task_trigger(trigger_on_status=["publishing"], name="x", **common)
    with pytest.raises(ValidationError, match=r"\$\{model.id\} cannot be substituted"):
        sched.add_task_trigger(trigger_on_status=["failed"], name="y", **{
            **common, "task_parameters": {"Args/uuid": "${model.id}"}})

    curve = taskq.submit("metric_curve", params={"values": [0.5, -0.2, 0.3, -0.1]})
    failed = taskq.submit("metric_curve", params={"values": [], "fail": True, "pause": 0})
    dev = metric_curve.apply_async(kwargs={"values": [], "fail": True, "pause": 0},
                                   queue="train")  # plain Celery: a development run
    wait_for(lambda: taskq.get_run(curve.uuid).done, 40)
    taskq.tag_run(curve.uuid, add=["deploy"])            # not both tags yet
    taskq.tag_run(curve.uuid, add=["approved"])          # both: fires
    taskq.tag_run(curve.uuid, remove=["approved"])
    assert taskq.tag_run(curve.uuid, add=["approved"]) == ["approved", "deploy"]  # again
    wait_for(lambda: (x := taskq.get_run(dev.id)) and x.done, 30)
    settle(r)

    assert taskq.get_run(dev.id).tags == ["development"]
    assert taskq.get_run(curve.uuid).status == Status.SUCCEEDED
    counts = {name: len(runs_of(name)) for name in (
        "below-0", "min-below-0", "above-0.4", "done-below", "done-far-below", "on-failed",
        "tagged", "run.entity_consumer")}
    assert counts == {"below-0": 2, "min-below-0": 1, "above-0.4": 1, "done-below": 1,
                      "done-far-below": 0, "on-failed": 1, "tagged": 2,
                      "run.entity_consumer": 3}  # created: curve, failed and the dev run
    assert {x.params["uuid"] for name in counts for x in runs_of(name)
            if name not in ("on-failed", "run.entity_consumer")} == {curve.uuid}
    assert runs_of("on-failed")[0].params["uuid"] == failed.uuid  # not the dev run
    far = taskq.Client().firings("done-far-below")
    assert [f["outcome"] for f in far] == ["skipped"]
    assert "is not at or below -0.5" in far[0]["reason"]
    metric_events = [e for e in entity_events_of_run(curve.uuid) if e["kind"] == "run_metric"]
    assert len(metric_events) == 4  # one change per flush


def entity_events_of_run(run_uuid: str) -> list[dict[str, Any]]:
    from taskq.store.models import RunEvent

    with taskq.Client().rt.store.read() as conn:
        bodies = conn.execute(select(RunEvent.body).order_by(RunEvent.id)).scalars().all()
    return [b for b in bodies if b.get("ref") == f"runs.{run_uuid}"]


# -- reuse_task re-enqueues the same run; a stale message is refused; single_instance -----


def test_reuse_task_requeues_the_same_run_and_single_instance_skips(entity, stack, r) -> None:
    start(stack, viz=(["viz"], {}))
    base = taskq.submit("entity_consumer", params={"uuid": "first", "seconds": 0})
    wait_for(lambda: taskq.get_run(base.uuid).done, 30)
    model = taskq.models.register("bert", project="nlp")
    sched = taskq.TriggerScheduler()
    with pytest.raises(ValidationError, match="reuse_task: schedule_task_id must name a run"):
        sched.add_model_trigger(schedule_task_id="entity_consumer", reuse_task=True,
                                trigger_on_publish=True, name="nope")
    sched.add_model_trigger(schedule_task_id=base.uuid, reuse_task=True,
                            trigger_on_publish=True, name="reuse")
    sched.add_model_trigger(schedule_task_id="entity_consumer", single_instance=True,
                            trigger_on_tags=["slow"], name="one-at-a-time",
                            task_parameters={"Args/seconds": 3, "Args/uuid": "${model.id}"})
    taskq.models.publish(model.id)
    wait_for(lambda: (x := taskq.get_run(base.uuid)) and x.incarnation == 1 and x.done, 30)
    taskq.models.publish(model.id)
    again = wait_for(lambda: (x := taskq.get_run(base.uuid)) and x.incarnation == 2
                     and x.done and x, 30)
    assert again.status == Status.SUCCEEDED and again.tags == ["reuse"]
    assert again.trigger_name == "reuse" and again.trigger.event.kind == "model_published"
    lines = (marks_dir() / f"consumer.{base.uuid}").read_text().splitlines()
    assert lines == ["first", "first", "first"]  # three executions of one run
    assert [x.uuid for x in taskq.list_runs(job="entity_consumer", limit=50)] == [base.uuid]

    # A stale message of an earlier incarnation (redelivered late) is refused.
    viz = next(p for p in stack.procs if p.name == "viz")
    taskq.Client().rt.celery.send_task(constants.job_task_name("entity_consumer"),
                                       kwargs={"uuid": "stale"}, task_id=base.uuid,
                                       queue="viz")
    wait_for(lambda: "already started; skipping duplicate" in viz.output(), 30)
    assert (marks_dir() / f"consumer.{base.uuid}").read_text().splitlines() == ["first"] * 3
    assert taskq.get_run(base.uuid).status == Status.SUCCEEDED

    # single_instance for a job: a change while the previous run is active is skipped.
    taskq.models.add_tags(model.id, ["slow"])
    busy = wait_for(lambda: next(iter(runs_of("one-at-a-time")), None), 20)
    taskq.models.remove_tags(model.id, ["slow"])
    taskq.models.add_tags(model.id, ["slow"])
    settle(r)
    assert len(runs_of("one-at-a-time")) == 1 and taskq.get_run(busy.uuid).done
    assert outcomes("one-at-a-time") == ["fired", "skipped"]
    taskq.models.remove_tags(model.id, ["slow"])
    taskq.models.add_tags(model.id, ["slow"])  # the previous run ended: fires
    assert len(done("one-at-a-time", 2)) == 2


def marks_dir() -> Any:
    import os
    from pathlib import Path

    return Path(os.environ["TASKQ_EXAMPLE_MARKS"])


# -- a firing is recorded with its launch: an evaluator killed after the commit loses nothing


def test_launch_recorded_with_firing_survives_a_killed_evaluator(entity, stack, r,
                                                                tmp_path) -> None:
    from taskq.settings import get_settings

    stack.settings = get_settings()
    stack.evaluator(TASKQ_CRASH_AT="after_record", TASKQ_CRASH_ONCE=str(tmp_path / "crashed"))
    stack.worker("viz", ["viz"])
    stack.beat()  # its outbox relay publishes what the killed evaluator committed
    model = taskq.models.register("gpt", project="lm")
    taskq.TriggerScheduler().add_model_trigger(
        schedule_task_id="entity_consumer", trigger_on_publish=True, name="crash",
        task_parameters={"Args/uuid": "${model.id}"})
    taskq.models.publish(model.id)
    wait_for(lambda: (tmp_path / "crashed").exists(), 20, message="the crash point")
    runs = done("crash", 1)
    settle(r)
    assert len(runs_of("crash")) == 1 and runs[0].status == Status.SUCCEEDED
    assert (marks_dir() / f"consumer.{runs[0].uuid}").read_text().splitlines() == [model.id]
    assert outcomes("crash") == ["fired"]


# -- start() in the foreground and start_remotely() on the services queue ------------------


def readme_block() -> str:
    import re

    from tests.conftest import ROOT

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return next(b for b in blocks if "# model_publish.py" in b)


def test_scheduler_loops_poll_without_beat(entity, stack, r, tmp_path) -> None:
    import subprocess
    import sys
    import threading

    start(stack, services=(["services"], {}), viz=(["viz"], {}))
    # The README's example, as written there, in its own process.
    script = tmp_path / "model_publish.py"
    script.write_text(readme_block())
    subprocess.run([sys.executable, str(script)], check=True, timeout=60, cwd=tmp_path,
                   env=env_for(entity))
    evaluation = done("evaluate-published-models", 1)[0]
    published = taskq.models.list(name="resnet50")[0]
    assert evaluation.job == "evaluate" and evaluation.params["uuid"] == published.id
    assert evaluation.status == Status.SUCCEEDED

    sched = taskq.TriggerScheduler(pooling_frequency_minutes=0.01)
    model = taskq.models.register("vit", project="vision")
    sched.add_model_trigger(schedule_task_id="entity_consumer", trigger_on_publish=True,
                            name="polled", task_overrides={"Args/uuid": "${model.id}"})
    remote = sched.start_remotely(queue="services")
    wait_for(lambda: taskq.get_run(remote.uuid).status == Status.RUNNING, 30)
    sql_change("models", model.id, published=True, published_at=None)
    first = done("polled", 1)[0]
    assert first.params["uuid"] == model.id and first.trigger.event.payload["source"] == "poll"
    taskq.Client().stop_run(remote.uuid)
    wait_for(lambda: taskq.get_run(remote.uuid).status == Status.STOPPED, 30)

    loop = threading.Thread(target=sched.start, kwargs={"run_for": 30}, daemon=True)
    loop.start()
    from datetime import UTC, datetime

    # published again by another writer: a new published_at is a new publish
    sql_change("models", model.id, published_at=datetime.now(UTC).replace(tzinfo=None))
    assert len(done("polled", 2)) == 2
