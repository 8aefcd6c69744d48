"""Jinja2 in its bounded sandbox, for trigger params and conditions.

Templates come from users, so they render in :mod:`taskq.core.sandbox`: Jinja's immutable
sandbox (no access to internals, no mutation) with one budget per firing — one time limit
and one count of characters built for all of a firing's params and conditions together,
every large value refused before it is built — and each rendered param at most one value's
limit. A firing opens its budget with :func:`render_budget`; a render outside any firing
gets one of its own with the default limits.

Nothing here calls eval.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from jinja2 import TemplateError

from taskq.core import sandbox, sandbox_filters
from taskq.core.budget import RenderLimits
from taskq.core.sandbox import MAX_RANGE, BoundedSandbox, RenderBudget, render_budget, time_limit
from taskq.errors import Overrun, TemplateFailure

__all__ = ["MAX_OUTPUT_CHARS", "MAX_RANGE", "MAX_SECONDS", "RenderBudget", "RenderLimits",
           "Timeout", "check_params", "check_syntax", "environment", "guarded", "render",
           "render_budget", "render_params", "time_limit"]

#: The default limits (settings may change them per deployment, see RenderLimits).
MAX_OUTPUT_CHARS = RenderLimits().value_chars
MAX_INT_ARG = MAX_OUTPUT_CHARS
MAX_SECONDS = RenderLimits().seconds
#: What the alarm raises (the name this module always had for it).
Timeout = Overrun

T = TypeVar("T")

#: The one bounded sandbox every template and condition runs in.
environment = BoundedSandbox()
environment.globals["range"] = sandbox.bounded_range
environment.globals.pop("lipsum", None)
environment.filters = sandbox_filters.install(environment.filters)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Any:
    """Compiling costs milliseconds; a trigger's params are rendered for every firing."""
    return environment.from_string(source)


def _is_template(source: str) -> bool:
    return "{{" in source or "{%" in source or "{#" in source


def check_syntax(source: str, *, field: str) -> None:
    try:
        environment.parse(source)
    except TemplateError as exc:
        raise TemplateFailure(f"{field}: template syntax error: {exc}") from None


def _took_too_long(field: str, what: str, budget: RenderBudget | None) -> TemplateFailure:
    seconds = (budget.limits if budget is not None else RenderLimits()).seconds
    return TemplateFailure(f"{field}: {what} took longer than {seconds}s (one time budget "
                           "for all of a firing's templates and conditions, "
                           "TASKQ_TEMPLATE_SECONDS)")


def guarded(field: str, what: str, work: Callable[[], T]) -> T:
    """Run ``work`` in the open budget (or one of its own); every failure becomes a
    TemplateFailure naming ``field`` — a user's template error is data, never a crash."""
    budget: RenderBudget | None = None
    try:
        with render_budget() as budget:
            if budget.expired:
                raise Overrun
            return work()
    except Overrun:
        if budget is not None:
            budget.expired = True
        raise _took_too_long(field, what, budget) from None
    except TemplateFailure as exc:
        raise TemplateFailure(f"{field}: {exc}") from None
    except Exception as exc:
        raise TemplateFailure(f"{field}: {type(exc).__name__}: {exc}") from None


def _render_checked(source: str, context: dict[str, Any]) -> str:
    """Stream the output and stop at one value's limit, rather than join it and look."""
    budget = sandbox.current()
    cap = budget.limits.value_chars
    parts: list[str] = []
    total = 0
    for chunk in _compiled(source).generate(context):
        total += len(chunk)
        if total > cap:
            raise TemplateFailure(f"rendered value exceeds {cap} characters (the limit of "
                                  "one value, TASKQ_TEMPLATE_MAX_VALUE_CHARS)")
        parts.append(chunk)
    budget.charge(total)
    return "".join(parts)


def render(source: str, context: dict[str, Any], *, field: str) -> str:
    if not _is_template(source):
        return source
    return guarded(field, "rendering", lambda: _render_checked(source, context))


def _walk(value: Any, path: str, leaf: Any) -> Any:
    if isinstance(value, str):
        return leaf(value, path)
    if isinstance(value, dict):
        return {k: _walk(v, f"{path}.{k}", leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", leaf) for i, v in enumerate(value)]
    return value


def render_params(params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Render every string value (nested in lists/dicts too); other values pass through.
    All of them share one budget (the firing's, when one is open)."""
    budget: RenderBudget | None = None
    try:
        with render_budget() as budget:
            return {k: _walk(v, f"params.{k}", lambda s, p: render(s, context, field=p))
                    for k, v in params.items()}
    except Overrun:  # the alarm between two leaves
        raise _took_too_long("params", "rendering", budget) from None


def check_params(params: dict[str, Any]) -> None:
    for k, v in params.items():
        _walk(v, f"params.{k}", lambda s, p: check_syntax(s, field=p))
