"""How big a value would be, estimated before it is built.

The template sandbox refuses an operation whose result would exceed a limit *before* the
operation runs, because one C call (``str.format``, ``str.join``, ``str(list)``) can build
gigabytes faster than any timer can interrupt it. These functions give upper bounds from
the operands alone and stop counting just past ``cap``, so estimating a huge value costs
no more than estimating one at the limit. Sizes are in characters (a list item counts as
one when a list is built).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from string import Formatter
from typing import Any

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from taskq.errors import TemplateFailure

#: A float formatted with ``f`` can be 309 digits before the point.
FLOAT_CHARS = 330
#: The C parser behind str.format: (literal, field name, format spec, conversion).
_parse = Formatter().parse
#: Objects taskq never puts in a context (its contexts are JSON data): a generous repr.
OTHER_CHARS = 256


def _str_repr(s: str) -> int:
    if s.isprintable():
        return len(s) + s.count("\\") + min(s.count("'"), s.count('"')) + 2
    return 10 * len(s) + 2  # \x.. \u.... \U........ escapes


def _int_chars(n: int) -> int:
    return n.bit_length() * 30103 // 100000 + 2


def measure(value: Any, cap: int, *, as_repr: bool = False) -> int:
    """An upper bound of ``len(str(value))`` (of ``repr`` with ``as_repr``), exact for
    strings; the walk stops as soon as the bound passes ``cap``."""
    total = 0
    stack: list[tuple[Any, bool]] = [(value, as_repr)]
    while stack:
        v, rep = stack.pop()
        if isinstance(v, str):
            total += _str_repr(v) if rep else len(v)
        elif isinstance(v, bytes | bytearray):
            total += 4 * len(v) + 14
        elif v is None or isinstance(v, bool):
            total += 5
        elif isinstance(v, int):
            total += _int_chars(v)
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, Undefined):
            pass  # str() of a strict undefined raises; nothing gets built
        elif isinstance(v, Mapping):
            total += 2 + 4 * len(v)
            if total <= cap:
                stack.extend((x, True) for pair in v.items() for x in pair)
        elif isinstance(v, list | tuple | set | frozenset):
            total += 2 + 2 * len(v)
            if total <= cap:
                stack.extend((x, True) for x in v)
        elif isinstance(v, Namespace):
            stack.append((object.__getattribute__(v, "_Namespace__attrs"), True))
            total += 14
        elif isinstance(v, range):
            total += 64
        else:
            total += OTHER_CHARS
        if total > cap:
            return total
    return total


def shape(value: Any, cap: int) -> tuple[int, int]:
    """(nodes, depth) of a nested value, counted up to ``cap`` nodes: what pretty printers
    multiply their indentation by."""
    nodes, depth = 0, 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack and nodes + len(stack) <= cap:
        v, d = stack.pop()
        nodes += 1
        depth = max(depth, d)
        if isinstance(v, Mapping | list | tuple | set | frozenset) and len(v) > cap:
            return cap + 1, depth + 1
        if isinstance(v, Mapping):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend((x, d + 1) for x in v)
    return nodes + len(stack), depth


def _formatted(value: Any, cap: int, conversion: str | None) -> int:
    """What one replacement field can print for ``value`` before its width and precision."""
    if conversion in ("r", "a"):
        return measure(value, cap, as_repr=True)
    if isinstance(value, float):
        return FLOAT_CHARS
    if isinstance(value, int) and not isinstance(value, bool):
        return _int_chars(value) * 4 // 3 + 1  # digit grouping: one separator per three
    return measure(value, cap)


def _digits(spec: str) -> int:
    """Every run of digits in a format spec, summed: width and precision, whichever they are."""
    total, run = 0, ""
    for c in spec + " ":
        if c.isdigit():
            run += c
            if len(run) > 9:
                return 10**9
        elif run:
            total, run = total + int(run), ""
    return total


def format_size(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], cap: int) -> int:
    """An upper bound of ``len(fmt.format(*args, **kwargs))`` (``format_map`` passes the
    mapping as ``kwargs``), nested fields in format specs included."""
    total, auto = 0, 0

    def arg(name: str) -> Any:
        nonlocal auto
        first = name.split(".", 1)[0].split("[", 1)[0]
        if first == "":
            first, auto = str(auto), auto + 1
        if first.isdigit():
            i = int(first)
            return args[i] if i < len(args) else ""
        return kwargs.get(first, "")

    def spec_of(spec: str) -> str:
        out = []
        for literal, name, _sub, _conv in _parse(spec):
            out.append(literal)
            if name is not None:
                value = arg(name)
                if measure(value, 64) > 64:
                    return "999999999"  # a huge nested spec: refused by its digits
                out.append(str(value))
        return "".join(out)

    for literal, name, spec, conversion in _parse(fmt):
        total += len(literal)
        if name is not None:
            # an attribute or item of the argument is part of it, or a short repr
            total += _formatted(arg(name), cap, conversion) + (64 if "." in name else 0)
            total += _digits(spec_of(spec or ""))
        if total > cap:
            return total
    return total


def percent_size(fmt: str | bytes, args: Any, cap: int) -> int:
    """An upper bound of ``len(fmt % args)``: each ``%`` spec's width and precision (``*``
    read from the arguments) plus what its argument prints."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    mapping = args if isinstance(args, Mapping) else None
    values = args if isinstance(args, tuple) else (args,)
    total, i, n, used = 0, 0, len(text), 0

    def take() -> Any:
        nonlocal used
        used += 1
        return values[used - 1] if used <= len(values) else 0

    while i < n:
        j = text.find("%", i)
        if j < 0:
            total += n - i
            break
        total += j - i
        i = j + 1
        key = None
        if i < n and text[i] == "(":
            depth, k = 1, i + 1
            while k < n and depth:
                depth += {"(": 1, ")": -1}.get(text[k], 0)
                k += 1
            key, i = text[i + 1:k - 1], k
        while i < n and text[i] in "#0- +":
            i += 1
        for _part in ("width", "precision"):
            if i < n and text[i] == "*":
                width = take()
                total += abs(width) if isinstance(width, int) else 0
                i += 1
            else:
                start = i
                while i < n and text[i].isdigit():
                    i += 1
                total += _digits(text[start:i])
            if _part == "width" and i < n and text[i] == ".":
                i += 1
            else:
                break
        while i < n and text[i] in "hlL":
            i += 1
        conversion = text[i] if i < n else ""
        i += 1
        if conversion == "%":
            total += 1
            continue
        value = mapping.get(key, "") if mapping is not None and key is not None else take()
        total += 1 if conversion == "c" else _formatted(
            value, cap, "r" if conversion in "ra" else None)
        if total > cap:
            return total
    return total


def materialize(value: Any, cap: int, what: str) -> Any:
    """An iterable read once, at most ``cap`` items (a generator must not be consumed by
    the estimate and then again by the operation)."""
    if isinstance(value, str | list | tuple):
        items: Any = value
    else:
        items = list(islice(iter(value), cap + 1))
    if len(items) > cap:
        raise TemplateFailure(f"{what} of more than {cap} items")
    return items


def _replace_size(owner: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    old, new = (*args, None, None)[:2]
    if not isinstance(old, str) or not isinstance(new, str):
        return len(owner)
    count = args[2] if len(args) > 2 else kwargs.get("count", -1)
    hits = owner.count(old) if old else len(owner) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(owner) + hits * max(0, len(new) - len(old))


_CASE = frozenset({"upper", "lower", "casefold", "swapcase", "title", "capitalize"})


def method_size(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                 cap: int) -> tuple[int | None, tuple[Any, ...]]:
    """(an upper bound of the result, the args to call with) for a str or bytes method."""
    n = len(owner)
    if name == "expandtabs":
        raise TemplateFailure("expandtabs is not allowed in templates")
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        return max(n, width if isinstance(width, int) else 0), args
    if name == "replace":
        return _replace_size(owner, args, kwargs) if isinstance(owner, str) else 2 * n, args
    if name == "join" and args:
        items = materialize(args[0], cap, "join")
        total = len(owner) * max(0, len(items) - 1)
        for item in items:
            total += measure(item, cap)
            if total > cap:
                break
        return total, (items, *args[1:])
    if name == "format" and isinstance(owner, str):
        return format_size(owner, args, kwargs, cap), args
    if name == "format_map" and isinstance(owner, str) and args:
        return format_size(owner, (), args[0], cap), args
    if name == "translate" and args and isinstance(owner, str):
        table = args[0]
        values = table.values() if isinstance(table, dict) else materialize(table, cap, name)
        longest = max((len(v) for v in values if isinstance(v, str)), default=1)
        return n * max(1, longest), args
    if name == "encode":
        return (n if owner.isascii() else 64 * n), args
    if name == "hex":
        return 3 * n, args
    if name in _CASE:
        return (n if owner.isascii() else 3 * n), args
    return None, args
