"""``taskq.current``: what a running job can ask about itself.

Outputs are buffered in the worker child and written with the final status, in the same
transaction, so a run's outputs are visible exactly when its success event is.
Metrics are flushed at most once a second while the job runs (so progress shows live) and
once more just before the final status, each flush with its ``run_metric`` event in the same
commit, so metric triggers see every flush.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from taskq.api.records import Trigger, loader
from taskq.core.alerts import crossings, message
from taskq.core.lineage import has_lineage
from taskq.core.run_context import RunContext, RunInfo, active, take
from taskq.core.statuses import ACTIVE, SETTABLE, Status
from taskq.core.watched import clean_tags, metric_point
from taskq.errors import NotInAJob
from taskq.runtime import get_runtime
from taskq.services import job_events
from taskq.services.recording import REASON_CHARS, append_quietly, record

log = logging.getLogger(__name__)

FLUSH_EVERY = 1.0


class Current:
    """Module-level singleton: ``from taskq import current``."""

    def _ctx(self) -> RunContext:
        ctx = active()
        if ctx is None:
            raise NotInAJob("taskq.current is only available inside a running taskq job")
        return ctx

    @property
    def is_active(self) -> bool:
        return active() is not None

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
            store = get_runtime().store
            row = store.get_run(ctx.uuid)
            tc = row.trigger_context if row else None
            ctx._trigger = Trigger(tc, loader(store.get_run)) if tc and has_lineage(tc) else None
        return ctx._trigger if isinstance(ctx._trigger, Trigger) else None

    @property
    def context(self) -> dict[str, Any]:
        """Context-only params (a hook's default context of the main run, and params marked
        ``contextOnly``): available to the job, never passed as function arguments."""
        ctx = self._ctx()
        if ctx._context is None:
            row = get_runtime().store.get_run(ctx.uuid)
            tc = (row.trigger_context if row else None) or {}
            ctx._context = dict(tc.get("context") or {})
        return dict(ctx._context)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Log one value of metric ``name`` (its title and series are both ``name``)."""
        if not isinstance(name, str) or not name:
            raise ValueError("log_metric: name must be a non-empty string")
        self._log(name, name, value, step, "log_metric")

    def log_scalar(self, title: str, series: str, value: float,
                   step: int | None = None) -> None:
        """Log one value of (title, series), ClearML's ``report_scalar``; metric triggers
        watch ``trigger_on_metric=title``, ``trigger_on_variant=series``."""
        for what, text in (("title", title), ("series", series)):
            if not isinstance(text, str) or not text:
                raise ValueError(f"log_scalar: {what} must be a non-empty string")
        self._log(title, series, value, step, "log_scalar")

    def _log(self, title: str, series: str, value: float, step: int | None,
             caller: str) -> None:
        try:
            point = metric_point(title, series, value, step, time.time())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{caller}: {exc}") from None
        ctx = self._ctx()
        ctx.metrics.append(point)
        if ctx.alerts:
            _declared_alerts(ctx, point)
        if time.monotonic() - ctx._last_flush >= FLUSH_EVERY:
            flush_metrics(ctx)
            ctx._last_flush = time.monotonic()

    def add_tags(self, *tags: str) -> None:
        """Tag this run now (a ``run_tagged`` event: run triggers on tags may fire)."""
        _tag(self._ctx().uuid, add=tags)

    def remove_tags(self, *tags: str) -> None:
        _tag(self._ctx().uuid, remove=tags)

    def set_status(self, status: str | Status, reason: str | None = None) -> bool:
        """Say where the job is: ``processing`` (past its set-up) or ``warning`` (going
        on, but something is off), each a ``run_status_<status>`` event. False if the run
        is already in it (a repeat is no new event) or no longer active."""
        try:
            wanted = Status(status)
        except ValueError:
            wanted = None
        if wanted not in SETTABLE:
            allowed = ", ".join(sorted(s.value for s in SETTABLE))
            raise ValueError(f"set_status: {status!r} cannot be set by a job; use one of "
                             f"{allowed} (the final status is the job's return or raise)")
        if reason is not None and not isinstance(reason, str):
            raise ValueError("set_status: reason must be a string")
        ctx = self._ctx()
        return record(get_runtime(), ctx.uuid, Status(wanted), attempt=ctx.attempt,
                      only_from=ACTIVE, reason=reason[:REASON_CHARS] if reason else None)

    def warn(self, message: str) -> bool:
        """``warning`` with ``message`` as its reason (``run_status_warning``): the run
        goes on; a second warning while in ``warning`` is no new event."""
        if not isinstance(message, str) or not message:
            raise ValueError("warn: message must be a non-empty string")
        return self.set_status(Status.WARNING, message)

    def alert(self, level: str, message: str, **fields: Any) -> str:
        """Raise an alert about this run (``alert_info`` / ``alert_warning`` /
        ``alert_critical``, Polyaxon's kinds): triggers on the run or its job fire, and
        read ``level``, ``message`` and ``fields`` in ``current.trigger.event.payload``.
        The run goes on. Returns the event's id."""
        return job_events.alert(get_runtime(), self._ctx().uuid, level, message, fields).id

    def log_artifact(self, name: str, uri: str, kind: str = "file") -> str:
        """Say this run produced an artifact (a ``run_new_artifacts`` event with ``name``,
        ``uri``, ``kind``): e.g. start an evaluation as soon as a checkpoint is written.
        Returns the event's id."""
        return job_events.artifact(get_runtime(), self._ctx().uuid, name, uri, kind).id

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


def flush_metrics(ctx: RunContext) -> bool:
    """Store the values logged since the last flush and their ``run_metric`` event in one
    commit, then append the event. False (values kept for the next flush) on failure."""
    start = ctx._flushed
    points = ctx.metrics[start:]
    if not points:
        return True
    rt = get_runtime()
    try:
        event = rt.store.append_metrics(ctx.uuid, points)
    except Exception as exc:
        log.warning("taskq: storing metrics of %s failed (kept for the next flush): %s",
                    ctx.uuid, exc)
        return False
    ctx._flushed = start + len(points)
    if event is not None:
        append_quietly(rt.bus, event)
    return True


def final_metrics(ctx: RunContext | None) -> list[dict[str, Any]] | None:
    """Called before a run's final status: flush through the event path; if that failed,
    hand the values to the final transition (the poller then emits their change)."""
    if ctx is None or flush_metrics(ctx):
        return None
    return ctx.unflushed_metrics() or None


def _declared_alerts(ctx: RunContext, point: dict[str, Any]) -> None:
    """Raised at once, not at the next flush: an alarm is worth its round trip. One that
    could not be stored is logged and re-armed (the next value beyond tries again): the
    job's training is never stopped by its alarm."""
    for i, alert, fields in crossings(ctx.alerts, ctx.alerts_beyond, point):
        try:
            job_events.alert(get_runtime(), ctx.uuid, alert.level, message(alert, fields),
                             fields)
        except Exception as exc:
            ctx.alerts_beyond.discard(i)
            log.warning("taskq: the %s alert on %s of %s failed: %s", alert.level,
                        alert.metric, ctx.uuid, exc)


def _tag(run_uuid: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
    rt = get_runtime()
    event = rt.store.tag_run(run_uuid, add=clean_tags(add), remove=clean_tags(remove))
    if event is not None:
        append_quietly(rt.bus, event)


__all__ = ["Current", "RunContext", "RunInfo", "current", "take"]
