"""Trigger specs and the pure matcher: no I/O, so it can be tested in microseconds and fuzzed.

The index is keyed by (namespace, kind, ref). An event looks up at most
``len(match_kinds) * len(match_refs)`` keys (four for a final run status), so the cost per
event grows with the rules that match it, not with the number of rules stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from taskq.core.budget import RuleBudget
from taskq.core.events import Event, match_kinds_of, match_refs_of
from taskq.core.names import (
    family_wildcard,
    unbrace,
    validate_kinds,
    validate_trigger_ref,
)
from taskq.core.payload import Buckets, PayloadFilter
from taskq.errors import Overrun

KindRefKey = tuple[str, str, str]
Mode = Literal["all", "any"]
#: Which part of an input an event failed, in the order they are tested.
MatchPart = Literal["namespace", "kind", "ref", "payload", "filter"]


class DropsNoPayload(BaseModel):
    """A spec with no payload filter is stored as it was before filters existed, so specs
    stored then still compare equal to the same spec written now."""

    @model_serializer(mode="wrap")
    def _drop_no_payload(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("payload", 0) is None:
            del out["payload"]
        return out


class EventTrigger(DropsNoPayload):
    """Fire when ``ref`` emits one of ``kinds`` (Polyaxon's V1EventTrigger) whose payload
    matches ``payload`` (docs/payload-filters.md), if given.

    ``ref`` is ``jobs.<name>`` (any run of that job), ``runs.<uuid>`` (one run), or any
    other ref of docs/events.md; each kind must be one that ref can send.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str
    kinds: tuple[str, ...] = Field(min_length=1)
    payload: PayloadFilter | None = None

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        return validate_trigger_ref(unbrace(v))

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, v: Any, info: ValidationInfo) -> Any:
        return validate_kinds(v, ref=info.data.get("ref"))


def lookup_refs(event: Event) -> tuple[str, ...]:
    """Every trigger ref that can address ``event``: its own, its job's, and the family's."""
    return lookup_refs_of(event.ref, event.payload.get("job"))


def lookup_refs_of(ref: str, job: Any) -> tuple[str, ...]:
    wildcard = "jobs.*" if ref.startswith("runs.") else family_wildcard(ref)
    return (*match_refs_of(ref, job), wildcard)


def lookup_keys(namespace: str, kind: str, ref: str, job: Any) -> list[KindRefKey]:
    """The index keys an event of these fields (``job`` its payload's) is looked up under,
    in the order :meth:`RuleIndex.match` tries them: known before the body is decoded."""
    refs = lookup_refs_of(ref, job)
    return [(namespace, k, r) for k in match_kinds_of(kind) for r in refs]


class EventFilter(Protocol):
    """A pure predicate narrowing what an input's (kind, ref) key already matched: tags,
    name patterns, projects, metric thresholds. Must not do I/O."""

    def accepts(self, event: Event) -> bool: ...


@dataclass(frozen=True)
class Input:
    """One thing a rule listens to. A rule with several inputs and mode ``all`` fires once
    each input has seen an event (an AND join); with mode ``any``, on each of them."""

    key: str  # how current.trigger[key] names it: the upstream job or the event name
    namespace: str  # where the events come from (may differ from the rule's, if allowed)
    event: EventTrigger
    filter: EventFilter | None = field(default=None, compare=False)

    def accepts(self, event: Event) -> bool:
        return self.mismatch(event) is None

    def mismatch(self, event: Event) -> MatchPart | None:
        """The first part of this input ``event`` fails, or None when it satisfies it: the
        one test behind both the evaluator's match and ``taskq triggers explain``."""
        if event.namespace != self.namespace:
            return "namespace"
        if not set(event.match_kinds()) & set(self.event.kinds):
            return "kind"
        if self.event.ref not in lookup_refs(event):
            return "ref"
        if self.event.payload is not None and not self.event.payload.matches(event.payload):
            return "payload"
        if self.filter is not None and not self.filter.accepts(event):
            return "filter"
        return None


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
    #: The stored trigger kind (event, hook, finish, model, ...): which TriggerKind plans it.
    kind: str = "event"
    #: Empty means one input: ``event`` in the rule's own namespace.
    inputs: tuple[Input, ...] = field(default=(), compare=False)
    mode: Mode = "any"
    #: Kind-specific settings the planner reads (param mappings, reset, launch options).
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    filter: EventFilter | None = field(default=None, compare=False)
    #: The kind's own parsed spec (a Hook, a JoinSpec, an EntitySpec), read by its planner.
    spec: Any = field(default=None, compare=False)

    def all_inputs(self) -> tuple[Input, ...]:
        return self._inputs

    @cached_property
    def _inputs(self) -> tuple[Input, ...]:
        # Built once per rule (the matcher asks for every candidate of every event).
        return self.inputs or (Input(key=self.event.ref.partition(".")[2],
                                     namespace=self.namespace, event=self.event,
                                     filter=self.filter),)

    def index_keys(self) -> list[KindRefKey]:
        return [key for key, _ in self.index_entries()]

    def index_entries(self) -> list[tuple[KindRefKey, PayloadFilter | None]]:
        """Each key the rule is filed under, with the payload filter the index may file it
        by there: none when two inputs share the key (either may be the one that matches)."""
        entries = [((i.namespace, kind, i.event.ref), i.event.payload)
                   for i in self.all_inputs() for kind in i.event.kinds]
        keys = [k for k, _ in entries]
        return [(k, p if keys.count(k) == 1 else None)
                for n, (k, p) in enumerate(entries) if k not in keys[:n]]

    def input_for(self, event: Event) -> Input | None:
        """The input this event satisfies (filters applied), or None."""
        return next((i for i in self.all_inputs() if i.accepts(event)), None)

    @property
    def is_join(self) -> bool:
        return self.mode == "all" and len(self.all_inputs()) > 1


@dataclass(frozen=True)
class Match:
    """What the matcher found for one event: the rule and the input the event satisfied.
    Computed once; the planner, the join and the lineage read it, nobody re-derives it."""

    rule: Rule
    input: Input
    event: Event


@dataclass(frozen=True)
class Skip:
    """A rule whose check of an event failed or overran its budget: not fired for that
    event, and the reason is recorded; the other rules went on."""

    rule: Rule
    event: Event
    reason: str


def _checked(rule: Rule, event: Event, budget: RuleBudget | None,
             skipped: list[Skip]) -> Input | None:
    try:
        if budget is not None:
            budget.start()
        found = rule.input_for(event)
        if budget is not None:
            budget.stop()
            if budget.over():
                raise Overrun
        return found
    except Overrun:
        seconds = budget.seconds if budget is not None else 0
        skipped.append(Skip(rule, event, f"matching took longer than {seconds}s "
                                         "(TASKQ_RULE_CHECK_SECONDS); the trigger was "
                                         "skipped for this event"))
    except Exception as exc:  # a filter's bug must not stop every other rule
        if budget is not None:
            budget.stop()
        skipped.append(Skip(rule, event, f"matching failed ({type(exc).__name__}: {exc}); "
                                         "the trigger was skipped for this event"))
    return None


class RuleIndex:
    """Immutable after construction; the evaluator swaps in a new one when triggers change."""

    def __init__(self, rules: Iterable[Rule] = (), version: int | None = None) -> None:
        self._by_key: dict[KindRefKey, Buckets[Rule]] = defaultdict(Buckets)
        self._count = 0
        self.version = version
        for rule in rules:
            self._count += 1
            for key, pattern in rule.index_entries():
                self._by_key[key].add(rule, pattern)

    def __len__(self) -> int:
        return self._count

    def rules_for(self, event: Event) -> list[Rule]:
        """Just the rules :meth:`match` finds, for callers that need no input."""
        return [m.rule for m in self.match(event)]

    def match(self, event: Event, *, budget: RuleBudget | None = None,
              skipped: list[Skip] | None = None) -> list[Match]:
        """Rules that fire for ``event``, each once, in a stable order (by rule id).

        Family-wide refs (``models.*``) are one more key per event; their filters then
        decide, so the cost still follows the rules of that family, not all rules. Within
        a key, rules whose payload filter has an exact clause are found by the event's
        values (a dict lookup per value), so only candidates are checked.

        With ``skipped``, a rule whose check raises, or overruns ``budget``, is left out
        and reported there, and the others are checked; without it, errors propagate."""
        found: dict[int, Match] = {}
        seen: set[int] = set()
        for key in lookup_keys(event.namespace, event.kind, event.ref, event.payload.get("job")):
            bucket = self._by_key.get(key)
            if bucket is None:
                continue
            for rule in bucket.candidates(event.payload):
                if rule.id in seen:
                    continue
                seen.add(rule.id)
                if skipped is None:
                    matched = rule.input_for(event)
                else:
                    matched = _checked(rule, event, budget, skipped)
                if matched is not None:
                    found[rule.id] = Match(rule, matched, event)
        return [found[k] for k in sorted(found)]

    def may_match(self, keys: Iterable[KindRefKey]) -> bool:
        """Whether any rule is indexed under one of ``keys`` (:func:`lookup_keys`): False
        means :meth:`match` finds nothing, so the event need not be decoded."""
        return any(key in self._by_key for key in keys)
