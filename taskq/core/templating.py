"""Jinja2 in its sandbox, for trigger params now and hook conditions later.

Templates come from users, so they render in an ``ImmutableSandboxedEnvironment`` (no access
to internals, no mutation) with three more bounds the stock sandbox lacks:

* sizes: ``*`` and ``**`` are intercepted and refused when the result would be huge, and any
  integer argument to a call (``center(10**9)``, ``ljust``, ``range``) is capped, so memory
  cannot blow up before the output-size check runs;
* time: in the main thread (the evaluator's, in a Celery pool child) a render is interrupted
  after ``MAX_SECONDS`` with SIGALRM, so nested loops cannot hang the evaluator;
* output: the rendered string is at most ``MAX_OUTPUT_CHARS``.

Nothing here calls eval.
"""

from __future__ import annotations

import functools
import math
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from taskq.errors import TemplateFailure

MAX_OUTPUT_CHARS = 65_536
MAX_RANGE = 10_000
MAX_INT_ARG = MAX_OUTPUT_CHARS
MAX_POWER_BITS = 4_096
MAX_SECONDS = 1.0




def _bounded_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateFailure(f"range of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r


_WIDTH = re.compile(r"\d+")


def _check_format_widths(fmt: str) -> None:
    """``'%099999999d' % 1`` or ``'{:>99999999}'.format(1)``: refuse widths over the cap."""
    for number in _WIDTH.findall(fmt):
        if len(number) > 6 or int(number) > MAX_OUTPUT_CHARS:
            raise TemplateFailure(f"format width {number} exceeds {MAX_OUTPUT_CHARS}")


def _bounded_str_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Size checks for the str methods whose result can dwarf their inputs."""
    obj = getattr(obj, "__wrapped__", obj)  # Jinja wraps str.format in a sandboxed formatter
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        hits = owner.count(old) if old else len(owner) + 1
        if len(owner) + hits * max(0, len(new) - len(old)) > MAX_OUTPUT_CHARS:
            raise TemplateFailure("replace would build more than "
                                  f"{MAX_OUTPUT_CHARS} characters")
    elif name == "join" and args:
        items = list(args[0])[: MAX_RANGE + 1]
        if len(items) > MAX_RANGE:
            raise TemplateFailure(f"join of more than {MAX_RANGE} items")
        total = sum(len(str(i)) for i in items) + len(owner) * max(0, len(items) - 1)
        if total > MAX_OUTPUT_CHARS:
            raise TemplateFailure(f"join would build more than {MAX_OUTPUT_CHARS} characters")
    elif name in ("format", "format_map"):
        _check_format_widths(owner)
    elif name == "expandtabs":
        raise TemplateFailure("expandtabs is not allowed in templates")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":
            if isinstance(left, str):
                _check_format_widths(left)
            return left % right
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (isinstance(seq, str | list | tuple) and isinstance(n, int)
                        and len(seq) * max(n, 0) > MAX_OUTPUT_CHARS):
                    raise TemplateFailure(f"repetition would build {len(seq) * n} items "
                                          f"(limit {MAX_OUTPUT_CHARS})")
            return left * right
        if isinstance(left, int | float) and isinstance(right, int | float):
            base = abs(float(left))
            if base > 1 and right > 0 and right * math.log2(base) > MAX_POWER_BITS:
                raise TemplateFailure(f"power {left}**{right} is too large")
        return left**right

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_int_args(args, kwargs)
        _bounded_str_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _check_int_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARG:
            raise TemplateFailure(f"argument {value} exceeds the limit of {MAX_INT_ARG}")


def _bounded_filter(fn: Any) -> Any:
    @functools.wraps(fn)  # keeps jinja's pass_context/pass_environment marker
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _check_int_args(args, kwargs)
        return fn(*args, **kwargs)

    return wrapper


#: The one bounded sandbox every template and condition runs in.
environment = _BoundedSandbox(undefined=StrictUndefined, autoescape=False)
environment.globals["range"] = _bounded_range
environment.globals.pop("lipsum", None)
environment.filters = {name: _bounded_filter(f) for name, f in environment.filters.items()}


def _filter_guard(name: str, check: Any) -> None:
    inner = environment.filters[name]

    @functools.wraps(inner)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return inner(*args, **kwargs)

    environment.filters[name] = guarded


def _plain(args: tuple[Any, ...]) -> list[Any]:
    """Filter arguments without the eval context Jinja passes to some filters first."""
    return [a for a in args if not hasattr(a, "environment")]


def _replace_check(*args: Any, **kwargs: Any) -> None:
    values = _plain(args)
    if len(values) >= 3:
        _bounded_str_call(str(values[0]).replace, (str(values[1]), str(values[2])), {})


def _join_check(*args: Any, **kwargs: Any) -> None:
    values = _plain(args)
    seq = values[0] if values else []
    sep = str(values[1]) if len(values) > 1 else str(kwargs.get("d", ""))
    _bounded_str_call(sep.join, (list(seq)[: MAX_RANGE + 1],), {})


def _indent_check(s: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    size = len(str(width)) if isinstance(width, str) else int(width)
    if size * (str(s).count("\n") + 1) + len(str(s)) > MAX_OUTPUT_CHARS:
        raise TemplateFailure(f"indent would build more than {MAX_OUTPUT_CHARS} characters")


def _format_check(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_format_widths(str(value))


for _name, _check in (("replace", _replace_check), ("join", _join_check),
                      ("indent", _indent_check), ("format", _format_check)):
    _filter_guard(_name, _check)


class Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; sizes are still bounded
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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


def render(source: str, context: dict[str, Any], *, field: str) -> str:
    if not _is_template(source):
        return source
    try:
        with time_limit(MAX_SECONDS):
            out = str(_compiled(source).render(context))
    except Timeout:
        raise TemplateFailure(f"{field}: rendering took longer than {MAX_SECONDS}s") from None
    except TemplateFailure as exc:
        raise TemplateFailure(f"{field}: {exc}") from None
    except Exception as exc:  # any user-template error is data, never a crash
        raise TemplateFailure(f"{field}: {type(exc).__name__}: {exc}") from None
    if len(out) > MAX_OUTPUT_CHARS:
        raise TemplateFailure(f"{field}: rendered value exceeds {MAX_OUTPUT_CHARS} characters")
    return out


def _walk(value: Any, path: str, leaf: Any) -> Any:
    if isinstance(value, str):
        return leaf(value, path)
    if isinstance(value, dict):
        return {k: _walk(v, f"{path}.{k}", leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", leaf) for i, v in enumerate(value)]
    return value


def render_params(params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Render every string value (nested in lists/dicts too); other values pass through."""
    return {k: _walk(v, f"params.{k}", lambda s, p: render(s, context, field=p))
            for k, v in params.items()}


def check_params(params: dict[str, Any]) -> None:
    for k, v in params.items():
        _walk(v, f"params.{k}", lambda s, p: check_syntax(s, field=p))
