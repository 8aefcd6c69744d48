"""Registration order never matters: a trigger may name what does not exist yet (it
matches once it appears, by name), and says so instead of being refused. The services on
taskq.testing's in-memory ports, written as a Metaflow / Polyaxon user registers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskq.core.unmatched import KnownNames, suggest, unmatched
from taskq.errors import UnmatchedName
from taskq.services import unmatched as telling
from taskq.services.custom_events import publish
from taskq.services.entity_admin import add_entity_trigger
from taskq.services.trigger_admin import add_chaining_trigger, check_hook, register_hook
from taskq.testing import TestContext, make_context


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path)
    for name in ("training", "prediction", "report"):
        context.store.upsert_job_template(
            name=name, namespace="default", queue="train", task_name=f"taskq.job.{name}",
            inputs={}, outputs={}, project="vision", description=None)
    yield context
    context.close()


def said(fn: object, *args: object, **kwargs: object) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)  # type: ignore[operator]
    return [str(w.message) for w in caught if issubclass(w.category, UnmatchedName)]


def test_a_finish_trigger_on_a_job_not_there_yet_is_stored_and_says_so(ctx) -> None:
    # @trigger_on_finish(flow='trainng'): a typo, or a job whose worker starts later
    out = said(add_chaining_trigger, ctx, name="p", job="prediction", on_finish="trainng")
    assert out == ["trigger_on_finish of trigger 'p': job 'trainng' matches nothing in "
                   "namespace 'default' yet; the trigger waits and matches it once it "
                   "appears; did you mean 'training'?"]
    assert ctx.store.get_trigger("p", "default") is not None
    # the job appears: nothing is said any more, and the trigger shows nothing waiting
    ctx.store.upsert_job_template(name="trainng", namespace="default", queue="train",
                                  task_name="taskq.job.trainng", inputs={}, outputs={},
                                  project=None, description=None)
    assert telling.find(ctx, ctx.store.get_trigger("p", "default")) == []


def test_an_event_trigger_before_its_first_event(ctx) -> None:
    out = said(add_chaining_trigger, ctx, name="on-data", job="report",
               on=["data_updated", "first"])
    assert [o.split(":")[0] for o in out] == ["trigger_on of trigger 'on-data'"] * 2
    publish(ctx, "data_updated", {}, namespace="default")
    row = ctx.store.get_trigger("on-data", "default")
    assert [u.name for u in telling.find(ctx, row)] == ["first"]


def test_a_hook_and_an_event_trigger_on_a_job_to_come(ctx) -> None:
    hook = check_hook(ctx, {"hubRef": "report", "trigger": "succeeded"}, "default")
    out = said(register_hook, ctx, "jobs.evaluate", "default", hook, name="h")
    assert out and "job 'evaluate' matches nothing" in out[0]


def test_entity_trigger_project_and_name_are_matched_by_name(ctx) -> None:
    out = said(add_entity_trigger, ctx, "model", name="m", namespace=None,
               schedule_task_id="report", schedule_function=None, schedule_queue=None,
               trigger_project="visoin", add_tag=True, task_parameters=None,
               task_overrides=None, reuse_task=False, single_instance=False,
               target_project=None, name_pattern="resnet")
    assert len(out) == 2
    assert "trigger_project of trigger 'm': project 'visoin' matches nothing" in out[0]
    assert out[0].endswith("did you mean 'vision'?")
    assert "trigger_name of trigger 'm': model name pattern 'resnet'" in out[1]


def test_the_pure_rules() -> None:
    known = KnownNames(projects=frozenset({"vision"}), jobs=frozenset({"training"}),
                       events=frozenset({"first"}))
    assert unmatched("model", {"project": "vision"}, "default", known) == []
    assert unmatched("event", {"ref": "jobs.*", "kinds": []}, "default", known) == []
    assert [u.what for u in unmatched("event", {"ref": "runs.abc"}, "default", known)] == [
        "run"]
    assert suggest("trainig", ["training", "data"]) == "training"
    assert suggest("zzz", ["training"]) is None
