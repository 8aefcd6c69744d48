"""Jinja's filters in the bounded sandbox: every filter that can build more than it is given
is estimated from its arguments (counts such as ``center``'s width included) before it
runs; its time is the firing's, and what it returns is counted in the firing's budget.

A filter absent from ``SIZES`` returns something no larger than its input (``first``,
``sort``, ``map``, ``default``, ...). ``lipsum`` is not available.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sized
from typing import Any

from jinja2.utils import _PassArg

from taskq.core.sandbox import current, result_size
from taskq.core.sandbox_sizes import materialize, measure, percent_size, shape

Args = list[Any]
Estimate = Callable[[Args, dict[str, Any], int], int]


def _arg(a: Args, k: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return a[index] if len(a) > index else k.get(name, default)


def _text(value: Any, cap: int) -> str | None:
    """The string a filter will work on, when it is within the limit (else None: the
    estimate then is the value's size, already over the limit)."""
    if isinstance(value, str):
        return value if len(value) <= cap else None
    return str(value) if measure(value, cap) <= cap else None


def _scaled(ascii_factor: int, factor: int) -> Estimate:
    """Case changes, escaping, quoting: at most ``factor`` characters per character
    (``ascii_factor`` for an ASCII string)."""
    def estimate(a: Args, k: dict[str, Any], cap: int) -> int:
        value = _arg(a, k, 0, "value", "")
        ascii_text = isinstance(value, str) and value.isascii()
        return measure(value, cap) * (ascii_factor if ascii_text else factor)

    return estimate


def _escaped(a: Args, k: dict[str, Any], cap: int) -> int:
    """``&`` becomes ``&amp;`` (five characters), ``<`` ``&lt;``, a quote ``&#34;``."""
    value = _arg(a, k, 0, "s", "")
    if not isinstance(value, str):
        return 6 * measure(value, cap)
    return len(value) + 4 * sum(value.count(c) for c in "&<>'\"")


def _center(a: Args, k: dict[str, Any], cap: int) -> int:
    width = _arg(a, k, 1, "width", 80)
    return max(measure(_arg(a, k, 0, "value", ""), cap), width if isinstance(width, int) else 0)


def _indent(a: Args, k: dict[str, Any], cap: int) -> int:
    s = _text(_arg(a, k, 0, "s", ""), cap)
    if s is None:
        return cap + 1
    width = _arg(a, k, 1, "width", 4)
    w = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return len(s) + max(w, 0) * (s.count("\n") + 1)


def _wordwrap(a: Args, k: dict[str, Any], cap: int) -> int:
    """A wrapped line and the next one are longer than ``width`` together (the next one's
    first word did not fit), so there are at most about 2 * len / width wraps."""
    s = _text(_arg(a, k, 0, "s", ""), cap)
    if s is None:
        return cap + 1
    width = _arg(a, k, 1, "width", 79)
    width = width if isinstance(width, int) and width > 0 else 1
    wrapstring = _arg(a, k, 3, "wrapstring", None)
    sep = len(str(wrapstring)) if wrapstring is not None else 1
    return len(s) + (s.count("\n") + 2 + 2 * len(s) // width) * sep


def _replace(a: Args, k: dict[str, Any], cap: int) -> int:
    s = _text(_arg(a, k, 0, "s", ""), cap)
    if s is None:
        return cap + 1
    old, new = str(_arg(a, k, 1, "old", "")), str(_arg(a, k, 2, "new", ""))
    count = _arg(a, k, 3, "count", None)
    hits = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(0, len(new) - len(old))


def _join(a: Args, k: dict[str, Any], cap: int) -> int:
    items = _arg(a, k, 0, "value", [])
    sep = len(str(_arg(a, k, 1, "d", "")))
    total = sep * max(0, len(items) - 1)
    for item in items:
        total += measure(item, cap)
        if total > cap:
            break
    return total


def _sum(a: Args, k: dict[str, Any], cap: int) -> int:
    """Summing lists copies the partial sum each time: refuse the quadratic case too."""
    start = _arg(a, k, 2, "start", 0)
    if not isinstance(start, list | tuple):
        return 0
    items = _arg(a, k, 0, "iterable", [])
    total = len(start)
    for item in items:
        total += measure(item, cap)
        if total * len(items) > 64 * cap:
            break
    return max(total, len(items) * total // 64)


def _format(a: Args, k: dict[str, Any], cap: int) -> int:
    s = _text(_arg(a, k, 0, "value", ""), cap)
    if s is None:
        return cap + 1
    return percent_size(s, k or tuple(a[1:]), cap)


def _truncate(a: Args, k: dict[str, Any], cap: int) -> int:
    return measure(_arg(a, k, 0, "s", ""), cap) + measure(_arg(a, k, 3, "end", "..."), cap)


def _urlize(a: Args, k: dict[str, Any], cap: int) -> int:
    s = _text(_arg(a, k, 0, "value", ""), cap)
    if s is None:
        return cap + 1
    extra = 128 + len(str(_arg(a, k, 3, "target", "") or "")) + len(
        str(_arg(a, k, 4, "rel", "") or ""))
    links = sum(1 for w in s.split() if "." in w or "@" in w or ":" in w)
    return 6 * len(s) + links * extra


def _xmlattr(a: Args, k: dict[str, Any], cap: int) -> int:
    d = _arg(a, k, 0, "d", {})
    return 6 * measure(d, cap) + 8 * (len(d) if isinstance(d, Sized) else 0)


def _tojson(a: Args, k: dict[str, Any], cap: int) -> int:
    value = _arg(a, k, 0, "value", None)
    indent = _arg(a, k, 1, "indent", None)
    width = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    size = 6 * measure(value, cap, as_repr=True)
    if size > cap:
        return size
    nodes, depth = shape(value, (cap - size) // 2)  # each node adds two or more
    return size + nodes * (depth * max(width, 0) + 2)


def _pprint(a: Args, k: dict[str, Any], cap: int) -> int:
    value = _arg(a, k, 0, "value", None)
    size = 2 * measure(value, cap, as_repr=True)
    if size > cap:
        return size
    nodes, depth = shape(value, (cap - size) // 2)
    return size + nodes * (depth + 2)


def _grown(index: int, name: str) -> Estimate:
    """``batch`` and ``slice``: the items, plus up to ``count`` fill values."""
    def estimate(a: Args, k: dict[str, Any], cap: int) -> int:
        value = _arg(a, k, 0, "value", [])
        count = _arg(a, k, index, name, 0)
        return (len(value) if isinstance(value, Sized) else 0) + (
            count if isinstance(count, int) else 0)

    return estimate


def _items(a: Args, k: dict[str, Any], cap: int) -> int:
    value = _arg(a, k, 0, "value", [])
    return len(value) if isinstance(value, Sized) else 0


SIZES: dict[str, Estimate] = {
    "center": _center, "indent": _indent, "wordwrap": _wordwrap, "replace": _replace,
    "join": _join, "sum": _sum, "format": _format, "truncate": _truncate,
    "urlize": _urlize, "xmlattr": _xmlattr, "tojson": _tojson, "pprint": _pprint,
    "batch": _grown(1, "linecount"), "slice": _grown(1, "slices"), "list": _items,
    "string": _scaled(1, 1), "safe": _scaled(1, 1), "reverse": _scaled(1, 1),
    "escape": _escaped, "e": _escaped, "forceescape": _escaped,
    "upper": _scaled(1, 3), "lower": _scaled(1, 3), "title": _scaled(1, 3),
    "capitalize": _scaled(1, 3), "trim": _scaled(1, 3), "striptags": _scaled(1, 3),
    "urlencode": _scaled(3, 12),
}
#: Filters that read an iterable: read once, at most one value's limit of items.
_MATERIALIZED = frozenset({"join", "sum"})


def bounded(name: str, fn: Any) -> Any:
    """``fn`` with its arguments checked and its result estimated before it runs."""
    skip = 0 if _PassArg.from_obj(fn) is None else 1  # the context Jinja passes first
    estimate = SIZES.get(name)

    @functools.wraps(fn)  # keeps jinja's pass_context / pass_eval_context marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        cap = budget.limits.value_chars
        if name in _MATERIALIZED and len(args) > skip:
            args = (*args[:skip], materialize(args[skip], cap, name), *args[skip + 1:])
        if estimate is not None:
            budget.check(estimate(list(args[skip:]), kwargs, cap), f"filter {name}")
        out = fn(*args, **kwargs)
        budget.charge(result_size(out))
        return out

    return guarded


def install(filters: dict[str, Any]) -> dict[str, Any]:
    return {name: bounded(name, fn) for name, fn in filters.items()}
