"""``taskq.current``: what a running job can ask about itself.

Outputs and metrics are buffered in the worker child and written with the final status, in
the same transaction, so a run's outputs are visible exactly when its success event is.
Metrics are also flushed at most once a second while the job runs, so progress shows live.
"""

from __future__ import annotations

import contextvars
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from taskq.lineage import Trigger

FLUSH_EVERY = 1.0


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
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    _flushed: int = 0
    _last_flush: float = field(default_factory=time.monotonic)
    _trigger: Trigger | bool | None = False
    _context: dict[str, Any] | None = None

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


class NotInAJob(RuntimeError):
    pass


class Current:
    """Module-level singleton: ``from taskq import current``."""

    def _ctx(self) -> RunContext:
        ctx = _current.get()
        if ctx is None:
            raise NotInAJob("taskq.current is only available inside a running taskq job")
        return ctx

    @property
    def is_active(self) -> bool:
        return _current.get() is not None

    @property
    def run(self) -> RunInfo:
        ctx = self._ctx()
        return RunInfo(uuid=ctx.uuid, name=ctx.job, params=dict(ctx.params))

    @property
    def trigger(self) -> Trigger | None:
        """What started this run (None for a run started by hand): ``.event``, ``.events``,
        ``.run``, ``.runs``, ``.data``, ``.type``, and ``trigger[name]``."""
        ctx = self._ctx()
        if ctx._trigger is False:
            from taskq.records import loader
            from taskq.runtime import get_runtime

            store = get_runtime().store
            row = store.get_run(ctx.uuid)
            tc = (row or {}).get("trigger_context")
            ctx._trigger = Trigger(tc, loader(store.get_run)) if tc else None
        return ctx._trigger if isinstance(ctx._trigger, Trigger) else None

    @property
    def context(self) -> dict[str, Any]:
        """Context-only params (a hook's default context of the main run, and params marked
        ``contextOnly``): available to the job, never passed as function arguments."""
        ctx = self._ctx()
        if ctx._context is None:
            from taskq.runtime import get_runtime

            row = get_runtime().store.get_run(ctx.uuid)
            ctx._context = dict(((row or {}).get("trigger_context") or {}).get("context") or {})
        return dict(ctx._context)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("log_metric: name must be a non-empty string")
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise ValueError(f"log_metric: value of {name!r} must be finite, got {value!r}")
        ctx = self._ctx()
        ctx.metrics.append({"name": name, "value": number, "step": step, "at": time.time()})
        if time.monotonic() - ctx._last_flush >= FLUSH_EVERY:
            from taskq.runtime import get_runtime

            get_runtime().store.save_progress(ctx.uuid, metrics=ctx.unflushed_metrics())
            ctx._last_flush = time.monotonic()

    def set_output(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("set_output: name must be a non-empty string")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            # Refused here, where the job can handle it, not when the final status is written.
            raise ValueError(f"set_output: value of {name!r} must be JSON-serialisable "
                             f"(str, number, bool, None, list, dict): {exc}") from None
        self._ctx().outputs[name] = value


current = Current()
