"""Jobs declared the way Celery users write them: the function's signature is the job's
inputs (names, types, defaults, required-ness); ``inputs=`` only adds or overrides; one
validator coerces params everywhere; a bad declaration fails where it is written."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Optional, TypedDict

import pytest
from pydantic import BaseModel

import taskq
from taskq.celery import jobs as celery_jobs
from taskq.core.jobs import JobDef, JobRegistry, validate_inputs, validate_params
from taskq.errors import JobError, TaskqError, ValidationError
from taskq.services import catalog, custom_events, pipelines, trigger_admin
from taskq.testing import TestContext, make_context


@pytest.fixture(autouse=True)
def forget_declared_jobs() -> Iterator[None]:
    """``@taskq.job`` adds to the process's registry, as Celery's ``@app.task`` does."""
    before = set(celery_jobs.registry.all())
    yield
    for name in set(celery_jobs.registry.all()) - before:
        celery_jobs.registry.remove(name)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path, relay_grace_seconds=0)
    yield context
    context.close()


def with_jobs(ctx: TestContext, *tasks: Any) -> TestContext:
    ctx.jobs = JobRegistry(t.taskq_job for t in tasks)
    return ctx


class Color(enum.StrEnum):
    red = "red"
    green = "green"


class Optimiser(BaseModel):
    lr: float = 0.1
    layers: list[int] = [1]


@dataclasses.dataclass
class Window:
    size: int
    unit: str = "s"


# -- failure 1: the signature is the declaration ------------------------------------------


def test_a_signature_only_job_takes_its_params_from_a_pipeline(ctx: TestContext) -> None:
    """Refused before with "job 'experiment' has no input 'epochs'"."""

    @taskq.job(queue="train")
    def experiment(learning_rate: float = 0.01, epochs: int = 1) -> None:
        pass

    with_jobs(ctx, experiment)
    pipelines.start(ctx, {"version": 1.1, "kind": "component", "name": "p", "run": {
        "kind": "dag", "operations": [{"name": "e", "hubRef": "experiment",
                                       "params": {"epochs": {"value": "3"}}}]}})
    (item, _), = ctx.publisher.sent
    assert item.params == {"learning_rate": 0.01, "epochs": 3}


def test_names_types_defaults_and_required_come_from_the_function() -> None:
    @taskq.job(queue="train")
    def fit(data: str, learning_rate: float = 0.01, epochs: int = 1, tag: str | None = None,
            verbose: Optional[bool] = None, *args: Any, **kwargs: Any) -> None:  # noqa: UP045
        pass

    jd = fit.taskq_job
    assert jd.inputs == {
        "data": {"type": "str", "required": True},
        "learning_rate": {"type": "float", "default": 0.01},
        "epochs": {"type": "int", "default": 1},
        "tag": {"type": "str", "default": None},
        "verbose": {"type": "bool", "default": None},
    }
    assert jd.accepts_extra and jd.defaults() == {"learning_rate": 0.01, "epochs": 1,
                                                  "tag": None, "verbose": None}


def test_celerys_bound_self_is_not_an_input_and_receives_the_task() -> None:
    @taskq.job(queue="train", bind=True)
    def retrying(self: Any, attempts: int = 2) -> Any:
        return self

    assert retrying.taskq_job.inputs == {"attempts": {"type": "int", "default": 2}}
    assert not retrying.taskq_job.accepts_extra


def test_inputs_only_add_or_override() -> None:
    @taskq.job(queue="train", inputs={"epochs": {"description": "passes over the data"},
                                      "seed": {"type": "str"},
                                      "note": {"type": "str", "contextOnly": True}})
    def tune(epochs: int = 1, seed: int = 0) -> None:
        pass

    assert tune.taskq_job.inputs == {
        "epochs": {"type": "int", "default": 1, "description": "passes over the data"},
        "seed": {"type": "str", "default": 0},
        "note": {"type": "str", "contextOnly": True},
    }
    assert tune.taskq_job.context_only() == {"note"}


def test_inputs_as_a_list_of_names_keep_the_signatures_types() -> None:
    @taskq.job(queue="train", inputs=["epochs", "extra"])
    def listed(epochs: int = 1, **kwargs: Any) -> None:
        pass

    assert listed.taskq_job.inputs == {"epochs": {"type": "int", "default": 1},
                                       "extra": {"type": "any"}}


def test_structured_params_are_stored_as_json_and_checked_without_the_function() -> None:
    """The template is JSON; a process that never imported the function (a client, the
    evaluator) rebuilds the same validator from it."""

    @taskq.job(queue="train")
    def search_stored(mode: Literal["fast", "slow"] = "fast", color: Color = Color.red,
               opt: Optimiser = Optimiser(), window: Window | None = None,  # noqa: B008
               sizes: list[int] = [], weights: dict[str, float] = {}) -> None:  # noqa: B006
        pass

    stored = json.loads(json.dumps(search_stored.taskq_job.inputs))  # a template holds it
    assert {n: d["type"] for n, d in stored.items()} == {
        "mode": "str", "color": "str", "opt": "dict", "window": "dict", "sizes": "list",
        "weights": "dict"}
    assert stored["opt"]["default"] == {"lr": 0.1, "layers": [1]}
    given = {"mode": "slow", "color": "green", "opt": {"lr": "0.5"},
             "window": {"size": "30"}, "sizes": ["1", 2], "weights": {"a": "1.5"}}
    assert validate_params(stored, given, job="search") == {
        "mode": "slow", "color": "green", "opt": {"lr": 0.5, "layers": [1]},
        "window": {"size": 30, "unit": "s"}, "sizes": [1, 2], "weights": {"a": 1.5}}
    # The worker, which has the function, hands it the objects its annotations ask for.
    objects = search_stored.taskq_job.validator.validate(given, job="search", objects=True)
    assert objects["color"] is Color.green and objects["opt"] == Optimiser(lr=0.5)
    assert objects["window"] == Window(size=30)


@pytest.mark.parametrize(("given", "message"), [
    ({"epochs": "many"}, "job 'search' params.epochs: expected int, got 'many'"),
    ({"mode": "medium"}, "job 'search' params.mode: Input should be 'fast' or 'slow'"),
    ({"color": "blue"}, "job 'search' params.color: Input should be 'red' or 'green'"),
    ({"opt": {"lr": "x"}}, "job 'search' params.opt.lr: Input should be a valid number, "
                           "unable to parse string as a number"),
    ({"window": {}}, "job 'search' params.window.size: Field required"),
    ({"sizes": ["a"]}, "job 'search' params.sizes.0: Input should be a valid integer, "
                       "unable to parse string as an integer"),
])
def test_one_error_format_names_the_param_and_the_reason(given: dict[str, Any],
                                                         message: str) -> None:
    jd = _search_job()
    stored = json.loads(json.dumps(jd.inputs))
    with pytest.raises(JobError) as info:
        validate_params(stored, given, job="search")
    assert str(info.value) == message
    with pytest.raises(JobError) as info:
        jd.validator.validate(given, job="search", objects=True)
    assert str(info.value) == message


@functools.cache
def _search_job() -> JobDef:
    """Declared once: Celery keeps the first callable of a task name."""

    @taskq.job(queue="train")
    def search(epochs: int = 1, mode: Literal["fast", "slow"] = "fast",
               color: Color = Color.red, opt: Optimiser = Optimiser(),  # noqa: B008
               window: Window | None = None, sizes: list[int] = []) -> None:  # noqa: B006
        pass

    jd: JobDef = search.taskq_job
    return jd


class Scores(TypedDict):
    loss: float
    accuracy: float


def test_a_typed_return_declares_the_outputs() -> None:
    @taskq.job(queue="train")
    def score() -> Scores:
        return {"loss": 0.1, "accuracy": 0.9}

    assert score.taskq_job.outputs == {"loss": {"type": "float"},
                                       "accuracy": {"type": "float"}}


# -- failure 2: declarations checked where they are written -------------------------------


def job_with(**kwargs: Any) -> Any:
    def train(epochs: int = 1) -> None:
        pass
    return taskq.job(**{"queue": "train", **kwargs})(train)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"trigger_on": ["a", "a"]}, "job 'train' trigger_on[1]: 'a' is listed twice"),
    ({"trigger_on_finish": ["prep", "prep"]},
     "job 'train' trigger_on_finish[1]: 'prep' is listed twice"),
    ({"inputs": {"lr": "float"}}, "job 'train' inputs.lr: train() has no parameter 'lr' "
                                  "(add it, take **kwargs, or mark it contextOnly)"),
    ({"inputs": {"epochs": "integer"}}, "job 'train' inputs.epochs.type: 'integer' is not "
                                        "one of ['any', 'bool', 'dict', 'float', 'int', "
                                        "'list', 'str']"),
    ({"inputs": {"epochs": {"defualt": 2}}}, "job 'train' inputs.epochs.defualt: unknown key "
                                             "(known: contextOnly, default, description, "
                                             "required, schema, type)"),
    ({"queue": "a/b/c"}, "job 'train' queue: 'a/b/c' has more than two parts; use 'queue' "
                         "or 'agent/queue'"),
    ({"namespace": "Team A"}, "job 'train' namespace: namespace 'Team A' is malformed: "
                              "lower-case letters, digits, '_' and '-'"),
    ({"hooks": [{"trigger": "failed"}]}, "job 'train' hooks[0].hubRef: Field required"),
    ({"presets": "gpu"}, "job 'train' presets: expected a list of preset names"),
    ({"name": "no spaces"}, "job 'no spaces' name: malformed (letters, digits, '_', '.', "
                            "'-')"),
])
def test_a_bad_declaration_raises_at_decoration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(JobError) as info:
        job_with(**kwargs)
    assert isinstance(info.value, TaskqError)
    assert str(info.value) == message and "\n" not in message


def test_a_default_that_does_not_fit_its_type_raises_at_decoration() -> None:
    with pytest.raises(JobError, match=r"^job 'fit' inputs.epochs.default: expected int, "
                                       r"got 'ten'$"):
        @taskq.job(queue="train")
        def fit(epochs: int = "ten") -> None:  # type: ignore[assignment]
            pass


def test_one_bad_stored_job_never_blocks_syncing_the_others(
        ctx: TestContext, caplog: pytest.LogCaptureFixture) -> None:
    """A declaration that slipped past the decorator (built as data, or by an older taskq):
    the raw pydantic error used to escape the sync, so submitting any other job raised it
    and a worker stored no hooks or triggers after it."""

    @taskq.job(queue="viz")
    def evaluate(uuid: str = "") -> None:
        pass

    @taskq.job(queue="train", hooks=[{"hubRef": "evaluate", "params": {"uuid": "u"}}],
               trigger_on="go")
    def later(epochs: int = 1) -> None:
        pass

    bad = JobDef(name="early", queue="train", namespace="default", project=None,
                 triggers={"upstream": [], "events": [{"name": "a", "parameters": None}] * 2,
                           "mode": "all", "reset": None})
    ctx.jobs = JobRegistry([bad, evaluate.taskq_job, later.taskq_job])
    with caplog.at_level(logging.ERROR):
        assert trigger_admin.sync_job_templates(ctx) == 3
    assert "trigger of job 'early' not stored: trigger_on[1]: 'a' is listed twice" in (
        caplog.text)
    names = {t.name for t in ctx.store.list_triggers("default")}
    assert names == {"later.hooks.0", "later.trigger"}


def test_submitting_another_job_is_not_blocked_by_a_bad_one(tmp_path: Path) -> None:
    """What ``taskq.submit`` asks first: the template, stored on demand by a sync."""

    @taskq.job(queue="train")
    def fine(epochs: int = 1) -> None:
        pass

    bad = JobDef(name="early", queue="train", namespace="default", project=None,
                 triggers={"upstream": [], "events": [{"name": "a", "parameters": None}] * 2,
                           "mode": "all", "reset": None})
    ctx = make_context(tmp_path)
    try:
        ctx.jobs = JobRegistry([bad, fine.taskq_job])
        assert catalog.template(ctx, "fine", "default").inputs == {
            "epochs": {"type": "int", "default": 1}}
    finally:
        ctx.close()


# -- one validator everywhere -------------------------------------------------------------


def test_hooks_and_triggers_coerce_params_from_the_signature(ctx: TestContext) -> None:
    @taskq.job(queue="train", trigger_on=[{"name": "go", "parameters": ["epochs"]}])
    def retrain(epochs: int = 1, mode: Literal["fast", "slow"] = "fast") -> None:
        pass

    with_jobs(ctx, retrain)
    ctx.sync_jobs()
    hook = trigger_admin.check_hook(ctx, {"hubRef": "retrain", "params": {"epochs": "7"}},
                                    "default")
    assert hook.hub_ref == "retrain"
    with pytest.raises(ValidationError, match=r"params\.mode: Input should be 'fast' or "
                                              r"'slow'"):
        trigger_admin.check_hook(ctx, {"hubRef": "retrain", "params": {"mode": "warp"}},
                                 "default")
    ev = ctx.evaluator()
    ev.refresh(force=True)
    custom_events.publish(ctx, "go", {"epochs": "5"}, namespace="default")
    ev.run_once(block_ms=1)
    (item, _), = ctx.publisher.sent
    assert item.params == {"epochs": 5, "mode": "fast"}


def test_unknown_params_are_still_refused_where_they_were() -> None:
    with pytest.raises(JobError, match=r"^params\.lr: job 'fit' has no input 'lr'"):
        validate_inputs({"epochs": {"type": "int"}}, {"lr": 1}, job="fit")


def test_a_validator_is_built_once_per_declaration() -> None:
    from taskq.core.params import ParamsValidator, validator_for

    inputs = {"epochs": {"type": "int", "default": 1}}
    assert validator_for(inputs) is validator_for(json.loads(json.dumps(inputs)))
    assert isinstance(validator_for(inputs), ParamsValidator)
