"""Hooks, the pure parts: spec spelling, conditions in the sandbox, default context."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from taskq.core.conditions import evaluate_condition
from taskq.core.triggers.hook import (
    DEFAULT_CONTEXT,
    Hook,
    apply_presets,
    check,
    condition_scope,
    default_context,
    split_params,
)
from taskq.errors import TemplateFailure

RUN = {"uuid": "8d3c2a8e-1b4f-4e1a-9d7e-5f6a7b8c9d0e", "job": "train", "status": "succeeded",
       "reason": None, "params": {"learning_rate": 0.05, "some-io-param": "some-value"},
       "outputs": {"loss": 0.125}, "created_at": "2026-01-01T00:00:00+00:00",
       "started_at": "2026-01-01T00:00:02+00:00", "finished_at": "2026-01-01T00:00:12+00:00"}


def test_polyaxon_spelling_and_snake_case_are_the_same_hook() -> None:
    a = Hook.model_validate({"hubRef": "slack", "trigger": "failed",
                             "connection": "slack-connection", "disableDefaults": True})
    b = Hook(hub_ref="slack", trigger="failed", connection="slack-connection",
             disable_defaults=True)
    assert a == b and a.kinds() == ("run_status_failed",)


def test_trigger_defaults_to_done() -> None:
    assert Hook(hub_ref="x").kinds() == ("run_status_done",)
    assert Hook.model_validate({"hubRef": "x", "trigger": None}).trigger == "done"


@pytest.mark.parametrize(("spec", "field"), [
    ({"hubRef": "x", "trigger": "running"}, "trigger"),
    ({"hubRef": ""}, "hubRef"),
    ({"hubRef": "x", "conditions": "{{ loss < }}"}, "conditions"),
    ({"hubRef": "x", "params": [1]}, "params"),
    ({"hubRef": "x", "surprise": 1}, "surprise"),
])
def test_bad_hook_spec_names_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        Hook.model_validate(spec)
    assert err.value.errors()[0]["loc"][0] == field


def test_seed_condition_over_outputs() -> None:
    """`trigger: succeeded` + `conditions: '{{ loss < 0.2 }}'` from the seed."""
    hook = Hook(hub_ref="evaluate", trigger="succeeded", conditions="{{ loss < 0.2 }}")
    assert check(hook, RUN, []) is None
    worse = {**RUN, "outputs": {"loss": 0.9}}
    assert "evaluated to false" in (check(hook, worse, []) or "")


def test_hyphenated_names_as_in_polyaxons_example() -> None:
    scope = condition_scope(RUN, [])
    assert evaluate_condition("'{{ some-io-param == \"some-value\" }}'".strip("'"), scope)
    # A hyphen inside a string literal is left alone.
    assert evaluate_condition('{{ "a-b" == "a-b" }}', scope)


def test_metrics_are_judged_on_their_last_value() -> None:
    metrics = [{"name": "acc", "value": 0.1, "step": 0}, {"name": "acc", "value": 0.95,
                                                            "step": 1}]
    assert evaluate_condition("{{ acc > 0.9 }}", condition_scope(RUN, metrics))
    assert evaluate_condition("{{ metrics.acc > 0.9 and globals.status == 'succeeded' }}",
                              condition_scope(RUN, metrics))


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ range(10**9) | length > 0 }}",
    "{{ 'a' * 10**9 == 'a' }}",
])
def test_injection_payloads_cannot_escape_or_hang(payload: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateFailure):
        evaluate_condition(payload, condition_scope(RUN, []))
    assert time.monotonic() - started < 2.0


def test_undefined_name_is_a_runtime_error_with_its_message() -> None:
    with pytest.raises(TemplateFailure, match="'accuracy' is undefined"):
        evaluate_condition("{{ accuracy > 0.5 }}", condition_scope(RUN, []))


def test_non_boolean_result_is_refused() -> None:
    with pytest.raises(TemplateFailure, match="not a boolean"):
        evaluate_condition("{{ outputs }}", condition_scope(RUN, []))


def test_default_context_has_polyaxons_keys() -> None:
    ctx = default_context(RUN)
    assert tuple(ctx) == DEFAULT_CONTEXT
    assert ctx["duration"] == 10.0 and ctx["wait_time"] == 2.0
    assert ctx["inputs"]["learning_rate"] == 0.05 and ctx["kind"] == "job"


def test_context_only_params_are_split_out() -> None:
    inputs, context = split_params({"a": 1, "b": {"value": 2, "contextOnly": True},
                                    "c": {"value": 3}, "d": {"x": 1}})
    assert inputs == {"a": 1, "c": 3, "d": {"x": 1}} and context == {"b": 2}


def test_presets_apply_in_order_and_the_hook_wins() -> None:
    presets = {"gpu": {"queue": "gpu", "params": {"a": 1, "b": 1}},
               "fast": {"params": {"b": 2}}}
    hook = apply_presets(Hook(hub_ref="x", presets=("gpu", "fast"), params={"a": 9}), presets)
    assert hook.params == {"a": 9, "b": 2} and hook.queue == "gpu"
    with pytest.raises(ValueError, match=r"hook\.presets: unknown preset 'nope'"):
        apply_presets(Hook(hub_ref="x", presets=("nope",)), presets)


@pytest.mark.parametrize("source", ["{{ loss < 1e-5 }}", "{{ x > 1E-3 }}", "{{ 10-x > 0 }}",
                                    "{{ 0.2-margin < 1 }}"])
def test_numbers_with_exponents_and_subtraction_parse(source: str) -> None:
    from taskq.core.conditions import check_condition

    check_condition(source)
    assert evaluate_condition(source, {"loss": 1e-6, "x": 1, "margin": 0.1}) in (True, False)


def test_a_param_named_self_is_reachable() -> None:
    assert evaluate_condition("{{ self > 1 }}", {"self": 2})
