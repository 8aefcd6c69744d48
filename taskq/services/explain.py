"""`taskq triggers explain` and `taskq triggers test`: the facts read, then the pure
decision (:mod:`taskq.core.explaining`) for each event. Reads only; nothing is written,
published or bumped, so explaining or testing a trigger never changes what it does."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskq.core.decision_facts import ArmFact, FiringFact, Recorded
from taskq.core.events import Event
from taskq.core.explaining import Decision, decide
from taskq.core.matching import Rule
from taskq.core.planning import dedup_key
from taskq.core.revisions import Revision, in_force
from taskq.core.stored import JobTemplate, StoredTrigger
from taskq.core.times import aware, utcnow
from taskq.core.triggers.base import KindRegistry
from taskq.core.watched import change_key
from taskq.errors import NotFound, ValidationError
from taskq.ports import Context
from taskq.services.event_log import paused_gc
from taskq.services.firing import facts_for

#: Events read and judged together: one read of their facts, and a bounded page in memory.
PAGE = 10_000


@dataclass(frozen=True)
class Explained:
    #: Oldest first.
    decisions: list[Decision]
    #: Where the next older page starts (pass it as ``before``); None when none is left.
    next: int | None


def explain(rt: Context, kinds: KindRegistry, name: str, namespace: str, *,
            event_id: str | None = None, since: datetime | None = None,
            limit: int = 100, before: int | None = None) -> Explained:
    """Each stored event of the namespaces the trigger listens to (one by id, or those
    since ``since``, the newest ``limit`` before the cursor ``before``), judged by the
    revision in force at its time; read and judged :data:`PAGE` events at a time."""
    revisions = history(rt, name, namespace)
    built = {rev.id: _build(kinds, rev) for rev in revisions if rev.exists}
    namespaces = sorted({namespace} | {i.namespace for rule, _ in built.values() if rule
                                       for i in rule.all_inputs()})
    templates: dict[tuple[str, str], JobTemplate | None] = {}
    modes = {kinds.for_rule(rule).firing_mode(rule) for rule, _ in built.values() if rule}
    pages: list[list[Decision]] = []
    left, cursor = limit, before
    with paused_gc():
        while left > 0:
            size = min(left, PAGE)
            stored = rt.store.stored_events(namespaces=namespaces, since=since,
                                            event_id=event_id, limit=size, before_id=cursor)
            if event_id is not None and not stored:
                raise NotFound(f"no stored event {event_id!r} in namespace(s) "
                               f"{', '.join(namespaces)}")
            recorded = _records(rt, {r.trigger_id for r in revisions},
                                [e for _, e, _ in stored], modes)
            pages.append([_judge(rt, kinds, revisions, built, templates, recorded, event,
                                 evaluated) for _, event, evaluated in stored])
            left -= len(stored)
            cursor = stored[0][0] if len(stored) == size and event_id is None else None
            if cursor is None:
                break
    return Explained([d for page in reversed(pages) for d in page], cursor)


def _judge(rt: Context, kinds: KindRegistry, revisions: list[Revision],
           built: dict[int, tuple[Rule | None, str | None]],
           templates: dict[tuple[str, str], JobTemplate | None], recorded: Recorded,
           event: Event, evaluated: bool) -> Decision:
    rev = in_force(revisions, event.timestamp)
    rule, error = built.get(rev.id, (None, None)) if rev else (None, None)
    return decide(event, revision=rev, rule=rule, kind=kinds.get(rule.kind) if rule else None,
                  recorded=recorded, template=_template(rt, rule, templates),
                  facts=lambda m: facts_for(rt, kinds.for_rule(m.rule), m),
                  evaluated=evaluated, build_error=error)


def dry_run(rt: Context, kinds: KindRegistry, name: str, namespace: str, event: Event, *,
            draft: StoredTrigger | None = None) -> Decision:
    """The current revision (or ``draft``) against ``event``; nothing is written. A firing
    already recorded for the event is named in the reason: a real evaluation of it would
    fire nothing again."""
    current = rt.store.get_trigger(name, namespace)
    row = draft or current
    if row is None:
        raise NotFound(f"no trigger named {name!r} in namespace {namespace!r}")
    revision = Revision(id=0, trigger_id=row.id, name=row.name, namespace=row.namespace,
                        version=row.version, action="draft" if draft else "current",
                        kind=row.kind, spec=row.spec, job=row.job, params=row.params,
                        queue=row.queue, enabled=True, quarantined=None,
                        source="draft" if draft else "current", at=utcnow())
    rule, error = _build(kinds, revision)
    known = _records(rt, {current.id} if current else set(), [event])
    decision = decide(event, revision=revision, rule=rule,
                      kind=kinds.get(rule.kind) if rule else None,
                      recorded=Recorded(arms=[a for a in known.arms if a.state == "armed"]),
                      template=_template(rt, rule, {}),
                      facts=lambda m: facts_for(rt, kinds.for_rule(m.rule), m),
                      dry_run=True, build_error=error)
    notes = []
    if current is not None and not current.enabled:
        notes.append("the stored trigger is disabled")
    if current is not None and current.quarantined:
        notes.append(f"the stored trigger is quarantined: {current.quarantined}")
    done = next((f for f in known.firings if f.event_id == event.id), None)
    if done is not None:
        notes.append(f"firing {done.id} already decided this event ({done.outcome}); "
                     "evaluating it again fires nothing")
    if notes:
        decision = dataclasses.replace(decision,
                                       reason=f"{decision.reason}; {'; '.join(notes)}")
    return decision


def explain_run(rt: Context, kinds: KindRegistry, name: str, namespace: str,
                run_uuid: str) -> list[Decision]:
    """Each stored status event of one run (queued, running, succeeded...), oldest first,
    judged as :func:`explain` judges one event: "why did this run's finish not start the
    next job" is a question about a run, not a time window."""
    try:
        run_uuid = str(uuid.UUID(run_uuid))
    except ValueError:
        raise ValidationError(f"run: {run_uuid!r} is not a run uuid") from None
    history(rt, name, namespace)  # no such trigger: said as such, not as "no events"
    events = rt.store.run_events(run_uuid) if rt.store.get_run(run_uuid) else []
    out: list[Decision] = []
    try:
        for e in events:
            out.extend(explain(rt, kinds, name, namespace, event_id=e["event_id"],
                               limit=1).decisions)
    except NotFound:  # the run's events are in a namespace the trigger does not read
        out = []
    if not out:
        raise NotFound(f"run: no stored events of run {run_uuid} in the namespace(s) "
                       f"{name} listens to")
    return out


def history(rt: Context, name: str, namespace: str) -> list[Revision]:
    """The trigger's revisions; one stored before revisions were kept gets one, made when
    it was created, from its row as it is now."""
    revisions = rt.store.trigger_revisions(name, namespace)
    current = rt.store.get_trigger(name, namespace)
    if current is not None and not any(r.trigger_id == current.id for r in revisions):
        created = datetime.fromisoformat(current.created_at) if current.created_at else None
        revisions.append(Revision(
            id=0, trigger_id=current.id, name=name, namespace=namespace,
            version=current.version, action="created", kind=current.kind,
            spec=current.spec, job=current.job, params=current.params, queue=current.queue,
            enabled=current.enabled, quarantined=current.quarantined, source="unknown",
            at=aware(created) or utcnow()))
    if not revisions:
        raise NotFound(f"no trigger named {name!r} in namespace {namespace!r}, now or before")
    return sorted(revisions, key=lambda r: (r.at, r.id))


def _build(kinds: KindRegistry, rev: Revision) -> tuple[Rule | None, str | None]:
    try:
        return kinds.build_rule(rev.trigger()), None
    except Exception as exc:  # a malformed stored revision: the evaluator skips it too
        return None, f"{type(exc).__name__}: {exc}"


def _template(rt: Context, rule: Rule | None,
              cache: dict[tuple[str, str], JobTemplate | None]) -> JobTemplate | None:
    if rule is None:
        return None
    key = (rule.namespace, rule.job)
    if key not in cache:
        cache[key] = rt.store.find_job_template(rule.job, rule.namespace)
    return cache[key]


def _records(rt: Context, trigger_ids: set[int], events: list[Event],
             modes: Set[str] | None = None) -> Recorded:
    """The records of ``events``, under the dedup keys of the firing ``modes`` the
    triggers' revisions use (all when not given): an entity trigger keys its firings by
    change, the others by event."""
    if not trigger_ids or not events:
        return Recorded()
    keys = {k for e in events for k in _keys(e, modes)}
    raw = rt.store.decision_records(sorted(trigger_ids), sorted(keys), [e.id for e in events])
    runs = {r["uuid"]: r for r in raw["runs"]}
    firings = [FiringFact(id=f["id"], trigger_id=f["trigger_id"], dedup_key=f["dedup_key"],
                          event_id=f["event_id"], outcome=f["outcome"], reason=f["reason"],
                          run_uuid=f["run_uuid"], version=f["trigger_version"],
                          run_status=runs.get(f["run_uuid"], {}).get("status"),
                          run_queue=runs.get(f["run_uuid"], {}).get("queue"))
               for f in raw["firings"]]
    arms = [ArmFact(trigger_id=a["trigger_id"], input_key=a["input_key"],
                    dedup_key=a["dedup_key"], event_id=a["event_id"], state=a["state"],
                    firing_id=a["firing_id"], at=aware(a["event_at"]), event=_event(a))
            for a in raw["arms"]]
    return Recorded(firings=firings, arms=arms)


def _keys(event: Event, modes: Set[str] | None) -> list[str]:
    keys = [] if modes is not None and modes <= {"entity"} else [dedup_key(event)]
    return [*keys, change_key(event)] if modes is None or "entity" in modes else keys


def _event(arm: dict[str, Any]) -> Event | None:
    body = arm.get("event")
    return Event.model_validate(body) if body else None
