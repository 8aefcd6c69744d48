"""A model's metrics (`taskq.models.log_metric`): bad input is refused naming the field; a
logged value is stored as the latest of its name and is one `model_version_new_metric`
event on `models.<id>`, committed with it, which an event trigger on the model can hear."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError as PydanticError

from taskq.core import model_metrics
from taskq.core.kinds import refusal
from taskq.core.triggers.entity_spec import EntitySpec, RegistryFilter, listen_kinds
from taskq.core.watched import Family, change_key
from taskq.errors import NotFound, ValidationError
from taskq.testing import TestContext, make_context


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[TestContext]:
    context = make_context(tmp_path)
    yield context
    context.close()


@pytest.mark.parametrize(("name", "value", "step", "error"), [
    ("", 1.0, None, r"^name: must be a non-empty string"),
    ("  ", 1.0, None, r"^name: must be a non-empty string"),
    (None, 1.0, None, r"^name: must be a non-empty string"),
    ("x" * 257, 1.0, None, r"^name: must be a non-empty string of at most 256"),
    ("acc", float("nan"), None, r"^value: must be finite, got nan$"),
    ("acc", float("-inf"), None, r"^value: must be finite, got -inf$"),
    ("acc", "0.9", None, r"^value: must be a number, got str$"),
    ("acc", True, None, r"^value: must be a number, got bool$"),
    ("acc", 0.9, -1, r"^step: must be a non-negative integer or None, got -1$"),
    ("acc", 0.9, 1.5, r"^step: must be a non-negative integer or None, got 1\.5$"),
])
def test_bad_metric_input_names_the_field(name: object, value: object, step: object,
                                          error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        model_metrics.check(name, value, step)


def test_the_model_keeps_the_latest_value_of_each_name() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    metrics = model_metrics.updated({}, "acc", 0.8, 1, at)
    metrics = model_metrics.updated(metrics, "acc", 0.9, 2, at)
    metrics = model_metrics.updated(metrics, "f1", 0.5, None, at)
    assert metrics["acc"] == {"value": 0.9, "step": 2, "at": at.isoformat(timespec="microseconds"),
                              "n": 2, "min": 0.8, "max": 0.9}
    assert metrics["f1"]["n"] == 1


def test_a_logged_metric_is_stored_with_its_event(ctx: TestContext) -> None:
    view, _ = ctx.store.register_entity(
        Family.MODELS, namespace="default", name="resnet", project="vision", version="3",
        tags=[], uri=None, metadata={}, published=False)
    ctx.store.log_model_metric(view["id"], "default", "acc", 0.81, 1)
    after, event = ctx.store.log_model_metric(view["id"], "default", "acc", 0.87, 2)
    assert (event.kind, event.ref, event.project) == (
        "model_version_new_metric", f"models.{view['id']}", "vision")
    p = event.payload
    assert {k: p[k] for k in ("id", "name", "project", "version", "metric", "value", "step",
                              "previous_value")} == {
        "id": view["id"], "name": "resnet", "project": "vision", "version": "3",
        "metric": "acc", "value": 0.87, "step": 2, "previous_value": 0.81}
    assert after["metrics"]["acc"]["value"] == 0.87 and after["metrics"]["acc"]["n"] == 2
    got = ctx.store.get_entity(Family.MODELS, view["id"], "default")
    assert got is not None and got["metrics"] == after["metrics"]
    # Not watched state: the poller's re-check finds nothing to emit.
    assert ctx.store.sync_entity(Family.MODELS, view["id"]) is None
    with pytest.raises(NotFound, match=r"^id: no model 'nope' in namespace 'default'$"):
        ctx.store.log_model_metric("nope", "default", "acc", 0.1, None)


def test_a_trigger_on_a_models_new_metric_is_accepted() -> None:
    assert refusal("model_version_new_metric", "models.m1") is None
    assert refusal("model_version_new_metric", "models.*") is None
    assert "never sends" in (refusal("model_version_new_metric", "datasets.d1") or "")


# -- a model trigger with a metric threshold -------------------------------------------


def metric_event(value: float, previous: float | None, **entity: Any) -> Any:
    view = {"id": "m1", "namespace": "default", "name": "resnet", "project": "vision",
            "version": "3", "tags": [], "published": True, "archived": False, **entity}
    before = {"value": previous} if previous is not None else None
    return model_metrics.event(view, "acc", value, None, before,
                               datetime(2026, 12, 1, tzinfo=UTC))


def spec(**kw: Any) -> EntitySpec:
    return EntitySpec(family=kw.pop("family", Family.MODELS), target="job", **kw)


def test_a_model_metric_trigger_fires_when_a_logged_value_crosses_into_its_region() -> None:
    flt = RegistryFilter(spec(metric="acc", threshold=0.9, sign="max", on_publish=True,
                              project="vision"))
    assert listen_kinds(flt.spec) == ("model_version_new_metric",)
    assert flt.accepts(metric_event(0.92, None))        # the first value, in the region
    assert flt.accepts(metric_event(0.92, 0.85))        # crossing
    assert flt.accepts(metric_event(0.90, 0.85))        # max: at or above, as ClearML
    assert not flt.accepts(metric_event(0.95, 0.92))    # already there
    assert not flt.accepts(metric_event(0.85, 0.95))    # leaving
    assert not flt.accepts(metric_event(0.92, 0.85, published=False))  # on_publish holds?
    assert not flt.accepts(metric_event(0.92, 0.85, archived=True))
    assert not flt.accepts(metric_event(0.92, 0.85, project="nlp"))
    low = RegistryFilter(spec(metric="loss", threshold=0.1))  # min by default
    assert not low.accepts(metric_event(0.05, None))    # another metric
    # A model trigger without a metric does not hear logged metrics at all.
    assert "model_version_new_metric" not in listen_kinds(spec(on_publish=True))


def test_each_logged_value_is_its_own_change_for_the_dedup_key() -> None:
    first, second = metric_event(0.92, None), metric_event(0.93, None)
    assert change_key(first) != change_key(second)
    assert change_key(first) == f"models.m1:e{first.id}"


@pytest.mark.parametrize(("kw", "error"), [
    ({"family": Family.DATASETS, "metric": "acc", "threshold": 1.0},
     "trigger_on_metric is for model and run triggers"),
    ({"metric": "acc", "threshold": 1.0, "variant": "val"}, "judges the last value"),
    ({"metric": "acc", "threshold": 1.0, "judge": "extreme"}, "judges the last value"),
    ({"metric": "acc"}, "trigger_on_metric and trigger_on_threshold go together"),
    ({"on_status": ("running",)}, "status and dev-run filters are for run triggers"),
])
def test_a_model_metric_trigger_that_cannot_work_is_refused(kw: dict[str, Any],
                                                           error: str) -> None:
    with pytest.raises(PydanticError, match=error):
        spec(**kw)
