"""`taskq events replay`: stored events evaluated again through the triggers as they are now.

For a trigger added after its events happened, or events that predate a fix. Each event
goes through the evaluator's own matching and firing (:class:`Firings`, a batch per page),
in the order of record, so per ref the order is the original one. What fired already
fires nothing again (the firing's unique key) and what newly matches fires once, so a
second replay of the same range fires nothing. The range is the log as it was when the
replay began: the run events its own firings add are the live evaluator's to judge.
Observers are not called: pipelines advanced when their events happened. A dry run matches
and looks the keys up, writing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from taskq.core.events import Event
from taskq.core.matching import Match, Rule, RuleIndex
from taskq.core.planning import dedup_key
from taskq.core.triggers.base import KindRegistry
from taskq.core.watched import change_key
from taskq.errors import ValidationError
from taskq.ports import Context
from taskq.services import event_log
from taskq.services.firings import Firings
from taskq.services.marks import Marks
from taskq.services.quarantine import Quarantine
from taskq.services.rules import Stats

#: A page is one batch of firings (one transaction).
PAGE = 500


@dataclass
class Replayed:
    events: int = 0
    matched: int = 0
    fired: int = 0
    #: Matches whose firing was recorded already (before this replay, or by a first one).
    already: int = 0
    errors: int = 0
    #: What fires or would fire: (event id, event kind, trigger name), oldest first.
    new: list[tuple[str, str, str]] = field(default_factory=list)


def replay(rt: Context, kinds: KindRegistry, *, namespace: str, since: datetime,
           until: datetime | None = None, trigger: str | None = None,
           dry_run: bool = False, progress: Callable[[int], None] | None = None
           ) -> Replayed:
    rules = _rules(rt, kinds, namespace, trigger)
    index = RuleIndex(rules)
    spaces = sorted({namespace} | {i.namespace for r in rules for i in r.all_inputs()})
    out, stats, marks = Replayed(), Stats(), Marks()
    firings = Firings(rt, kinds, stats=stats, marks=marks, quarantine=Quarantine())
    for page in event_log.pages(rt, namespaces=spaces, since=since, until=until, page=PAGE):
        matches = [m for row in page if not row.local and index.may_match(row.index_keys())
                   for m in index.match(row.event())]
        out.events += len(page)
        out.matched += len(matches)
        taken = {id(m) for m in _recorded(rt, kinds, matches)}
        fresh = [m for m in matches if id(m) not in taken]
        out.already += len(matches) - len(fresh)
        out.new += [(m.event.id, m.event.kind, m.rule.name) for m in fresh]
        if not dry_run:
            for m in fresh:
                firings.fire(m)
            firings.flush()
            marks.flush(rt)
        if progress:
            progress(len(page))
    out.fired, out.errors = stats.fired, stats.errors
    return out


def _rules(rt: Context, kinds: KindRegistry, namespace: str, trigger: str | None
           ) -> list[Rule]:
    stored = [t for t in rt.store.list_triggers(namespace, enabled_only=True)
              if trigger is None or t.name == trigger]
    if trigger is not None and not stored:
        raise ValidationError(f"trigger: no enabled trigger named {trigger!r} in namespace "
                              f"{namespace!r}")
    return [kinds.build_rule(t) for t in stored]


def _recorded(rt: Context, kinds: KindRegistry, matches: list[Match]) -> list[Match]:
    """The matches whose firing exists already (their unique key is taken)."""
    if not matches:
        return []
    keys = {id(m): _key(kinds, m, m.event) for m in matches}
    found = rt.store.decision_records([m.rule.id for m in matches], list(keys.values()),
                                      [m.event.id for m in matches])["firings"]
    taken = {(f["trigger_id"], f["dedup_key"]) for f in found}
    return [m for m in matches if (m.rule.id, keys[id(m)]) in taken]


def _key(kinds: KindRegistry, match: Match, event: Event) -> str:
    mode = kinds.for_rule(match.rule).firing_mode(match.rule)
    return change_key(event) if mode == "entity" else dedup_key(event)
