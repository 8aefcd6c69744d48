"""The operators of a payload filter (:mod:`taskq.core.payload`), each judging one value.

Values are compared by JSON type as well as value: ``true`` is not ``1`` and ``"1"`` is not
``1`` (Python's ``True == 1`` would say otherwise), while ``1`` and ``1.0`` are the same
number. Only scalars (strings, numbers, booleans, null) are ever accepted by a value test;
an object or an array element that is an object is not a value. No I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from taskq.core import regex
from taskq.errors import FieldError

PREFIX, SUFFIX, ANYTHING_BUT, NUMERIC = "prefix", "suffix", "anything-but", "numeric"
EXISTS, WILDCARD, IGNORE_CASE = "exists", "wildcard", "equals-ignore-case"
OPERATORS = (PREFIX, SUFFIX, ANYTHING_BUT, NUMERIC, EXISTS, WILDCARD, IGNORE_CASE)
_COMPARISONS = ("=", "<", "<=", ">", ">=")
#: What ``anything-but`` may hold besides values.
_BUT_OPERATORS = (PREFIX, SUFFIX, IGNORE_CASE, WILDCARD)


def typed(value: Any) -> tuple[str, Any] | None:
    """The key two equal JSON scalars share (and no unequal pair does); None for objects
    and arrays, which no exact value equals."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return None


def describe_value(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


@dataclass(frozen=True)
class Exact:
    key: tuple[str, Any]

    def accepts(self, value: Any) -> bool:
        return typed(value) == self.key

    def describe(self) -> str:
        return describe_value(self.key[1])


@dataclass(frozen=True)
class Prefix:
    text: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith(self.text)

    def describe(self) -> str:
        return f"prefix {describe_value(self.text)}"


@dataclass(frozen=True)
class Suffix:
    text: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.endswith(self.text)

    def describe(self) -> str:
        return f"suffix {describe_value(self.text)}"


@dataclass(frozen=True)
class IgnoreCase:
    text: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold() == self.text.casefold()

    def describe(self) -> str:
        return f"equals-ignore-case {describe_value(self.text)}"


@dataclass(frozen=True)
class Wildcard:
    """``*`` stands for any run of characters (``\\*`` for a star itself), matched on RE2
    so that no pattern costs more than linear time in the value."""

    text: str
    compiled: str
    #: Compiled once with the rule and held by it: a shared cache of compiled patterns
    #: would be thrashed by thousands of wildcard rules, recompiling on every event.
    pattern: regex.Pattern = field(compare=False, hash=False, repr=False)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and self.pattern.search(value) is not None

    def describe(self) -> str:
        return f"wildcard {describe_value(self.text)}"


@dataclass(frozen=True)
class Numeric:
    bounds: tuple[tuple[str, float], ...]

    def accepts(self, value: Any) -> bool:
        return number(value) and all(_compare(value, op, n) for op, n in self.bounds)

    def describe(self) -> str:
        return "numeric " + " ".join(f"{op} {describe_value(n)}" for op, n in self.bounds)


@dataclass(frozen=True)
class Exists:
    present: bool

    def accepts(self, value: Any) -> bool:  # judged on the whole field by Clause.holds
        return self.present

    def describe(self) -> str:
        return "exists" if self.present else "is absent"


@dataclass(frozen=True)
class AnythingBut:
    """A scalar that none of ``excluded`` accepts (a missing field is not such a value)."""

    excluded: tuple[Exact | Prefix | Suffix | IgnoreCase | Wildcard, ...]

    def accepts(self, value: Any) -> bool:
        return typed(value) is not None and not any(t.accepts(value) for t in self.excluded)

    def describe(self) -> str:
        return "anything-but " + ", ".join(t.describe() for t in self.excluded)


Test = Exact | Prefix | Suffix | IgnoreCase | Wildcard | Numeric | Exists | AnythingBut


def _compare(value: float, op: str, n: float) -> bool:
    return {"=": value == n, "<": value < n, "<=": value <= n, ">": value > n,
            ">=": value >= n}[op]


def compile_test(item: Any, where: str) -> Test:
    """One entry of a field's list: a value, or a one-key operator mapping."""
    key = typed(item)
    if key is not None:
        if isinstance(item, float) and not math.isfinite(item):
            raise FieldError(where, "numbers must be finite")
        return Exact(key)
    if not isinstance(item, dict):
        raise FieldError(where, "expected a value (string, number, boolean, null) or an "
                                f"operator mapping, got a {type(item).__name__}")
    if len(item) != 1:
        raise FieldError(where, f"an operator mapping has one key (one of "
                                f"{', '.join(OPERATORS)}), got {len(item)}")
    [(op, arg)] = item.items()
    here = f"{where}.{op}"
    if op in (PREFIX, SUFFIX, IGNORE_CASE, WILDCARD):
        return _text_test(op, arg, here)
    if op == NUMERIC:
        return _numeric(arg, here)
    if op == EXISTS:
        if not isinstance(arg, bool):
            raise FieldError(here, f"takes true or false, got {describe_value(arg)}")
        return Exists(arg)
    if op == ANYTHING_BUT:
        return _anything_but(arg, here)
    raise FieldError(where, f"unknown operator {op!r} (known: {', '.join(OPERATORS)})")


def _text_test(op: str, arg: Any, where: str) -> Exact | Prefix | Suffix | IgnoreCase | Wildcard:
    if not isinstance(arg, str):
        raise FieldError(where, f"takes a string, got {describe_value(arg)}")
    if op == PREFIX:
        return Prefix(arg)
    if op == SUFFIX:
        return Suffix(arg)
    if op == IGNORE_CASE:
        return IgnoreCase(arg)
    compiled = _wildcard_regex(arg, where)
    try:
        pattern = regex.compile_user(compiled)
    except ValueError as exc:
        raise FieldError(where, str(exc)) from None
    return Wildcard(arg, compiled, pattern)


def _wildcard_regex(text: str, where: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in ("*", "\\"):
                raise FieldError(where, "only \\* (a star) and \\\\ (a backslash) are escapes "
                                        "in a wildcard")
            out.append(_literal(nxt))
            i += 2
            continue
        out.append(".*" if c == "*" else _literal(c))
        i += 1
    return "^(?s:" + "".join(out) + ")$"


def _literal(c: str) -> str:
    return c if c.isalnum() or c == "_" else f"\\x{{{ord(c):x}}}"


def _numeric(arg: Any, where: str) -> Numeric:
    if not isinstance(arg, list) or not arg or len(arg) % 2:
        raise FieldError(where, "takes comparisons and numbers in pairs, as [\">=\", 0.9] or "
                                "[\">\", 0, \"<=\", 5]")
    bounds = []
    for i in range(0, len(arg), 2):
        op, n = arg[i], arg[i + 1]
        if op not in _COMPARISONS:
            raise FieldError(f"{where}[{i}]", f"{describe_value(op)} is not a comparison "
                                              f"(one of {', '.join(_COMPARISONS)})")
        if not number(n):
            raise FieldError(f"{where}[{i + 1}]", f"{describe_value(n)} is not a finite "
                                                  "number")
        bounds.append((op, n))
    return Numeric(tuple(bounds))


def _anything_but(arg: Any, where: str) -> AnythingBut:
    if isinstance(arg, dict):
        if len(arg) != 1 or next(iter(arg)) not in _BUT_OPERATORS:
            raise FieldError(where, f"takes values, or one of {', '.join(_BUT_OPERATORS)} "
                                    f"as {{\"prefix\": \"...\"}}")
        [(op, text)] = arg.items()
        return AnythingBut((_text_test(op, text, f"{where}.{op}"),))
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise FieldError(where, "an empty list excludes nothing")
    out: list[Exact | Prefix | Suffix | IgnoreCase | Wildcard] = []
    for i, v in enumerate(items):
        key = typed(v)
        if key is None or (isinstance(v, float) and not math.isfinite(v)):
            raise FieldError(f"{where}[{i}]" if isinstance(arg, list) else where,
                             f"takes values (strings, numbers, booleans, null), got "
                             f"{describe_value(v)}")
        out.append(Exact(key))
    return AnythingBut(tuple(out))
