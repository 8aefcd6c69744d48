"""``TriggerScheduler.start()`` calling the schedule_functions of its own script.

ClearML calls a schedule_function in the scheduler's process, so functions defined in the
script itself (``__main__``) work. taskq keeps that: a firing of such a trigger records a
run of ``taskq.function`` on a queue no worker consumes; the scheduler process claims it
from SQL (queued -> running, a compare-and-set, so two schedulers never call it twice),
calls the function in a thread of its own (as ClearML does) and records the outcome. The
run, its events and ``single_instance`` behave like any other run's.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from taskq import constants
from taskq.core.statuses import Status
from taskq.ports import Context
from taskq.services.recording import record

log = logging.getLogger(__name__)

_QUEUED = frozenset({Status.QUEUED})


def call_due(rt: Context, functions: Mapping[str, Callable[[str], Any]], namespace: str
             ) -> list[threading.Thread]:
    """Claim every queued call of ``functions`` (by trigger name) and start it; returns
    the threads started."""
    started = []
    for trigger, fn in functions.items():
        queued = rt.store.list_runs(job=constants.FUNCTION_JOB, namespace=namespace,
                                    status=Status.QUEUED.value, trigger=trigger, limit=100)
        for run in reversed(queued):  # oldest first
            if run.queue != constants.SCHEDULER_CALLS_QUEUE:
                continue
            if not record(rt, run.uuid, Status.RUNNING, attempt=1, only_from=_QUEUED):
                continue  # another scheduler claimed it
            thread = threading.Thread(target=_call, args=(rt, run.uuid, fn, run.params),
                                      name=f"taskq-call-{run.uuid[:8]}", daemon=True)
            thread.start()
            started.append(thread)
    return started


def _call(rt: Context, run_uuid: str, fn: Callable[[str], Any], params: dict[str, Any]
          ) -> None:
    try:
        result = fn(params["entity_id"])
    except BaseException as exc:  # the function's failure is the run's, never the loop's
        log.exception("taskq: schedule_function of run %s failed", run_uuid)
        record(rt, run_uuid, Status.FAILED, attempt=1,
               reason=f"{type(exc).__name__}: {exc}"[:2000])
        return
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError):
        result = repr(result)[:2000]
    record(rt, run_uuid, Status.SUCCEEDED, attempt=1, outputs={"result": result})
