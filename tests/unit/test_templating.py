"""User templates in trigger params: rendered in Jinja2's immutable sandbox, bounded."""

from __future__ import annotations

import time
from typing import Any

import pytest

from taskq.core.templating import (
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    check_params,
    check_syntax,
    render,
    render_params,
)
from taskq.errors import TemplateFailure

RUN = "0f0e0d0c-0b0a-4908-8706-050403020100"
CONTEXT: dict[str, Any] = {
    "trigger": {"name": "after-train", "run": {"uuid": RUN, "job": "train",
                                               "outputs": {"acc": 0.9}}},
    "run": {"uuid": RUN},
}


def test_renders_from_context() -> None:
    assert render("{{ trigger.run.uuid }}", CONTEXT, field="params.x") == RUN
    assert render("run-{{ trigger.run.job }}-{{ trigger.run.outputs.acc }}", CONTEXT,
                  field="params.x") == "run-train-0.9"


def test_plain_strings_are_returned_untouched() -> None:
    """No template markers: the value is data, even if it has other braces in it."""
    for text in ["plain", "{not a template}", "", "50% {x}"]:
        assert render(text, {}, field="params.x") == text


def test_render_params_walks_nested_dicts_and_lists() -> None:
    params = {
        "upstream": "{{ trigger.run.uuid }}",
        "nested": {"deep": {"name": "{{ trigger.name }}"}, "n": 3},
        "items": ["{{ run.uuid }}", {"job": "{{ trigger.run.job }}"}, 1.5],
    }
    assert render_params(params, CONTEXT) == {
        "upstream": RUN,
        "nested": {"deep": {"name": "after-train"}, "n": 3},
        "items": [RUN, {"job": "train"}, 1.5],
    }


def test_render_params_passes_non_strings_through() -> None:
    sentinel = object()
    params: dict[str, Any] = {"i": 1, "f": 2.5, "b": True, "none": None, "obj": sentinel}
    out = render_params(params, CONTEXT)
    assert out == params
    assert out["obj"] is sentinel
    assert out["b"] is True


def test_render_params_does_not_mutate_input() -> None:
    params = {"a": ["{{ run.uuid }}"]}
    render_params(params, CONTEXT)
    assert params == {"a": ["{{ run.uuid }}"]}


@pytest.mark.parametrize(("params", "field"), [
    ({"x": "{{ missing }}"}, "params.x"),
    ({"x": "{{ trigger.nope.deeper }}"}, "params.x"),
    ({"outer": {"inner": "{{ missing }}"}}, "params.outer.inner"),
    ({"lst": ["ok", "{{ missing }}"]}, "params.lst[1]"),
])
def test_undefined_is_an_error_naming_the_field(params: dict[str, Any], field: str) -> None:
    """StrictUndefined: a typo must fail the firing, not silently pass an empty string."""
    with pytest.raises(TemplateFailure) as info:
        render_params(params, CONTEXT)
    message = str(info.value)
    assert message.startswith(f"{field}: ")
    assert "UndefinedError" in message


def test_runtime_errors_become_template_failures() -> None:
    with pytest.raises(TemplateFailure, match=r"^params\.x: ZeroDivisionError"):
        render("{{ 1 / 0 }}", {}, field="params.x")


@pytest.mark.parametrize(("params", "field"), [
    ({"x": "{{ unclosed"}, "params.x"),
    ({"a": {"b": "{% if %}"}}, "params.a.b"),
    ({"a": ["fine", "{{ 1 + }}"]}, "params.a[1]"),
])
def test_check_params_reports_syntax_errors_with_field(params: dict[str, Any],
                                                       field: str) -> None:
    """Syntax is checked when the trigger is registered, long before it fires."""
    with pytest.raises(TemplateFailure) as info:
        check_params(params)
    assert str(info.value).startswith(f"{field}: template syntax error")


def test_check_params_accepts_valid_templates_without_context() -> None:
    """Registration has no event yet: undefined names are not a syntax error."""
    check_params({"x": "{{ trigger.run.uuid }}", "y": [1, {"z": "{% if a %}b{% endif %}"}]})


def test_check_syntax_names_field() -> None:
    with pytest.raises(TemplateFailure, match=r"^when: template syntax error"):
        check_syntax("{{ }", field="when")


# -- sandbox escapes ----------------------------------------------------------------------

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ lipsum.__globals__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ self.__init__ }}",
    "{{ config }}",
    "{{ request }}",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_known_injection_payloads_are_refused(payload: str) -> None:
    """Templates come from users; none of the classic SSTI escapes may reach internals."""
    with pytest.raises(TemplateFailure) as info:
        render(payload, {}, field="params.x")
    message = str(info.value)
    assert message.startswith("params.x: ")
    assert "SecurityError" in message or "UndefinedError" in message
    # Refused before any object was reached: nothing leaks into the recorded message.
    assert "<class" not in message
    assert "builtins" not in message


@pytest.mark.parametrize("payload", ["{{ [].append(1) }}", "{{ {}.update(a=1) }}",
                                     "{{ trigger.run.update(uuid='x') }}"])
def test_immutable_sandbox_refuses_mutation(payload: str) -> None:
    """The context is shared with the firing record; a template must not be able to edit it."""
    context = {"trigger": {"run": {"uuid": RUN}}}
    with pytest.raises(TemplateFailure, match="SecurityError"):
        render(payload, context, field="params.x")
    assert context == {"trigger": {"run": {"uuid": RUN}}}


# -- resource bounds ----------------------------------------------------------------------


@pytest.mark.parametrize("payload", ["{{ range(10**9) | list }}",
                                     "{% for i in range(10**9) %}{% endfor %}"])
def test_huge_range_is_refused_quickly(payload: str) -> None:
    started = time.monotonic()
    # Refused before any list is built: by the call bound (10**9 as an argument) or the
    # range bound, whichever trips first.
    with pytest.raises(TemplateFailure, match="exceeds the limit of"):
        render(payload, {}, field="params.x")
    assert time.monotonic() - started < 1.0


def test_range_at_the_limit_is_allowed() -> None:
    assert render(f"{{{{ range({MAX_RANGE}) | list | length }}}}", {},
                  field="params.x") == str(MAX_RANGE)
    with pytest.raises(TemplateFailure, match="exceeds the limit"):
        render(f"{{{{ range({MAX_RANGE + 1}) | list | length }}}}", {}, field="params.x")


def test_output_at_the_limit_is_allowed() -> None:
    out = render(f"{{{{ 'a' * {MAX_OUTPUT_CHARS} }}}}", {}, field="params.x")
    assert out == "a" * MAX_OUTPUT_CHARS


@pytest.mark.parametrize("payload", [
    "{{ ('a' * 60000) ~ ('b' * 60000) }}",
    "{% for i in range(5000) %}twenty characters...{% endfor %}",
])
def test_output_over_the_limit_is_refused(payload: str) -> None:
    """Output built without a single huge operation is still capped after rendering."""
    with pytest.raises(TemplateFailure, match=f"exceeds {MAX_OUTPUT_CHARS} characters"):
        render(payload, {}, field="params.x")


@pytest.mark.parametrize("payload", [
    f"{{{{ 'a' * {MAX_OUTPUT_CHARS + 1} }}}}",
    "{{ 'a' * 10**9 }}",
    "{{ 'x' | center(10**9) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ (2 ** (10**9)) > 1 }}",
])
def test_huge_intermediate_values_are_refused_before_they_are_built(payload: str) -> None:
    """Memory is bounded during rendering, not only in the final string."""
    started = time.monotonic()
    with pytest.raises(TemplateFailure):
        render(payload, {}, field="params.x")
    assert time.monotonic() - started < 0.5


def test_nested_loops_are_interrupted() -> None:
    """A render that runs too long is stopped, so it can never hang the evaluator."""
    from taskq.core.templating import MAX_SECONDS

    src = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateFailure, match="longer than"):
        render(src, {}, field="params.x")
    assert time.monotonic() - started < MAX_SECONDS + 1.0


@pytest.mark.parametrize("payload", [
    "{{ ('%020000000d' % 1) | length > 0 }}",
    "{{ '{:>20000000}'.format(1) }}",
    "{{ 'ab'.center(60000).replace('', 'x' * 60000) }}",
    "{{ 'ab' | replace('', 'x' * 60000) }}",
    "{{ range(10000) | join('x' * 60000) }}",
    "{{ ('\\n' * 60000) | indent(60000) }}",
    "{{ '%-20000000s' | format('x') }}",
    "{{ 'x\\tx'.expandtabs(60000) }}",
])
def test_string_builders_are_bounded_before_they_run(payload: str) -> None:
    """Formatting widths, replace, join and indent could each build gigabytes in one C
    call, which no time limit interrupts: they are refused up front."""
    started = time.monotonic()
    with pytest.raises(TemplateFailure):
        render(payload, {}, field="params.x")
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(("payload", "expected"), [
    ("{{ '%05d' % 3 }}", "00003"),
    ("{{ '{}-{}'.format(1, 2) }}", "1-2"),
    ("{{ [1, 2] | join(',') }}", "1,2"),
    ("{{ 'a-b' | replace('-', '+') }}", "a+b"),
    ("{{ 'x' | indent(2) }}", "x"),
])
def test_ordinary_string_building_still_works(payload: str, expected: str) -> None:
    assert render(payload, {}, field="params.x") == expected
