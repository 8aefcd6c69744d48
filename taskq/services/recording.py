"""Recording what happened: commit to SQL first, then append to the stream.

Written once, for every writer (signal handlers, the API, registries, pipelines): the
database is the source of truth, and a failed append is repaired by the reconciler, so an
append failure is logged, never raised into the code that changed the state.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from taskq.core.events import Event
from taskq.core.statuses import PENDING, Status, is_final
from taskq.core.stored import Transition
from taskq.ports import Context, EventLog

log = logging.getLogger(__name__)


def append_quietly(bus: EventLog, event: Event) -> None:
    """XADD after commit; if Redis is unreachable the reconciler re-emits from SQL."""
    try:
        bus.append(event)
    except Exception as exc:
        log.warning("taskq: event %s not appended (reconciler will re-emit): %s", event.id, exc)




#: Handler failures by what failed; exposed for tests and health checks.
failures: Counter[str] = Counter()

#: Waits between attempts to write a final status when the database errors: losing a final
#: status would leave the run active forever.
FINAL_WRITE_BACKOFF = (0.5, 1.0, 2.0, 4.0)


def record(rt: Context, uuid: str, status: Status, **kwargs: Any) -> bool:
    """Commit the transition, then append its event. True if the transition applied."""
    transition = _write(rt, uuid, status, kwargs)
    if transition is None:
        return False
    try:
        rt.bus.append(transition.event)
    except Exception as exc:  # Redis briefly down: the reconciler re-emits from SQL
        failures["xadd"] += 1
        log.warning("taskq: event %s not appended (reconciler will re-emit): %s",
                    transition.event.id, exc)
    return True


def _write(rt: Context, uuid: str, status: Status, kwargs: dict[str, Any]) -> Transition | None:
    delays = FINAL_WRITE_BACKOFF if is_final(status) else ()
    for delay in delays:
        try:
            return rt.store.transition(uuid, status, **kwargs)
        except Exception as exc:
            failures["final_write_retry"] += 1
            log.warning("taskq: writing %s for %s failed (%s); retrying in %.1fs",
                        status.value, uuid, exc, delay)
            time.sleep(delay)
    return rt.store.transition(uuid, status, **kwargs)


def stop_run(rt: Context, run_uuid: str, reason: str) -> bool:
    """Stop a run that is not a pipeline: only a run that has not started is stopped in SQL
    here (a compare-and-set, so a worker claiming it at this moment wins); an active one is
    terminated, and the worker's ``task_revoked`` records it stopped."""
    stopped_pending = record(rt, run_uuid, Status.STOPPED, reason=reason, only_from=PENDING)
    rt.publisher.revoke(run_uuid, terminate=not stopped_pending, signal="SIGTERM")
    return True
