"""Recording what happened: commit to SQL first, then append to the stream.

Written once, for every writer (signal handlers, the API, registries, pipelines): the
database is the source of truth, and a failed append is repaired by the reconciler, so an
append failure is logged, never raised into the code that changed the state.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from taskq.core.events import Event
from taskq.core.statuses import PENDING, Status, is_final
from taskq.core.stored import Transition
from taskq.ports import Context, EventLog
from taskq.services.outages import is_outage
from taskq.services.outbox import publish

log = logging.getLogger(__name__)


def append_quietly(bus: EventLog, event: Event | Sequence[Event]) -> None:
    """XADD after commit; if Redis is unreachable the reconciler re-emits from SQL.
    Several events (one commit's, in order) go in one round trip."""
    try:
        if isinstance(event, Event):
            bus.append(event)
        elif event:
            bus.append_many(event)
    except Exception as exc:
        events = [event] if isinstance(event, Event) else list(event)
        ids = ", ".join(e.id for e in events[:5]) + (
            f" and {len(events) - 5} more" if len(events) > 5 else "")
        log.warning("taskq: event %s not appended (reconciler will re-emit): %s", ids, exc)



#: Handler failures by what failed; exposed for tests and health checks.
failures: Counter[str] = Counter()

#: Waits between attempts to write a final status when the database is away: losing a
#: final status would leave the run active forever.
FINAL_WRITE_BACKOFF = (0.5, 1.0, 2.0, 4.0)
#: Longest stored reason.
REASON_CHARS = 2000


def record(rt: Context, uuid: str, status: Status, **kwargs: Any) -> bool:
    """Commit the transition, then append its event. True if the transition applied."""
    transition = _write(rt, uuid, status, kwargs)
    if transition is None:
        return False
    try:
        if transition.earlier:
            # Statuses passed through (a start claim's starting and initializing): one
            # round trip for them all, the one reached first. An evaluator blocked on the
            # stream wakes on the first entry appended, so the status a trigger most likely
            # waits on (running) is not held behind the two it passed through; their order
            # of record is run_events', and no decision depends on their stream order.
            rt.bus.append_many([transition.event, *transition.earlier])
        else:
            rt.bus.append(transition.event)
    except Exception as exc:  # Redis briefly down: the reconciler re-emits from SQL
        failures["xadd"] += 1
        log.warning("taskq: event %s not appended (reconciler will re-emit): %s",
                    transition.event.id, exc)
    return True


def _write(rt: Context, uuid: str, status: Status, kwargs: dict[str, Any]) -> Transition | None:
    """A final status always lands: an outage is retried with backoff; anything else (what
    the job left cannot be stored) drops the outputs and metrics, then the reason, and
    says so in the reason, rather than leave the run active for ever. Except for success:
    a success whose outputs are lost is not one, so the error goes to the caller, which
    records the run failed (``worker.signals.on_success``)."""
    if not is_final(status):
        return rt.store.transition(uuid, status, **kwargs)
    delays = iter(FINAL_WRITE_BACKOFF)
    attempt = dict(kwargs)
    while True:
        try:
            return rt.store.transition(uuid, status, **attempt)
        except Exception as exc:
            if not is_outage(rt, exc):  # retrying the same write would fail the same way
                plainer = None if status == Status.SUCCEEDED else _plainer(attempt, exc)
                if plainer is None:
                    raise
                failures["final_write_plainer"] += 1
                log.warning("taskq: writing %s for %s failed (%s: %s); writing it without "
                            "what could not be stored", status.value, uuid,
                            type(exc).__name__, exc)
                attempt = plainer
                continue
            delay = next(delays, None)
            if delay is None:
                raise
            failures["final_write_retry"] += 1
            log.warning("taskq: writing %s for %s failed (%s); retrying in %.1fs",
                        status.value, uuid, exc, delay)
            time.sleep(delay)


def _plainer(attempt: dict[str, Any], exc: Exception) -> dict[str, Any] | None:
    """The next plainer write of a final status, or None when there is none left."""
    why = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if attempt.get("outputs") or attempt.get("metrics"):
        reason = attempt.get("reason")
        note = f"outputs and metrics could not be stored ({why})"
        return {**attempt, "outputs": None, "metrics": None,
                "reason": (f"{reason}; {note}" if reason else note)[:REASON_CHARS]}
    if attempt.get("reason") and not str(attempt["reason"]).startswith("status reason lost"):
        return {**attempt, "reason": f"status reason lost: it could not be stored ({why})"
                                     [:REASON_CHARS]}
    return None


def stop_run(rt: Context, run_uuid: str, reason: str) -> bool:
    """Stop a run that is not a pipeline: only a run that has not started is stopped in SQL
    here (a compare-and-set, so a worker claiming it at this moment wins); an active one is
    terminated, and the worker's ``task_revoked`` records it stopped."""
    stopped_pending = record(rt, run_uuid, Status.STOPPED, reason=reason, only_from=PENDING)
    rt.publisher.revoke(run_uuid, terminate=not stopped_pending, signal="SIGTERM")
    return True


def resume_run(rt: Context, run_uuid: str, reason: str) -> bool:
    """A stopped or failed run, ``resuming`` then ``queued`` again as a new incarnation
    (``Store.resume_run``, one commit), then sent; False if it was not resumable or a
    concurrent resume got there first. A failed send is the relay's (the outbox row)."""
    resumed = rt.store.resume_run(run_uuid, reason[:REASON_CHARS])
    if resumed is None:
        return False
    events, item = resumed
    append_quietly(rt.bus, events)
    try:
        rt.publisher.unrevoke(run_uuid)  # a stop revoked its task id in every worker
    except Exception as exc:
        log.warning("taskq: workers could not be told to forget the revoke of %s: %s",
                    run_uuid, exc)
    publish(rt, item)
    return True
