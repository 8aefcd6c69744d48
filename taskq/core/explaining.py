"""Why a trigger fired for an event, or why not: one typed :class:`Decision` per event.

Pure. The service reads the facts first (the revision in force at the event's time, the
firings, join arms and runs recorded for it) and this module decides with the evaluator's
own code: :class:`~taskq.core.matching.RuleIndex` for the match, the kind's firing mode and
dedup key, its planner for what a firing would create. What the evaluator recorded wins over
what the revision says, because the firing names the revision that made it; an event with
no record is judged by the revision in force when it happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from taskq.core.cron import drops_at, next_tick, parse_cron, reset_boundary
from taskq.core.decision_facts import ArmFact, FiringFact, Recorded
from taskq.core.events import Event, is_local
from taskq.core.matching import Match, MatchPart, Rule, RuleIndex, Skip, lookup_refs
from taskq.core.planning import Facts, Plan, dedup_key, join_key
from taskq.core.revisions import Revision
from taskq.core.stored import JobTemplate
from taskq.core.triggers.base import TriggerKind
from taskq.core.watched import change_key

Outcome = Literal["fired", "duplicate", "error", "skipped", "waiting", "expired",
                  "not_matched", "disabled", "quarantined", "deleted", "not_yet", "pending",
                  "would_fire"]
_PARTS: tuple[MatchPart, ...] = ("namespace", "kind", "ref", "payload", "filter")


@dataclass(frozen=True)
class Decision:
    event: Event
    outcome: Outcome
    reason: str
    #: The trigger version judged by (or, for a recorded firing, the one that decided).
    version: int | None = None
    #: For not_matched: which part failed (namespace, kind, ref, payload, filter, local).
    part: str | None = None
    firing_id: int | None = None
    dedup_key: str | None = None
    run: dict[str, Any] | None = None
    armed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    #: A join's armed inputs: input, event_id, at, drops_at (when the reset window drops it).
    arms: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    #: A cron reset window's next reset after the event.
    next_reset: str | None = None
    #: What a clone would get (a dry run, or a match the evaluator recorded nothing for).
    params: dict[str, Any] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        e = self.event
        return {"event": {"id": e.id, "kind": e.kind, "ref": e.ref, "namespace": e.namespace,
                          "at": e.timestamp.isoformat()},
                "outcome": self.outcome, "reason": self.reason, "version": self.version,
                "part": self.part, "firing_id": self.firing_id, "dedup_key": self.dedup_key,
                "run": self.run, "armed": list(self.armed), "missing": list(self.missing),
                "arms": list(self.arms), "next_reset": self.next_reset, "params": self.params}


#: The kind's planning inputs for a match (its template and the facts it wants read).
FactsFor = Callable[[Match], Facts]


def decide(event: Event, *, revision: Revision | None, rule: Rule | None,
           kind: TriggerKind | None, recorded: Recorded, template: JobTemplate | None,
           facts: FactsFor, evaluated: bool = True, dry_run: bool = False,
           build_error: str | None = None) -> Decision:
    """The decision for ``event`` under ``revision`` (built into ``rule`` by ``kind``).

    ``dry_run`` (``taskq triggers test``) ignores whether the event was evaluated and plans
    the firing; a firing already recorded for the event is still reported (a real
    evaluation would fire nothing)."""
    if revision is None:
        return Decision(event, "not_yet", "the trigger did not exist yet")
    version = revision.version
    if not revision.exists:
        return Decision(event, "deleted", f"the trigger had been deleted (at "
                        f"{revision.at.isoformat()}, by {revision.source})", version)
    if rule is None or kind is None:
        return Decision(event, "error", f"the stored spec is invalid: {build_error}", version)
    mode = kind.firing_mode(rule)
    key = change_key(event) if mode == "entity" else dedup_key(event)
    found = _recorded(event, rule, key, mode, recorded)
    if found is not None:
        return found
    if not revision.enabled:
        return Decision(event, "disabled", f"the trigger was disabled (version {version}, "
                                           f"by {revision.source})", version)
    if revision.quarantined:
        return Decision(event, "quarantined", f"the trigger was quarantined: "
                                              f"{revision.quarantined}", version)
    if is_local(event):
        return Decision(event, "not_matched", "an event of a `taskq run` run fires nothing",
                        version, part="local")
    skipped: list[Skip] = []
    matches = RuleIndex([rule]).match(event, skipped=skipped)
    if skipped:
        return Decision(event, "error", skipped[0].reason, version, dedup_key=key)
    if not matches:
        part, why = mismatch(rule, event)
        return Decision(event, "not_matched", why, version, part=part)
    if not evaluated and not dry_run:
        return Decision(event, "pending", "matched; no evaluator has finished with the event "
                                          "yet", version, dedup_key=key)
    return _planned(matches[0], kind, mode, key, recorded, template, facts, version, dry_run)


def mismatch(rule: Rule, event: Event) -> tuple[MatchPart, str]:
    """The input that came closest (its failing part tested last) and why it failed."""
    tried = [(i, part) for i in rule.all_inputs() if (part := i.mismatch(event))]
    best, part = max(tried, key=lambda t: _PARTS.index(t[1]))
    if part == "namespace":
        why = (f"namespace: the event is in {event.namespace!r}, the trigger listens to "
               f"{best.namespace!r}")
    elif part == "kind":
        why = (f"kind: {event.kind!r} is not one the trigger listens to "
               f"({', '.join(best.event.kinds)})")
    elif part == "ref":
        why = (f"ref: the event is addressed as {', '.join(lookup_refs(event))}; the trigger "
               f"listens to {best.event.ref}")
    elif part == "payload" and best.event.payload is not None:
        why = best.event.payload.miss(event.payload) or "payload filter refused the event"
    else:
        why = "filter: the trigger's filter (tags, names, project, metric) refused the event"
    return part, why


def _run(f: FiringFact) -> dict[str, Any] | None:
    return ({"uuid": f.run_uuid, "status": f.run_status, "queue": f.run_queue}
            if f.run_uuid else None)


def _from_firing(event: Event, f: FiringFact, version: int | None, via: str = ""
                 ) -> Decision:
    outcome: Outcome = ("duplicate" if f.event_id != event.id and not via else "fired"
                        if f.outcome == "fired" else "error" if f.outcome == "error"
                        else "skipped")
    reason = {"duplicate": f"duplicate of firing {f.id} (dedup key {f.dedup_key}): event "
                           f"{f.event_id} already decided it",
              "fired": f"fired{via}: run {f.run_uuid}"}.get(outcome,
                                                            f"{f.reason or f.outcome}{via}")
    return Decision(event, outcome, reason, f.version or version, firing_id=f.id,
                    dedup_key=f.dedup_key, run=_run(f))


def _recorded(event: Event, rule: Rule, key: str, mode: str, recorded: Recorded
              ) -> Decision | None:
    firing = recorded.firing(rule.id, key)
    if firing is not None:
        return _from_firing(event, firing, rule.version)
    arm = recorded.arm(rule.id, event.id) if mode == "join" else None
    if arm is None:
        return None
    if arm.state == "consumed" and arm.firing_id is not None:
        done = recorded.firing_by_id(arm.firing_id)
        if done is not None:
            return _from_firing(event, done, rule.version,
                                via=f" (the join of input {arm.input_key!r} completed)")
    reset = rule.options.get("reset")
    if arm.state == "expired":
        end = drops_at(reset, arm.at) if arm.at else None
        return Decision(event, "expired", f"armed input {arm.input_key!r}; the reset window "
                        f"({_window(reset)}) dropped it"
                        f"{f' at {end.isoformat()}' if end else ''} before the join completed",
                        rule.version, dedup_key=arm.dedup_key)
    return _waiting(event, rule, _latest(recorded.armed(rule.id), None),
                    f"armed input {arm.input_key!r}", arm.dedup_key)


def _window(reset: Any) -> str:
    return f"cron {reset!r}" if isinstance(reset, str) else f"{reset:g}s"


def _latest(arms: Sequence[ArmFact], boundary: datetime | None) -> dict[str, ArmFact]:
    """Each input's newest armed event still inside the window (from ``boundary`` on)."""
    latest: dict[str, ArmFact] = {}
    for a in sorted(arms, key=lambda a: (a.at is None, a.at)):
        if boundary is None or a.at is None or a.at >= boundary:
            latest[a.input_key] = a
    return latest


def _waiting(event: Event, rule: Rule, armed: Mapping[str, ArmFact], lead: str,
             key: str) -> Decision:
    """An AND join short of inputs: which are armed (by which events, dropped when by the
    reset window), which are missing and, for a cron window, its next reset."""
    reset = rule.options.get("reset")
    missing = tuple(i.key for i in rule.all_inputs() if i.key not in armed)
    arms = tuple({"input": k, "event_id": a.event_id,
                  "at": a.at.isoformat() if a.at else None,
                  "drops_at": end.isoformat() if a.at and (end := drops_at(reset, a.at))
                  else None} for k, a in sorted(armed.items()))
    tick = next_tick(parse_cron(reset), event.timestamp) if isinstance(reset, str) else None
    reason = (f"{lead}; waiting for {', '.join(missing) or 'nothing'}; armed: "
              + ", ".join(f"{a['input']} by event {a['event_id']}" for a in arms))
    if reset is not None and not isinstance(reset, str):
        reason += f"; the reset window ({_window(reset)}) drops " + ", ".join(
            f"{a['input']} at {a['drops_at']}" for a in arms if a["drops_at"])
    if tick is not None:
        reason += f"; the window ({_window(reset)}) resets next at {tick.isoformat()}"
    return Decision(event, "waiting", reason, rule.version, dedup_key=key,
                    armed=tuple(sorted(armed)), missing=missing, arms=arms,
                    next_reset=tick.isoformat() if tick else None)


def _planned(match: Match, kind: TriggerKind, mode: str, key: str, recorded: Recorded,
             template: JobTemplate | None, facts: FactsFor, version: int, dry_run: bool
             ) -> Decision:
    """What the kind's planner says the firing creates (the evaluator's own call)."""
    rule, event = match.rule, match.event
    events: dict[str, Event] | None = None
    if mode == "join":
        boundary = reset_boundary(rule.options.get("reset"), event.timestamp)
        latest = _latest([a for a in recorded.armed(rule.id) if a.event is not None], boundary)
        latest[match.input.key] = ArmFact(rule.id, match.input.key, key, event.id, "armed",
                                          at=event.timestamp, event=event)
        events = {k: a.event for k, a in latest.items() if a.event is not None}
        if any(i.key not in events for i in rule.all_inputs()):
            return _waiting(event, rule, latest, f"would arm input {match.input.key!r}", key)
        key = join_key([dedup_key(e) for e in events.values()])
    try:
        plan = kind.plan(match, template, key, facts(match), events)
    except Exception as exc:  # as services/firing.plan_quietly records it
        plan = Plan(None, None, f"planning failed: {type(exc).__name__}: {exc}")
    note = "" if dry_run else " (matched, but the evaluator recorded no firing)"
    if plan.error:
        return Decision(event, "error", plan.error + note, version, dedup_key=key)
    if plan.skipped:
        return Decision(event, "skipped", plan.skipped + note, version, dedup_key=key)
    run = plan.run
    assert run is not None
    return Decision(event, "would_fire", f"would fire {rule.job} on queue {run.queue}{note}",
                    version, dedup_key=key, params=dict(run.params),
                    run={"uuid": run.uuid, "status": None, "queue": run.queue})


def summary(decisions: Sequence[Decision]) -> Mapping[str, int]:
    """Outcome -> how many events had it, in the order outcomes first appear."""
    out: dict[str, int] = {}
    for d in decisions:
        out[d.outcome] = out.get(d.outcome, 0) + 1
    return out
