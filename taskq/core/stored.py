"""What the adapters hand back and take in: typed values that cross from the SQL store and
the event stream to the services and the core, so no layer needs an adapter's module to name
them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from taskq.core.events import Event
from taskq.core.statuses import Status


@dataclass(frozen=True)
class JobTemplate:
    """A job as the workers that import it declared it: what a clone of it is queued with.

    Read by the evaluator once per trigger reload and by every manual submit, so it carries
    the whole declaration and nobody goes back to the store for a missing column."""

    name: str
    namespace: str
    queue: str
    task_name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    project: str | None = None
    presets: tuple[str, ...] = ()
    description: str | None = None
    #: Every run of the job waits, unpublished, for ``taskq runs approve``.
    approval: bool = False


@dataclass(frozen=True)
class StoredTrigger:
    """A trigger row: the kind's spec is still the JSON it was stored as, because only the
    kind (:meth:`TriggerKind.build_rule`) knows how to read it."""

    id: int
    name: str
    namespace: str
    kind: str
    spec: dict[str, Any]
    job: str
    params: dict[str, Any]
    queue: str | None
    enabled: bool = True
    version: int = 1
    created_at: str | None = None
    #: Failed evaluations in a row, and why the trigger was set aside (None: it is not).
    failures: int = 0
    quarantined: str | None = None
    quarantined_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The serialised form the Python API, ``--json`` and HTTP answer with."""
        quarantine = (None if self.quarantined is None else
                      {"reason": self.quarantined, "at": self.quarantined_at})
        return {"id": self.id, "name": self.name, "namespace": self.namespace,
                "kind": self.kind, "spec": dict(self.spec), "job": self.job,
                "params": dict(self.params), "queue": self.queue, "enabled": self.enabled,
                "version": self.version, "created_at": self.created_at,
                "failures": self.failures, "quarantined": quarantine}


@dataclass(frozen=True)
class StoredRun:
    """A run row as the services read it (the API wraps it in ``RunRecord``)."""

    uuid: str
    job: str
    project: str | None
    namespace: str
    status: str
    reason: str | None
    queue: str
    params: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    celery_task_id: str | None = None
    trigger_name: str | None = None
    trigger_id: int | None = None
    firing_id: int | None = None
    event_ids: list[str] = field(default_factory=list)
    trigger_context: dict[str, Any] | None = None
    attempts: int = 0
    incarnation: int = 0
    kind: str = "job"
    pipeline_uuid: str | None = None
    op_name: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    #: None, or waiting / approved / invalidated (``taskq runs approve|invalidate``).
    approval: str | None = None


@dataclass(frozen=True)
class TriggerRef:
    """Which trigger a firing belongs to: all the store needs of a rule to record it."""

    id: int
    name: str
    #: The trigger's version the evaluator held (the revision the firing names).
    version: int | None = None


@dataclass(frozen=True)
class Transition:
    run: dict[str, Any]
    event: Event
    #: The events of statuses passed through on the way (``via``), in order, before it.
    earlier: tuple[Event, ...] = ()

    @property
    def events(self) -> list[Event]:
        return [*self.earlier, self.event]


@dataclass(frozen=True)
class FiringRecord:
    firing_id: int
    run_uuid: str | None
    created: bool  # False: this (trigger, key) had already fired
    outbox_pending: bool
    #: The new run's ``compiled`` and ``queued`` events, to append after the publish.
    queued_events: tuple[Event, ...] = ()
    #: The error this new firing recorded instead of a run (a render or planning error).
    error: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    run_uuid: str
    task_name: str
    queue: str
    agent: str
    params: dict[str, Any]
    attempts: int
    #: The run's incarnation (sent as a header; see ``Run.incarnation``).
    incarnation: int = 0
    #: When a scheduled run (``eta`` / ``countdown``) may start: sent as Celery's ``eta``.
    eta: datetime | None = None



@dataclass(frozen=True)
class PipelineView:
    """What the scheduler needs, read under the pipeline's lock."""

    uuid: str
    name: str
    namespace: str
    status: Status
    spec: dict[str, Any]
    params: dict[str, Any]
    ops: dict[str, dict[str, Any]]  # op name -> run summary (+ "reached": set of statuses)


@dataclass(frozen=True)
class Advanced:
    events: list[Event]
    outbox: list[OutboxItem]


#: Given the view, return (op actions, pipeline status or None, reason). Each action is
#: (kind, op, reason, start) where start is None or (params, queue, agent, task_name,
#: context): context is the operation's contextOnly params (None when it has none).
Planner = Callable[[PipelineView], tuple[Sequence[Any], Status | None, str | None]]

@dataclass(frozen=True)
class Watermark:
    """The poller's position in one table: every row at or before it has been compared."""

    at: datetime
    id: str

    def dump(self) -> str:
        return f"{self.at.isoformat()}|{self.id}"

    @classmethod
    def load(cls, value: str | None) -> Watermark:
        if not value:
            return cls(datetime(1970, 1, 1, tzinfo=UTC), "")
        at, _, last = value.partition("|")
        parsed = datetime.fromisoformat(at)
        return cls(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC), last)


#: What a change function returns: the columns to update (empty: nothing to change).
Change = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    stream_id: str
    fields: dict[Any, Any]
    deliveries: int = 1

    def decode(self) -> Event:
        return Event.from_fields(self.fields)
