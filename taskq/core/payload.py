"""Payload filters: EventBridge's content patterns on an event's payload, compiled once.

A trigger's ``payload`` says which payloads it wants, field by field:
``{"metric": {"accuracy": [{"numeric": [">=", 0.9]}]}, "branch": ["main",
{"prefix": "release/"}]}``. Every field of the pattern must hold (AND); within a field's
list one value or operator is enough (OR); ``$or`` takes alternatives. The pattern is
compiled when the rule is built, and exact values are what the rule index looks up
(:class:`Buckets`), so ten thousand rules differing by a value cost one dict lookup per
event. Wildcards run on RE2 (linear in the text). No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic_core import core_schema

from taskq.core.payload_tests import (
    OPERATORS,
    Exact,
    Exists,
    Test,
    compile_test,
    describe_value,
    typed,
)
from taskq.errors import FieldError

OR = "$or"
#: Bounds on one pattern: a filter is a handful of fields, not a data set.
MAX_DEPTH = 16
MAX_TESTS = 1_000
Path = tuple[str, ...]
T = TypeVar("T")


def values_at(payload: Any, path: Path) -> list[Any]:
    """Every value at ``path``: an array on the way (or at the end) stands for each of its
    elements, as in EventBridge, so ``commits.author`` reads the author of every commit."""
    value = payload
    for n, key in enumerate(path):  # the common case, objects all the way, walked directly
        if isinstance(value, dict):
            if key not in value:
                return []
            value = value[key]
        elif isinstance(value, list):
            return _walk(_flat(value), path[n:])
        else:
            return []
    return _flat(value) if isinstance(value, list) else [value]


def _walk(current: list[Any], path: Path) -> list[Any]:
    for key in path:
        current = _flat([v[key] for v in current if isinstance(v, dict) and key in v])
    return current


def _flat(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def dotted(path: Path) -> str:
    return ".".join(("payload", *path))


@dataclass(frozen=True)
class Clause:
    """One field of the pattern: it holds when one of its tests accepts one of the values
    found at its path (``exists`` is judged on whether any value is found)."""

    path: Path
    tests: tuple[Test, ...]

    def holds(self, payload: Any) -> bool:
        values = values_at(payload, self.path)
        for t in self.tests:
            if isinstance(t, Exists):
                if t.present == bool(values):
                    return True
                continue
            accepts = t.accepts
            for v in values:
                if accepts(v):
                    return True
        return False

    def exact_keys(self) -> frozenset[tuple[str, Any]] | None:
        """The typed values this clause is satisfied by, if it is exact values only."""
        if self.tests and all(isinstance(t, Exact) for t in self.tests):
            return frozenset(t.key for t in self.tests if isinstance(t, Exact))
        return None

    def describe(self) -> str:
        return " or ".join(t.describe() for t in self.tests)

    def miss(self, payload: Any) -> str:
        values = values_at(payload, self.path)
        seen = ("nothing (the field is absent)" if not values else describe_value(values[0])
                if len(values) == 1 else describe_value(values))
        return f"payload filter `{dotted(self.path)}` {self.describe()}, saw {seen}"


@dataclass(frozen=True)
class PayloadFilter:
    """A compiled pattern: all ``clauses`` hold and, for each ``$or``, one alternative."""

    clauses: tuple[Clause, ...]
    alternatives: tuple[tuple[PayloadFilter, ...], ...] = ()
    #: What the user wrote, as JSON: what is stored and shown back.
    source: str = field(default="{}", compare=False)

    def matches(self, payload: Any) -> bool:
        for c in self.clauses:  # a loop, not all(...): this runs for every candidate
            if not c.holds(payload):
                return False
        return all(any(p.matches(payload) for p in alts) for alts in self.alternatives)

    def miss(self, payload: Any) -> str | None:
        """Why ``payload`` fails: the first clause that does not hold and the value seen
        (``taskq triggers explain``), or None when it matches."""
        for c in self.clauses:
            if not c.holds(payload):
                return c.miss(payload)
        for alts in self.alternatives:
            if not any(p.matches(payload) for p in alts):
                first = alts[0].miss(payload)
                return f"payload filter `$or`: none of its {len(alts)} alternatives " \
                       f"matched (the first: {first})"
        return None

    def index_clause(self) -> tuple[Path, frozenset[tuple[str, Any]]] | None:
        """The clause the rule index files this pattern under: a top-level one of exact
        values only (the one with the fewest values, then the first path)."""
        best: tuple[Path, frozenset[tuple[str, Any]]] | None = None
        for c in sorted(self.clauses, key=lambda c: c.path):
            keys = c.exact_keys()
            if keys is not None and (best is None or len(keys) < len(best[1])):
                best = (c.path, keys)
        return best

    def raw(self) -> Any:
        return json.loads(self.source)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """A pydantic field of this type takes the user's mapping and stores it back."""
        return core_schema.no_info_plain_validator_function(
            compile_filter, serialization=core_schema.plain_serializer_function_ser_schema(
                lambda p: p.raw() if isinstance(p, PayloadFilter) else p))


def compile_filter(raw: Any) -> PayloadFilter:
    """The user's pattern, checked and compiled; raises :class:`FieldError` naming the path
    inside the pattern (``metric.accuracy[0].numeric``) and the reason."""
    if isinstance(raw, PayloadFilter):
        return raw
    if not isinstance(raw, dict):
        raise FieldError("", f"a payload filter is a mapping of payload fields to lists of "
                             f"values or operators, got {type(raw).__name__}")
    if not raw:
        raise FieldError("", "an empty payload filter matches every payload; leave it out")
    try:
        source = json.dumps(raw, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise FieldError("", f"must be plain JSON (strings, numbers, booleans, null, "
                             f"lists, mappings): {exc}") from None
    counter = [0]
    clauses, alternatives = _object(raw, (), counter)
    return PayloadFilter(clauses, alternatives, source)


def _where(path: Path, tail: str = "") -> str:
    return ".".join(path) + tail


def _object(obj: dict[Any, Any], prefix: Path, counter: list[int]
            ) -> tuple[tuple[Clause, ...], tuple[tuple[PayloadFilter, ...], ...]]:
    if len(prefix) >= MAX_DEPTH:
        raise FieldError(_where(prefix), f"nested deeper than {MAX_DEPTH} fields")
    clauses: list[Clause] = []
    alternatives: list[tuple[PayloadFilter, ...]] = []
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise FieldError(_where(prefix), f"field names are non-empty strings, got {key!r}")
        path = (*prefix, key)
        if key == OR:
            alternatives.append(_or(value, prefix, counter))
        elif key.startswith("$"):
            raise FieldError(_where(path), f"unknown operator {key!r} (known: $or)")
        elif key in OPERATORS:
            raise FieldError(_where(path), f"{key!r} is an operator: put it in the field's "
                                           f"list, as [{{{key!r}: ...}}]")
        elif isinstance(value, dict):
            if not value:
                raise FieldError(_where(path), "an empty mapping tests nothing")
            more, alts = _object(value, path, counter)
            clauses.extend(more)
            alternatives.extend(alts)
        else:
            items = value if isinstance(value, list) else [value]
            if not items:
                raise FieldError(_where(path), "an empty list matches no payload; give at "
                                               "least one value or operator")
            counter[0] += len(items)
            if counter[0] > MAX_TESTS:
                raise FieldError(_where(path), f"more than {MAX_TESTS} values and operators "
                                               "in one payload filter")
            tests = tuple(compile_test(item, _where(path, f"[{i}]" if isinstance(
                value, list) else "")) for i, item in enumerate(items))
            clauses.append(Clause(path, tests))
    return tuple(clauses), tuple(alternatives)


def _or(value: Any, prefix: Path, counter: list[int]) -> tuple[PayloadFilter, ...]:
    where = _where((*prefix, OR))
    if not isinstance(value, list) or len(value) < 2:
        raise FieldError(where, "takes a list of at least two alternative patterns")
    out = []
    for i, alt in enumerate(value):
        if not isinstance(alt, dict) or not alt:
            raise FieldError(f"{where}[{i}]", "each alternative is a non-empty mapping of "
                                              "payload fields")
        try:
            clauses, alts = _object(alt, prefix, counter)
        except FieldError as exc:
            raise FieldError(f"{where}[{i}]" + (f".{exc.where}" if exc.where else ""),
                             exc.reason) from None
        out.append(PayloadFilter(clauses, alts, json.dumps(alt)))
    return tuple(out)


class Buckets(Generic[T]):
    """Items (rules) under one index key, filed by their pattern's exact clause: an event
    looks up each indexed path's values in a dict, so items differing by an exact value are
    never tried one by one; items with no exact clause are tried on every event."""

    def __init__(self) -> None:
        self.rest: list[T] = []
        self.by_value: dict[Path, dict[tuple[str, Any], list[T]]] = {}

    def add(self, item: T, pattern: PayloadFilter | None) -> None:
        filed = pattern.index_clause() if pattern is not None else None
        if filed is None:
            self.rest.append(item)
            return
        path, keys = filed
        table = self.by_value.setdefault(path, {})
        for key in keys:
            table.setdefault(key, []).append(item)

    def candidates(self, payload: Any) -> Iterator[T]:
        """Every item that may match ``payload`` (an item may come more than once)."""
        yield from self.rest
        for path, table in self.by_value.items():
            for value in values_at(payload, path):
                key = typed(value)
                if key is not None:
                    yield from table.get(key, ())

    def __len__(self) -> int:
        return len(self.rest) + sum(len(v) for t in self.by_value.values() for v in t.values())

