"""Lineage: what started a cloned run, recorded with it and read by ``current.trigger``.

Built once per firing from the match (the rule and the events that satisfied it), so the
run's stored context, the template context and the trigger's type never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from taskq.core.events import Event
from taskq.core.matching import Rule
from taskq.core.statuses import RUN_STATUS_PREFIX


def event_type(event: Event) -> str:
    return "run" if event.kind.startswith(RUN_STATUS_PREFIX) else "event"


def trigger_type(rule: Rule, events: list[Event]) -> str:
    """Metaflow's names: RUN, MANY-RUNS (AND), ONE-OF-RUNS (OR), EVENT, MANY-EVENTS,
    ONE-OF-EVENTS; MIXED for an AND of runs and events (Metaflow cannot express one)."""
    kinds = {event_type(e) for e in events}
    if len(kinds) > 1:
        return "MIXED"
    base = "RUN" if kinds == {"run"} else "EVENT"
    if len(rule.all_inputs()) == 1:
        return base
    return f"MANY-{base}S" if rule.mode == "all" else f"ONE-OF-{base}S"


def finished_at(event: Event) -> datetime:
    """When the upstream finished, for a run's event (its run's ``finished_at``); when it
    happened, for any other. Metaflow orders ``current.trigger`` newest first by this:
    ``.run`` is the upstream that finished last, whatever order the events were seen or
    ``--trigger`` given in."""
    return when(event_type(event), event.payload, event.timestamp)


def when(kind: str, payload: Mapping[str, Any], timestamp: datetime | str | None
         ) -> datetime:
    """:func:`finished_at` of a stored event (``kind`` "run" or "event")."""
    done = payload.get("finished_at") if kind == "run" else None
    at = timestamp if isinstance(timestamp, datetime) else _parse(timestamp)
    if isinstance(done, str):
        try:
            at = datetime.fromisoformat(done)
        except ValueError:
            pass
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _parse(value: str | None) -> datetime:
    try:
        return datetime.fromisoformat(value) if value else datetime.min
    except ValueError:
        return datetime.min


def lineage(rule: Rule, events: Mapping[str, Event]) -> dict[str, Any]:
    """``type``, the latest ``event`` and ``run``, and every ``events`` item (key, type,
    event), newest first (by :func:`finished_at`). ``events`` are the satisfying events by
    input key."""
    items = sorted(events.items(), key=lambda kv: finished_at(kv[1]), reverse=True)
    dumped: list[dict[str, Any]] = [
        {"key": k, "type": event_type(e), "event": e.model_dump(mode="json")}
        for k, e in items]
    latest_run = next((d["event"]["payload"] for d in dumped if d["type"] == "run"), None)
    return {"type": trigger_type(rule, [e for _, e in items]), "event": dumped[0]["event"],
            "run": latest_run, "events": dumped}


def has_lineage(trigger_context: Mapping[str, Any] | None) -> bool:
    """A run's stored context says what started it only if it holds an event: a pipeline
    operation's holds just its ``contextOnly`` params (``{"context": ...}``)."""
    if not trigger_context:
        return False
    return bool(trigger_context.get("event") or trigger_context.get("events"))


def default_context(run: Mapping[str, Any]) -> dict[str, Any]:
    """What Polyaxon gives a hook about the main run (plus ``kind``: always ``job`` here)."""
    def ts(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    created, started, finished = (ts(run.get("created_at")), ts(run.get("started_at")),
                                  ts(run.get("finished_at")))
    return {
        "uuid": run.get("uuid"), "name": run.get("job"), "kind": "job",
        "status": run.get("status"),
        "inputs": run.get("params") or {}, "outputs": run.get("outputs") or {},
        "condition": run.get("reason"), "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "duration": (finished - started).total_seconds() if started and finished else None,
        "wait_time": (started - created).total_seconds() if started and created else None,
    }
