"""The one way to plug in a trigger kind: a ``TriggerKind`` object on a ``KindRegistry``.

A kind turns its stored rows into rules, says how its firings are recorded (``single``: one
firing per match; ``join``: armed until every input has an event; ``entity``: a launch under
the trigger's lock), what it wants read first, and renders a clone's params — all pure. The
runtime builds the registry with every kind; the evaluator and the planner hold no
kind-specific branch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from taskq.core.events import Event
from taskq.core.matching import Match, Rule
from taskq.core.planning import Facts, Plan
from taskq.core.stored import JobTemplate, StoredTrigger

FiringMode = Literal["single", "join", "entity"]
TriggerRow = StoredTrigger


@dataclass(frozen=True)
class Wants:
    """What a kind asks the service to read before planning; most ask nothing, so the hot
    path of an event trigger reads nothing."""

    #: The event's own run, with its metrics (hook conditions, status + metric triggers).
    event_run: bool = False
    #: A run to clone (an entity trigger's ``schedule_task_id``).
    source_run: str | None = None


NOTHING = Wants()


class TriggerKind(Protocol):
    #: The ``triggers.kind`` values this object owns.
    stored_kinds: tuple[str, ...]

    def build_rule(self, row: TriggerRow) -> Rule: ...

    def firing_mode(self, rule: Rule) -> FiringMode: ...

    def wants(self, rule: Rule) -> Wants: ...

    def plan(self, match: Match, template: JobTemplate | None, key: str, facts: Facts,
             events: Mapping[str, Event] | None = None) -> Plan: ...


class KindRegistry:
    """Every kind the runtime plugged in, by stored kind. Built once per runtime."""

    def __init__(self, kinds: Iterable[TriggerKind]) -> None:
        self._by_stored: dict[str, TriggerKind] = {}
        for kind in kinds:
            for stored in kind.stored_kinds:
                if stored in self._by_stored:
                    raise ValueError(f"trigger kind {stored!r} is plugged in twice")
                self._by_stored[stored] = kind

    def __contains__(self, stored: object) -> bool:
        return stored in self._by_stored

    def for_rule(self, rule: Rule) -> TriggerKind:
        return self.get(rule.kind)

    def get(self, stored: str) -> TriggerKind:
        kind = self._by_stored.get(stored)
        if kind is None:
            raise ValueError(f"unknown trigger kind {stored!r} (known: "
                             f"{', '.join(sorted(self._by_stored))})")
        return kind

    def build_rule(self, row: TriggerRow) -> Rule:
        return self.get(row.kind).build_rule(row)
