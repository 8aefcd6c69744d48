"""The sandbox bounded per firing and before the work: every way to build a large value is
estimated from its operands and refused over the limit of one value, naming the param and
the limit; all of a firing's renders share one time budget and one count of what they
built. (The sandbox's escape and older bound tests are in test_templating.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from taskq.core.budget import RenderLimits
from taskq.core.events import custom_event
from taskq.core.templating import render, render_budget, render_params
from taskq.errors import TemplateFailure
from taskq.testing import make_context

BIG = "{% set big = 'x' * 60000 %}"
ONE_VALUE = r"exceeds 65536 characters \(the limit of one value, TASKQ_TEMPLATE_MAX_VALUE_CHARS\)"


@pytest.mark.parametrize(("payload", "what"), [
    # Each of these used to build its value in full and only then be measured (or not at
    # all, when only its length was printed).
    ("{% set ns = namespace(s='x') %}{% for i in range(25) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s | length }}", "'~' concatenation"),
    ("{{ ('{:65536}' * 40).format(*range(40)) | length }}", "str.format"),
    ("{{ ('{a:65536}' * 40).format_map({'a': 1}) | length }}", "str.format_map"),
    ("{{ (('%(a)60000s' * 40) % {'a': 1}) | length }}", "'%' formatting"),
    ("{{ ('%60000s' * 40) | format(*range(40)) | length }}", "filter format"),
    (BIG + "{% set y %}{% for i in range(100) %}{{ big }}{% endfor %}{% endset %}"
           "{{ y | length }}", "a block's output"),
    (BIG + "{% macro m() %}{% for i in range(100) %}{{ big }}{% endfor %}{% endmacro %}"
           "{{ m() | length }}", "a block's output"),
    ("{{ ([[1] * 60000] * 100) | string | length }}", "filter string"),
    ("{{ ([[1] * 60000] * 100) | join | length }}", "filter join"),
    ("{{ ('ab ' * 20000) | wordwrap(2, wrapstring='-' * 1000) | length }}", "filter wordwrap"),
    ("{{ ('a' * 1000).translate({97: 'b' * 1000}) | length }}", "str.translate"),
    ("{{ ([[1] * 100] * 100) | tojson(indent=1000) | length }}", "filter tojson"),
    ("{% set ns = namespace(s=[1]) %}{% for i in range(20) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}{{ ns.s | length }}", "'+'"),
])
def test_large_values_are_refused_before_they_are_built(payload: str, what: str) -> None:
    with pytest.raises(TemplateFailure, match=ONE_VALUE) as info:
        render(payload, {}, field="params.big")
    assert str(info.value).startswith(f"params.big: {what} could build ")


def test_integers_cannot_grow_without_bound() -> None:
    squaring = ("{% set ns = namespace(v=3) %}{% for i in range(30) %}"
                "{% set ns.v = ns.v * ns.v %}{% endfor %}{{ ns.v > 1 }}")
    with pytest.raises(TemplateFailure, match="integer of more than 4096 bits"):
        render(squaring, {}, field="params.n")


def test_a_firing_has_one_memory_budget_for_all_its_params() -> None:
    """Twenty params each building 60,000 characters: each within one value's limit,
    together over the firing's (1 Mi characters by default)."""
    params = {f"p{i:02}": "{{ ('x' * 60000) | length }}" for i in range(20)}
    with pytest.raises(TemplateFailure, match=r"TASKQ_TEMPLATE_MAX_FIRING_CHARS") as info:
        render_params(params, {})
    assert str(info.value).startswith("params.p17: ")
    # The same params fit one by one: the budget is the firing's, not each leaf's.
    assert render_params({"p00": params["p00"]}, {}) == {"p00": "60000"}


class StepClock:
    """A clock that moves 0.01 s each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def test_a_firing_has_one_time_budget_for_all_its_params() -> None:
    """Ten params, each well within a second alone, share the firing's second."""
    leaf = "{% for i in range(20) %}{{ i | string }}{% endfor %}"
    params = {f"p{i}": leaf for i in range(10)}
    with render_budget(RenderLimits(seconds=1.0), StepClock()), \
            pytest.raises(TemplateFailure, match=r"took longer than 1\.0s .*TASKQ_TEMPLATE_SECONDS"
                          ) as info:
        render_params(params, {})
    assert not str(info.value).startswith("params.p0: ")
    with render_budget(RenderLimits(seconds=1.0), StepClock()):
        assert render_params({"p0": leaf}, {})["p0"].startswith("012")


def _leaf(n: int) -> str:
    return f"{{% for i in range({n}) %}}{{% for j in range(1000) %}}{{% endfor %}}{{% endfor %}}"


def _calibrated_leaf(seconds: float) -> str:
    """A template that takes about ``seconds`` on this machine, now."""
    n = 1
    while True:
        started = time.monotonic()
        render(_leaf(n), {}, field="calibration")
        took = time.monotonic() - started
        if took > seconds / 4 or n >= 10_000:
            return _leaf(min(10_000, max(1, int(n * seconds / took))))
        n *= 4


def test_the_alarm_stops_a_firing_whose_params_together_run_too_long() -> None:
    """Six params of about 0.4 s each: every one within the old per-leaf second, together
    past the firing's one second (the real alarm, no fake clock)."""
    leaf = _calibrated_leaf(0.4)
    params = {f"p{i}": leaf for i in range(6)}
    with pytest.raises(TemplateFailure, match=r"took longer than 1\.0s") as info:
        render_params(params, {})
    assert not str(info.value).startswith("params.p0: ")


@pytest.mark.parametrize(("payload", "expected"), [
    ("{{ range(3) | map('string') | join(',') }}", "0,1,2"),
    ("{{ ('a', 'b') | join('-') }}", "a-b"),
    ("{{ '{:,}'.format(1234567) }}", "1,234,567"),
    ("{{ '%d items' % 100000 }}", "100000 items"),
    ("{{ {'n': 1}.get('missing', 100000) }}", "100000"),
    ("{{ nothing | default(100000) }}", "100000"),
    ("{% set ns = namespace(n=100000) %}{{ ns.n }}", "100000"),
    ("{{ '{0:>{1}}'.format('x', 3) }}", "  x"),
    ("{{ '%(a)s-%(a)s' % {'a': 1} }}", "1-1"),
    ("{{ 'a' ~ 1 ~ none }}", "a1None"),
    ("{% set y %}{{ 'ab' }}{{ 'c' }}{% endset %}{{ y }}", "abc"),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}", "<1>"),
    ("{{ {'a': [1, 2]} | tojson }}", '{"a": [1, 2]}'),
    ("{{ [1, 2] | pprint }}", "[1, 2]"),
    ("{{ 'Hello World' | wordwrap(5) }}", "Hello\nWorld"),
    ("{{ 'a <b>' | e }}", "a &lt;b&gt;"),
    ("{{ [1] + [2] }}", "[1, 2]"),
    ("{{ 2 ** 10 * 3 }}", "3072"),
    ("{% autoescape true %}{{ '<' ~ 'a' }}{% endautoescape %}", "&lt;a"),
])
def test_ordinary_templates_render_as_before(payload: str, expected: str) -> None:
    assert render(payload, {}, field="params.x") == expected


def test_the_limits_come_from_settings(tmp_path: Path) -> None:
    """TASKQ_TEMPLATE_MAX_VALUE_CHARS reaches the firing: its error names the param and the
    configured limit."""
    ctx = make_context(tmp_path, template_max_value_chars=2048)
    try:
        ctx.store.upsert_job_template(
            name="noop", namespace="default", queue="default", task_name="taskq.job.noop",
            inputs={"x": {"type": "str"}}, outputs={}, project=None, description=None)
        trigger = ctx.store.add_trigger(
            name="wide", namespace="default", kind="event",
            spec={"ref": "events.ping", "kinds": ["custom_event"]}, job="noop",
            params={"x": "{{ 'x' * 3000 }}"}, queue=None)
        ev = ctx.evaluator()
        ev.refresh(force=True)
        ctx.bus.append(custom_event("ping"))
        ev.run_once(block_ms=1)
        [firing] = ctx.store.firings(trigger.id)
        assert firing["outcome"] == "error"
        assert firing["reason"].startswith("params.x: '*' repetition could build 3000 "
                                           "characters, which exceeds 2048 characters")
    finally:
        ctx.close()
