"""A model's metrics (`taskq.models.log_metric`): bad input is refused naming the field; a
logged value is stored as the latest of its name and is one `model_version_new_metric`
event on `models.<id>`, committed with it, which an event trigger on the model can hear."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from taskq.core import model_metrics
from taskq.core.kinds import refusal
from taskq.core.watched import Family
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
