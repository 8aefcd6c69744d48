"""taskq's own Celery tasks, all on the ``taskq.triggers`` queue. Thin: logic lives elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from taskq import constants
from taskq.celery.app import get_app
from taskq.runtime import Runtime, get_runtime
from taskq.services.outbox import relay_outbox
from taskq.services.pipelines import tick
from taskq.services.reconciler import reconcile
from taskq.services.redelivery import redeliver_lost

app = get_app()

log = logging.getLogger(__name__)


#: A kick that finds every slot taken looks again this many times before giving up; a slot
#: held by a loop that died frees itself when its heartbeat goes stale.
JOIN_RETRIES = 3


@app.task(name=constants.EVALUATE_TASK, bind=True, ignore_result=True, acks_late=False,
          max_retries=JOIN_RETRIES)
def evaluate(self: Any) -> dict[str, Any]:
    """Run one slice of the evaluator loop, then hand over to a fresh task.

    Beat's keep-alive and the worker_ready kick may start more of these than needed; a task
    that finds ``settings.evaluators`` loops alive exits (after a few bounded looks, in case
    a slot belongs to a loop that was killed). A slice (not an endless loop) lets a warm
    shutdown finish promptly and bounds how long a stuck loop lives.
    """
    rt = get_runtime()
    ev = rt.evaluator()
    if not ev.try_join():
        if self.request.retries < JOIN_RETRIES and not self.request.called_directly:
            raise self.retry(countdown=ev.stale_after())
        return {"joined": False}
    try:
        stats = ev.run(rt.settings.evaluator_slice_seconds)
    finally:
        ev.leave()
    evaluate.apply_async(queue=constants.TRIGGERS_QUEUE, expires=60)
    return {"joined": True, "processed": stats.processed, "fired": stats.fired}


@app.task(name=constants.RECONCILE_TASK, ignore_result=True)
def reconcile_task() -> dict[str, Any]:
    result = reconcile(get_runtime())
    return {"skipped": True} if result is None else result.__dict__


@app.task(name=constants.RELAY_TASK, ignore_result=True)
def relay_task() -> int:
    return relay_outbox(get_runtime())


@app.task(name=constants.REDELIVER_TASK, ignore_result=True)
def redeliver_task() -> int:
    return redeliver_lost(get_runtime())


@app.task(name=constants.PIPELINES_TICK_TASK, ignore_result=True)
def pipelines_tick() -> int:
    return tick(get_runtime())


def kick_evaluators(rt: Runtime) -> None:
    for _ in range(rt.settings.evaluators):
        evaluate.apply_async(queue=constants.TRIGGERS_QUEUE, expires=60)
