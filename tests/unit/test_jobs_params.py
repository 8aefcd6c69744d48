"""Coercion of declared job inputs before a run starts (bad params fail the run cleanly)."""

from __future__ import annotations

from typing import Any

import pytest

from taskq.core.jobs import validate_params
from taskq.errors import JobError


def _one(kind: str, value: Any) -> Any:
    return validate_params({"x": {"type": kind}}, {"x": value}, job="j")["x"]


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("int", "3", 3),
    ("int", 4.0, 4),
    ("int", 5, 5),
    ("float", "2.5", 2.5),
    ("float", 2, 2.0),
    ("str", 5, "5"),
    ("str", "s", "s"),
    ("bool", "true", True),
    ("bool", "FALSE", False),
    ("bool", "yes", True),
    ("bool", "0", False),
    ("bool", 1, True),
    ("bool", False, False),
    ("dict", {"a": 1}, {"a": 1}),
    ("list", [1], [1]),
    ("any", object, object),
])
def test_coercion(kind: str, value: Any, expected: Any) -> None:
    result = _one(kind, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(("kind", "value", "reason"), [
    ("bool", "maybe", "expected a bool, got 'maybe'"),
    ("bool", 2, "expected a bool, got 2"),
    ("int", 1.5, "expected an int, got 1.5"),
    ("int", "1.5", "expected int, got '1.5'"),
    ("int", True, "expected int, got a bool"),
    ("float", False, "expected float, got a bool"),
    ("float", "fast", "expected float, got 'fast'"),
    ("dict", [1], "expected a dict, got list"),
    ("list", "abc", "expected a list, got str"),
])
def test_coercion_refusals_name_the_param(kind: str, value: Any, reason: str) -> None:
    with pytest.raises(JobError) as info:
        _one(kind, value)
    assert str(info.value) == f"job 'j' params.x: {reason}"


def test_missing_required_input_names_the_param() -> None:
    with pytest.raises(JobError, match=r"^job 'train' params\.lr: required input is missing$"):
        validate_params({"lr": {"type": "float", "required": True}}, {}, job="train")


def test_required_input_with_default_may_be_omitted() -> None:
    """The default is merged in elsewhere (the firing plan); here absence is not an error."""
    inputs = {"lr": {"type": "float", "required": True, "default": 0.1}}
    assert validate_params(inputs, {}, job="train") == {}


def test_optional_input_may_be_omitted() -> None:
    assert validate_params({"lr": {"type": "float"}}, {"other": 1}, job="t") == {"other": 1}


def test_undeclared_params_pass_through_unchanged() -> None:
    """A job may take ``**kwargs``; undeclared values are not coerced or dropped."""
    params = {"declared": "7", "free": "7", "blob": {"k": [1]}}
    out = validate_params({"declared": {"type": "int"}}, params, job="t")
    assert out == {"declared": 7, "free": "7", "blob": {"k": [1]}}
    assert params["declared"] == "7"  # input not mutated


def test_none_passes_through_for_any_type() -> None:
    assert _one("int", None) is None


def test_required_input_given_as_none_is_missing() -> None:
    with pytest.raises(JobError, match=r"params\.x: required input is missing"):
        validate_params({"x": {"type": "int", "required": True}}, {"x": None}, job="j")


def test_str_input_refuses_containers() -> None:
    with pytest.raises(JobError, match=r"params\.s: expected a str"):
        validate_params({"s": {"type": "str"}}, {"s": {"a": 1}}, job="j")
    assert validate_params({"s": {"type": "str"}}, {"s": 3}, job="j") == {"s": "3"}


def test_set_output_refuses_values_that_cannot_be_stored() -> None:
    """Refused where the job can react, instead of failing the final status write."""
    from datetime import datetime

    from taskq.api.current import current
    from taskq.core.run_context import RunContext, activate

    with activate(RunContext(uuid="u", job="j", params={}, namespace="default")):
        current.set_output("ok", {"a": [1, 2.5, None, "x"]})
        with pytest.raises(ValueError, match="'when' must be JSON-serialisable"):
            current.set_output("when", datetime.now())
        with pytest.raises(ValueError, match="'nan' must be JSON-serialisable"):
            current.set_output("nan", float("nan"))
