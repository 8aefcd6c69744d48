"""The running job's own state: which run this is, its buffered outputs and metrics.

Pure (a context variable and plain data), so the Celery job wrapper below the API can
activate it and ``taskq.current`` above it can read it, without either importing the other.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    uuid: str
    name: str
    params: dict[str, Any]



@dataclass
class RunContext:
    uuid: str
    job: str
    params: dict[str, Any]
    namespace: str
    #: Celery's retries + 1: a status the job sets applies to this attempt only.
    attempt: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    _flushed: int = 0
    _last_flush: float = field(default_factory=time.monotonic)
    _trigger: Any = False
    _context: dict[str, Any] | None = None
    #: The job's declared alerts, and the indexes of those whose metric is beyond them now.
    alerts: tuple[Any, ...] = ()
    alerts_beyond: set[int] = field(default_factory=set)

    def unflushed_metrics(self) -> list[dict[str, Any]]:
        out = self.metrics[self._flushed :]
        self._flushed = len(self.metrics)
        return out


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "taskq_current", default=None)
_by_uuid: dict[str, RunContext] = {}


@contextmanager
def activate(ctx: RunContext) -> Iterator[RunContext]:
    token = _current.set(ctx)
    _by_uuid[ctx.uuid] = ctx
    try:
        yield ctx
    finally:
        _current.reset(token)


def take(uuid: str) -> RunContext | None:
    """The signal handlers collect the buffers of a finished run here."""
    return _by_uuid.pop(uuid, None)


def active() -> RunContext | None:
    """The run this thread of control is executing, if any."""
    return _current.get()
