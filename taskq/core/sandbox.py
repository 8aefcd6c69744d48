"""The bounded Jinja2 sandbox: Jinja's ``ImmutableSandboxedEnvironment`` (no internals, no
mutation) plus one budget per firing, checked before the work.

A firing opens a :class:`RenderBudget` (:func:`render_budget`) and every template and
condition it renders shares it: one time limit (SIGALRM in the main thread, where the
evaluator runs; the clock is also read at every checked operation) and one count of the
characters built. Everything that can build a large value in one step is estimated from its
operands first and refused over the limit of one value: ``~``, ``+``, ``*``, ``%``,
``str.format``, ``join``, ``replace``, padding and the growing filters
(:mod:`taskq.core.sandbox_filters`), captured blocks, and printing a value. Jinja's
compile-time constant folding is off, so nothing is built before these checks can see it.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from taskq.core.budget import Clock, RenderLimits
from taskq.core.sandbox_sizes import measure, method_size, percent_size
from taskq.errors import Overrun, TemplateFailure

MAX_RANGE = 10_000
#: ``**`` and ``*`` on integers: results beyond this many bits are refused.
MAX_INT_BITS = 4_096


class RenderBudget:
    """What a firing's renders have left. Not shared between threads."""

    def __init__(self, limits: RenderLimits, clock: Clock | None = None) -> None:
        self.limits = limits
        self.used = 0
        self.clock = clock
        self.deadline = clock() + limits.seconds if clock is not None else None
        self.expired = False

    def check(self, size: int, what: str) -> None:
        """Before building ``size`` characters: refuse what would exceed a limit."""
        cap = self.limits.value_chars
        if size > cap:
            raise TemplateFailure(f"{what} could build {size} characters, which exceeds {cap} "
                                  "characters (the limit of one value, "
                                  "TASKQ_TEMPLATE_MAX_VALUE_CHARS)")
        if self.used + size > self.limits.firing_chars:
            raise TemplateFailure(
                f"{what} could take what this firing's templates built together to "
                f"{self.used + size} characters, over the limit of {self.limits.firing_chars} "
                "(TASKQ_TEMPLATE_MAX_FIRING_CHARS)")
        self.tick()

    def charge(self, size: int) -> None:
        """After building: count it (each result was checked against one value's limit)."""
        self.used += size
        if self.used > self.limits.firing_chars:
            raise TemplateFailure(f"this firing's templates built more than "
                                  f"{self.limits.firing_chars} characters together "
                                  "(TASKQ_TEMPLATE_MAX_FIRING_CHARS)")

    def tick(self) -> None:
        """The cooperative half of the time limit (threads where no alarm can reach)."""
        if self.expired or (self.deadline is not None and self.clock is not None
                            and self.clock() > self.deadline):
            self.expired = True
            raise Overrun


_active: ContextVar[RenderBudget | None] = ContextVar("taskq_render_budget", default=None)


def current() -> RenderBudget:
    """The open budget, or a fresh one for a sandbox used outside any render."""
    return _active.get() or RenderBudget(RenderLimits())


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` raises Overrun in the main thread (the evaluator's, in a
    Celery pool child); elsewhere signals cannot reach, and sizes and the clock still bound
    the work."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Overrun

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def render_budget(limits: RenderLimits | None = None,
                  clock: Clock | None = None) -> Iterator[RenderBudget]:
    """One budget for everything rendered inside; inside an open one, that one."""
    active = _active.get()
    if active is not None:
        yield active
        return
    budget = RenderBudget(limits or RenderLimits(), clock)
    token = _active.set(budget)
    try:
        with time_limit(budget.limits.seconds):
            yield budget
    finally:
        _active.reset(token)


def result_size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | bytearray | list | tuple | dict
                                    | set | frozenset) else 0


def check_int_args(args: Iterable[Any], kwargs: dict[str, Any], cap: int) -> None:
    """``(1).to_bytes(10**9)``: the one count argument no estimate covers (padding, filters
    and ``range`` are estimated or bounded themselves; other integers are values)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > cap:
            raise TemplateFailure(f"argument {value} exceeds the limit of {cap}")


class _CheckedCodeGenerator(CodeGenerator):
    """``~`` goes through the environment, so its size is checked before it is built."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat(context.eval_ctx, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def checked_join(parts: Iterable[str]) -> str:
    """Jinja's ``concat``: captured blocks (``{% set %}...{% endset %}``), macros,
    ``caller()``."""
    budget = current()
    items = parts if isinstance(parts, list) else list(parts)
    budget.check(sum(map(len, items)), "a block's output")
    out = "".join(items)
    budget.charge(len(out))
    return out


@pass_eval_context
def _finalize(eval_ctx: Any, value: Any) -> Any:
    """Before ``{{ value }}`` is printed (converted to a string)."""
    budget = current()
    cap = budget.limits.value_chars
    size = len(value) if isinstance(value, str) else measure(value, cap)
    budget.check(size * (6 if eval_ctx.autoescape else 1), "printing a value")
    return value


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    code_generator_class = _CheckedCodeGenerator
    concat = staticmethod(checked_join)  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, optimized=False,
                         finalize=_finalize)

    def checked_concat(self, eval_ctx: Any, items: tuple[Any, ...]) -> str:
        budget = current()
        cap = budget.limits.value_chars
        size = 0
        for item in items:
            size += measure(item, cap)
            if size > cap:
                break
        budget.check(size * (6 if eval_ctx.autoescape else 1), "'~' concatenation")
        out = markup_join(items) if eval_ctx.autoescape else str_join(items)
        budget.charge(len(out))
        return out

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        if operator == "+":
            if isinstance(left, str | bytes | list | tuple) and isinstance(
                    right, str | bytes | list | tuple):
                escaped = isinstance(left, Markup) or isinstance(right, Markup)
                budget.check((len(left) + len(right)) * (6 if escaped else 1), "'+'")
            out = left + right
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
                    budget.check(len(seq) * max(n, 0), "'*' repetition")
            if (isinstance(left, int) and isinstance(right, int)
                    and left.bit_length() + right.bit_length() > MAX_INT_BITS):
                raise TemplateFailure(f"'*' would build an integer of more than "
                                      f"{MAX_INT_BITS} bits")
            out = left * right
        elif operator == "%":
            if isinstance(left, str | bytes):
                budget.check(percent_size(left, right, budget.limits.value_chars),
                             "'%' formatting")
            out = left % right
        else:
            if isinstance(left, int | float) and isinstance(right, int | float):
                base = abs(float(left))
                if base > 1 and right > 0 and right * math.log2(base) > MAX_INT_BITS:
                    raise TemplateFailure(f"power {left}**{right} is too large")
            out = left**right
        budget.charge(result_size(out))
        return out

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        cap = budget.limits.value_chars
        method = getattr(__obj, "__wrapped__", __obj)  # Jinja wraps str.format itself
        owner = getattr(method, "__self__", None)
        if isinstance(owner, int | float):
            check_int_args(args, kwargs, cap)
        elif isinstance(owner, str | bytes | bytearray):
            name = str(getattr(method, "__name__", ""))
            size, args = method_size(owner, name, args, kwargs, cap)
            if size is not None:
                budget.check(size * (6 if isinstance(owner, Markup) else 1), f"str.{name}")
        out = super().call(__context, __obj, *args, **kwargs)
        budget.charge(result_size(out))
        return out


def bounded_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateFailure(f"range of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r
