"""Trigger specs and the pure matcher: no I/O, so it can be tested in microseconds and fuzzed.

The index is keyed by (namespace, kind, ref). An event looks up at most
``len(match_kinds) * len(match_refs)`` keys (four for a final run status), so the cost per
event grows with the rules that match it, not with the number of rules stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskq.events import Event, validate_kind, validate_ref
from taskq.hooks import Hook

KindRefKey = tuple[str, str, str]


class EventTrigger(BaseModel):
    """Fire when ``ref`` emits one of ``kinds`` (Polyaxon's V1EventTrigger).

    ``ref`` is ``jobs.<name>`` (any run of that job) or ``runs.<uuid>`` (one run).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str
    kinds: tuple[str, ...] = Field(min_length=1)

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("{{") and v.endswith("}}"):
            # Polyaxon's docstring spells refs as "{{ ops.x }}"; accept the braces.
            v = v[2:-2].strip()
        return validate_ref(v)

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list | tuple):
            raise ValueError(f"must be a list of event kinds, got {type(v).__name__}")
        return tuple(dict.fromkeys(validate_kind(k) for k in v))


@dataclass(frozen=True)
class Rule:
    """A stored trigger as the evaluator sees it."""

    id: int
    name: str
    namespace: str
    event: EventTrigger
    job: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    queue: str | None = None
    version: int = 1
    #: Set for hooks: the status filter is in ``event``; conditions and context are here.
    hook: Hook | None = field(default=None, compare=False)

    def index_keys(self) -> list[KindRefKey]:
        return [(self.namespace, kind, self.event.ref) for kind in self.event.kinds]


class RuleIndex:
    """Immutable after construction; the evaluator swaps in a new one when triggers change."""

    def __init__(self, rules: Iterable[Rule] = (), version: int | None = None) -> None:
        self._by_key: dict[KindRefKey, list[Rule]] = defaultdict(list)
        self._count = 0
        self.version = version
        for rule in rules:
            self._count += 1
            for key in rule.index_keys():
                self._by_key[key].append(rule)

    def __len__(self) -> int:
        return self._count

    def match(self, event: Event) -> list[Rule]:
        """Rules that fire for ``event``, each once, in a stable order (by rule id)."""
        found: dict[int, Rule] = {}
        for kind in event.match_kinds():
            for ref in event.match_refs():
                for rule in self._by_key.get((event.namespace, kind, ref), ()):
                    found.setdefault(rule.id, rule)
        return [found[k] for k in sorted(found)]
