"""The Celery app factory (``celery -A taskq.app worker|beat|flower`` runs its product).

Configuration follows the reliability baseline for a Redis broker (late acks, prefetch 1)
because a cloned run must not be lost with a killed worker; a killed pool child fails its run
(recorded by the MainProcess's task_failure) instead of being requeued. That a run is never
started twice is kept by taskq's own start claim, not by the broker.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]

from taskq import constants
from taskq.celery import redis_transport
from taskq.settings import Settings, get_settings

#: Imported by every worker: the signal handlers, taskq's tasks and the built-in jobs.
#: Strings, so this adapter never imports the worker above it.
WORKER_MODULES = ("taskq.worker.signals", "taskq.worker.tasks", "taskq.worker.builtin_jobs",
                  "taskq.worker.entity_jobs", "taskq.worker.control")
#: The worker bootstep that runs the evaluator beside the pool of any worker consuming
#: taskq.triggers (a string for the same reason).
EVALUATOR_STEP = "taskq.worker.evaluator_step:EvaluatorStep"


def beat_schedule(settings: Settings) -> dict[str, Any]:
    opts = {"queue": constants.TRIGGERS_QUEUE, "expires": 30}
    return {
        "taskq-reconcile": {"task": constants.RECONCILE_TASK,
                            "schedule": settings.reconcile_every, "options": opts},
        "taskq-relay-outbox": {"task": constants.RELAY_TASK,
                               "schedule": settings.relay_every, "options": opts},
        # Queued runs whose message vanished (Redis lost its data, a worker died holding it),
        # and runs left running by a dead worker.
        "taskq-redeliver-lost": {"task": constants.REDELIVER_TASK,
                                 "schedule": min(settings.redeliver_every,
                                                 settings.worker_lost_after_seconds / 4),
                                 "options": opts},
        # Models, datasets and runs changed by other writers (each family when it is due).
        "taskq-poll-entities": {"task": constants.POLL_TASK,
                                "schedule": constants.POLL_TICK_SECONDS, "options": opts},
        # Pipelines whose events were lost (a crashed evaluator) still move on.
        "taskq-pipelines-tick": {"task": constants.PIPELINES_TICK_TASK,
                                 "schedule": settings.reconcile_every, "options": opts},
    }


def create_app(settings: Settings) -> Celery:
    celery = Celery("taskq", set_as_current=False)
    queues = settings.all_queues()
    broker = settings.broker_url()
    celery.conf.update(
        broker_url=broker,
        # A URL with its transport in it (redis+socket://) keeps kombu's own.
        broker_transport=(redis_transport.TRANSPORT
                          if broker.split("://", 1)[0] in ("redis", "rediss") else None),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_default_queue=settings.default_queue,
        # Declared so Flower's Broker tab lists them even while no worker consumes them.
        task_queues=[Queue(q, routing_key=q) for q in queues],
        task_create_missing_queues=True,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        # The worker's own modules (signals, tasks, built-in jobs), then the user's jobs.
        imports=[*WORKER_MODULES, *settings.imports],
        beat_schedule=beat_schedule(settings),
        beat_max_loop_interval=5,
    )
    # An attribute, not a conf key: `celery inspect conf` and Flower's config page would
    # print a conf value, URLs with passwords included.
    celery.taskq_settings = settings
    celery.steps["worker"].add(EVALUATOR_STEP)
    return celery



_app: Celery | None = None
_lock = threading.Lock()


def get_app() -> Celery:
    """The process's own app, built once from the process's settings: ``@taskq.job``
    registers tasks on it and ``celery -A taskq.app`` runs it. Building it connects to
    nothing, so importing a module of jobs never needs a broker."""
    global _app
    with _lock:
        if _app is None:
            _app = create_app(get_settings())
            _app.set_current()
        return _app
