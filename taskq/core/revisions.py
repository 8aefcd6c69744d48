"""Trigger revisions: every change to a trigger is kept, so an event is judged by the
trigger as it was when the event happened, not as it is now.

Who made a change is known only to the call path (the CLI, the HTTP server, ``taskq apply``,
a job's declaration, the evaluator quarantining); they say so with :func:`changes_by`, and
the store reads :func:`change_source` when it writes the revision, so no signature between
them has to carry it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from taskq.core.stored import StoredTrigger

Action = Literal["created", "updated", "enabled", "disabled", "quarantined", "released",
                 "deleted"]
#: Where a change came from; "python" when nobody said (a script using the Client).
SOURCES = ("python", "cli", "http", "yaml", "code", "evaluator", "beat")

_source: ContextVar[str] = ContextVar("taskq_change_source", default="python")


def change_source() -> str:
    return _source.get()


def _check(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source: {source!r} is not one of {', '.join(SOURCES)}")


@contextmanager
def changes_by(source: str) -> Iterator[None]:
    """Trigger changes made inside are recorded as made by ``source``."""
    _check(source)
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


@dataclass(frozen=True)
class Revision:
    """One stored revision: the trigger row as the change left it."""

    id: int
    trigger_id: int
    name: str
    namespace: str
    version: int
    action: str
    kind: str
    spec: dict[str, Any]
    job: str
    params: dict[str, Any]
    queue: str | None
    enabled: bool
    quarantined: str | None
    source: str
    at: datetime

    @property
    def exists(self) -> bool:
        return self.action != "deleted"

    def trigger(self) -> StoredTrigger:
        """The row a kind builds its rule from (``TriggerKind.build_rule``)."""
        return StoredTrigger(id=self.trigger_id, name=self.name, namespace=self.namespace,
                             kind=self.kind, spec=dict(self.spec), job=self.job,
                             params=dict(self.params), queue=self.queue, enabled=self.enabled,
                             version=self.version, quarantined=self.quarantined)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "trigger_id": self.trigger_id, "action": self.action,
                "by": self.source, "at": self.at.isoformat(), "enabled": self.enabled,
                "quarantined": self.quarantined, "kind": self.kind, "spec": dict(self.spec),
                "job": self.job, "params": dict(self.params), "queue": self.queue}


def in_force(revisions: Sequence[Revision], at: datetime) -> Revision | None:
    """The last revision made at or before ``at`` (revisions in the order they were made);
    None: the trigger did not exist yet."""
    found = None
    for rev in revisions:
        if rev.at <= at:
            found = rev
        else:
            break
    return found


def of_version(revisions: Sequence[Revision], trigger_id: int, version: int
               ) -> Revision | None:
    """The revision a firing names (its trigger's id and version)."""
    return next((r for r in reversed(revisions)
                 if r.trigger_id == trigger_id and r.version == version), None)
