"""Jinja2 in its sandbox, for trigger params now and hook conditions later.

Templates come from users, so they run in ``ImmutableSandboxedEnvironment`` (no attribute
access to internals, no mutation), with output size bounded. Nothing here calls eval.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 65_536
MAX_RANGE = 10_000


class TemplateFailure(ValueError):
    """A template that could not be rendered; the message is safe to record and show."""


def _bounded_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateFailure(f"range of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r


_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_env.globals["range"] = _bounded_range


def check_syntax(source: str, *, field: str) -> None:
    try:
        _env.parse(source)
    except TemplateError as exc:
        raise TemplateFailure(f"{field}: template syntax error: {exc}") from None


def render(source: str, context: dict[str, Any], *, field: str) -> str:
    if "{{" not in source and "{%" not in source:
        return source
    try:
        out = _env.from_string(source).render(context)
    except TemplateFailure as exc:
        raise TemplateFailure(f"{field}: {exc}") from None
    except Exception as exc:  # any user-template error is data, never a crash
        raise TemplateFailure(f"{field}: {type(exc).__name__}: {exc}") from None
    if len(out) > MAX_OUTPUT_CHARS:
        raise TemplateFailure(f"{field}: rendered value exceeds {MAX_OUTPUT_CHARS} characters")
    return out


def render_params(params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Render every string value (nested in lists/dicts too); other values pass through."""

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return render(value, context, field=path)
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return {k: walk(v, f"params.{k}") for k, v in params.items()}


def check_params(params: dict[str, Any]) -> None:
    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            check_syntax(value, field=path)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    for k, v in params.items():
        walk(v, f"params.{k}")
