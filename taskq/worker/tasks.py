"""taskq's own Celery tasks, all on the ``taskq.triggers`` queue. Thin: logic lives elsewhere.

The evaluator is not one of them any more: it runs beside the pool (``worker/evaluator_step``).
"""

from __future__ import annotations

import logging
from typing import Any

from taskq import constants
from taskq.celery.app import get_app
from taskq.runtime import get_runtime
from taskq.services.outbox import relay_outbox
from taskq.services.pipelines import tick
from taskq.services.reconciler import reconcile
from taskq.services.redelivery import redeliver_lost

app = get_app()

log = logging.getLogger(__name__)


_said = False


@app.task(name=constants.EVALUATE_TASK, ignore_result=True, acks_late=False)
def evaluate() -> dict[str, Any]:
    """Kept so that a message from an older beat or deployment is consumed, not left
    failing as an unknown task: it does nothing. The evaluator runs beside the pool of every
    worker consuming taskq.triggers (``worker/evaluator_step``) and never takes a slot."""
    global _said
    if not _said:
        _said = True
        log.warning("taskq: %s is no longer needed and does nothing: the evaluator runs "
                    "beside the pool of every worker consuming %s", constants.EVALUATE_TASK,
                    constants.TRIGGERS_QUEUE)
    return {"joined": False, "reason": "the evaluator runs beside the worker's pool"}


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
