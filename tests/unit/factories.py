"""Small builders shared by the unit tests: events and rules with sensible defaults."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from taskq.core import planning
from taskq.core.events import Event
from taskq.core.lineage import lineage
from taskq.core.matching import EventTrigger, Match, Rule
from taskq.core.planning import events_of
from taskq.core.stored import JobTemplate, StoredRun, StoredTrigger
from taskq.core.triggers import default_kinds

FIXED_TS = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def run_uuid(n: int = 0) -> str:
    """A stable, valid run uuid for index ``n`` (so tests can name "run 1" and "run 2")."""
    return str(uuid.UUID(int=0x1234_5678_0000_4000_8000_0000_0000_0000 + n))


def make_event(
    *,
    kind: str = "run_status_running",
    ref: str | None = None,
    namespace: str = "default",
    job: str | None = "train",
    event_id: str = "ev-1",
    payload: dict[str, Any] | None = None,
    project: str | None = None,
) -> Event:
    """A run-status style event; ``job`` goes into the payload as the run summary does."""
    ref = ref if ref is not None else f"runs.{run_uuid()}"
    body: dict[str, Any] = dict(payload or {})
    if job is not None and "job" not in body:
        body["job"] = job
    if ref.startswith("runs.") and "uuid" not in body:
        body["uuid"] = ref.removeprefix("runs.")
    return Event(id=event_id, kind=kind, ref=ref, namespace=namespace, project=project,
                 timestamp=FIXED_TS, payload=body)


def make_rule(
    rule_id: int = 1,
    *,
    ref: str = "jobs.train",
    kinds: tuple[str, ...] | str = ("run_status_succeeded",),
    namespace: str = "default",
    job: str = "viz",
    name: str | None = None,
    params: dict[str, Any] | None = None,
    queue: str | None = None,
) -> Rule:
    return Rule(id=rule_id, name=name or f"rule-{rule_id}", namespace=namespace,
                event=EventTrigger(ref=ref, kinds=kinds), job=job, params=params or {},
                queue=queue)


# -- planning as the evaluator does it (the same kinds, the same pure code) ---------------


def match_of(rule: Rule, event: Event) -> Match:
    matched = rule.input_for(event)
    assert matched is not None, "the event does not satisfy the rule"
    return Match(rule, matched, event)


def lineage_of(rule: Rule, event: Event, events: dict[str, Event] | None = None
               ) -> dict[str, Any]:
    return lineage(rule, events_of(match_of(rule, event), events))


def template_context(rule: Rule, event: Event) -> dict[str, Any]:
    return planning.template_context(rule, lineage_of(rule, event))


def job_template(fields: dict[str, Any] | None = None, **more: Any) -> JobTemplate:
    """A stored job template from the columns a test cares about."""
    given = {**(fields or {}), **more}
    return JobTemplate(**{"name": "job", "namespace": "default", "queue": "default",
                          "task_name": "taskq.job.job", **given})


def stored_trigger(row: dict[str, Any]) -> StoredTrigger:
    return StoredTrigger(**{"params": {}, "queue": None, **row})


def stored_run(fields: dict[str, Any]) -> StoredRun:
    return StoredRun(**{"uuid": run_uuid(1), "job": "train", "project": None,
                        "namespace": "default", "status": "running", "reason": None,
                        "queue": "default", **fields})


def plan_firing(rule: Rule, event: Event, template: dict[str, Any] | None, default_queue: str,
                key: str, events: dict[str, Event] | None = None,
                event_run: dict[str, Any] | None = None) -> planning.Plan:
    kind = default_kinds().for_rule(rule)
    return kind.plan(match_of(rule, event), None if template is None else job_template(template),
                     key, planning.Facts(default_queue=default_queue,
                                         event_run=None if event_run is None
                                         else stored_run(event_run)), events)
