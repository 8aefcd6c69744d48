"""Frozen views the API returns, so callers get attributes and types instead of raw rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from taskq.core.lineage import has_lineage, when
from taskq.core.planning import fields_of
from taskq.core.statuses import FINAL, Status
from taskq.core.stored import StoredRun
from taskq.runtime import get_runtime


class RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    uuid: str
    job: str
    project: str | None
    namespace: str
    status: Status
    reason: str | None
    queue: str
    params: dict[str, Any]
    outputs: dict[str, Any]
    metrics: list[dict[str, Any]]
    tags: list[str]
    celery_task_id: str | None
    #: The trigger or hook that created this run (None for a run started by hand).
    trigger_name: str | None
    trigger_id: int | None
    firing_id: int | None
    event_ids: list[str]
    trigger_context: dict[str, Any] | None
    attempts: int
    #: Times a reuse_task trigger re-enqueued this run (0: never).
    incarnation: int = 0
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    #: "job", or "pipeline" for a DAG run; an operation of one names it and its op.
    kind: str = "job"
    pipeline_uuid: str | None = None
    op_name: str | None = None
    #: None, or waiting / approved / invalidated (``approval=True`` on its job or trigger).
    approval: str | None = None

    _load_run: Callable[[str], RunRecord | None] | None = PrivateAttr(default=None)

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def name(self) -> str:
        return self.job

    @property
    def trigger(self) -> Trigger | None:
        """What started this run, like ``taskq.current.trigger`` inside it; chains walk:
        ``run.trigger.run.trigger.run``."""
        if not self.trigger_context or not has_lineage(self.trigger_context):
            return None
        return Trigger(self.trigger_context, self._loader())

    @property
    def data(self) -> Data:
        """This run's outputs as attributes (``run.data.model``)."""
        outputs = self.outputs
        return Data(self.uuid, lambda: outputs)

    def _loader(self) -> Callable[[str], RunRecord | None]:
        if self._load_run is not None:
            return self._load_run

        store = get_runtime().store
        return loader(store.get_run)


def loader(get_row: Callable[[str], StoredRun | None]
           ) -> Callable[[str], RunRecord | None]:
    """Loads runs through ``get_row`` and hands the same loader to each, so a chain of
    triggers is walked with the store (and settings) it started from."""

    def load(uuid: str) -> RunRecord | None:
        return run_record(get_row(uuid), load)

    return load


def run_record(row: StoredRun | None,
               load: Callable[[str], RunRecord | None] | None = None) -> RunRecord | None:
    if row is None:
        return None
    record = RunRecord.model_validate(row, from_attributes=True)
    record._load_run = load
    return record


# -- lineage: what started a run (``current.trigger``, ``RunRecord.trigger``) ---------

RunLoader = Callable[[str], RunRecord | None]


@dataclass(frozen=True)
class TriggerEvent:
    """One triggering event: ``name`` is the upstream job (``type`` "run") or the published
    event's name (``type`` "event")."""

    name: str
    timestamp: datetime
    type: str
    id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def fields(self) -> dict[str, Any]:
        """A published event's payload fields, a connection event's payload (repo, branch,
        commit, ...); empty for a run."""
        return fields_of(self.kind, self.payload) if self.type == "event" else {}

    @property
    def run_uuid(self) -> str | None:
        return self.payload.get("uuid") if self.type == "run" else None


class Data:
    """A run's outputs as attributes (``trigger.data.model``), read on first access."""

    def __init__(self, uuid: str, load: Callable[[], dict[str, Any]]) -> None:
        self._uuid = uuid
        self._load = load
        self._outputs: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._outputs is None:
            self._outputs = dict(self._load())
        return self._outputs

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        outputs = self._all()
        if name not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            raise AttributeError(f"run {self._uuid} has no output {name!r} (outputs: {known})")
        return outputs[name]

    def __getitem__(self, name: str) -> Any:
        return self._all()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def keys(self) -> list[str]:
        return list(self._all())

    def __repr__(self) -> str:
        return f"Data(run={self._uuid})"


class Trigger:
    """Metaflow's ``current.trigger``: ``event``/``events``, ``run``/``runs``, ``data``,
    ``type``, and ``trigger[key]`` by upstream job name or event name."""

    def __init__(self, context: dict[str, Any], load_run: RunLoader) -> None:
        self._context = context
        self._load_run = load_run
        self._runs: dict[str, RunRecord | None] = {}
        items = context.get("events") or [
            {"key": _key_of(context.get("event") or {}), "type": _type_of(context),
             "event": context.get("event") or {}}]
        # Newest first by when each upstream finished (Metaflow's order), also for runs
        # whose lineage was recorded in another order.
        items = sorted(items, reverse=True, key=lambda i: when(
            i.get("type") or "", (i.get("event") or {}).get("payload") or {},
            (i.get("event") or {}).get("timestamp")))
        self._events = [_event(item) for item in items]

    # -- what started it -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The trigger's (or hook's) name; ``local`` for ``taskq run --trigger``."""
        return str(self._context.get("trigger") or "")

    @property
    def type(self) -> str:
        return str(self._context.get("type") or ("RUN" if self.run_events else "EVENT"))

    @property
    def events(self) -> list[TriggerEvent]:
        """Every triggering event, newest first."""
        return list(self._events)

    @property
    def event(self) -> TriggerEvent | None:
        """The newest triggering event (the only one, unless a join fired)."""
        return self._events[0] if self._events else None

    @property
    def run_events(self) -> list[TriggerEvent]:
        return [e for e in self._events if e.type == "run"]

    @property
    def runs(self) -> list[RunRecord]:
        """The triggering runs, newest first (each loaded when first asked for)."""
        return [r for r in (self._run(e) for e in self.run_events) if r is not None]

    @property
    def run(self) -> RunRecord | None:
        """The newest triggering run, or None if only published events started this one."""
        first = next(iter(self.run_events), None)
        return self._run(first) if first else None

    @property
    def data(self) -> Data | None:
        """Shorthand for ``trigger.run.data``: the upstream run's outputs, loaded lazily."""
        first = next(iter(self.run_events), None)
        if first is None or first.run_uuid is None:
            return None

        def load() -> dict[str, Any]:
            run = self._run(first)
            return run.outputs if run is not None else {}  # a deleted run has none

        return Data(first.run_uuid, load)

    @property
    def hook(self) -> dict[str, Any] | None:
        return self._context.get("hook")

    # -- by name ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        """A triggering run by its job's name, else a triggering event by its name."""
        for e in self._events:
            if e.type == "run" and (e.name == key or e.payload.get("job") == key):
                run = self._run(e)
                if run is not None:
                    return run
        for e in self._events:
            if e.type == "event" and e.name == key:
                return e
        raise KeyError(f"no triggering run or event named {key!r} "
                       f"(have: {', '.join(e.name for e in self._events) or 'none'})")

    def __contains__(self, key: object) -> bool:
        return any(e.name == key or e.payload.get("job") == key for e in self._events)

    def __iter__(self) -> Iterator[TriggerEvent]:
        return iter(self._events)

    def __repr__(self) -> str:
        return f"Trigger(name={self.name!r}, type={self.type}, events={len(self._events)})"

    def _run(self, e: TriggerEvent) -> RunRecord | None:
        uuid = e.run_uuid
        if uuid is None:
            return None
        if uuid not in self._runs:
            self._runs[uuid] = self._load_run(uuid)
        return self._runs[uuid]


def _type_of(context: dict[str, Any]) -> str:
    kind = str((context.get("event") or {}).get("kind") or "")
    return "run" if kind.startswith("run_status_") else "event"


def _key_of(event: dict[str, Any]) -> str:
    payload = event.get("payload") or {}
    return str(payload.get("job") or payload.get("name") or event.get("ref", "")
               .partition(".")[2])


def _event(item: dict[str, Any]) -> TriggerEvent:
    body = item.get("event") or {}
    ts = body.get("timestamp")
    when = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return TriggerEvent(name=str(item.get("key") or _key_of(body)),
                        timestamp=when or datetime.min, type=str(item.get("type") or "event"),
                        id=str(body.get("id") or ""), kind=str(body.get("kind") or ""),
                        payload=dict(body.get("payload") or {}))
