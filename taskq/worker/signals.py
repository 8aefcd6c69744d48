"""Celery signal handlers: every run-status change goes to SQL first, then to the stream.

Which process runs each handler matters (see docs/architecture.md):

=====================  ======================  ==========================================
signal                 process                 effect
=====================  ======================  ==========================================
after_task_publish     the publisher           created -> queued (unless the outbox
                                               commit already recorded it)
task_received          MainProcess             scheduled -> starting (a run with an eta,
                                               held by the worker until its time)
task_prerun            pool child              claim the attempt: -> starting ->
                                               initializing -> running (or skip), one
                                               commit, an event each
task_success           pool child              -> succeeded, with outputs and metrics
task_failure           child, or MainProcess   -> failed (MainProcess: the child died,
                       (worker lost)           hard time limit)
task_retry             child / MainProcess     -> retrying
task_revoked           MainProcess             -> stopped
=====================  ======================  ==========================================

Celery swallows handler exceptions, so each handler catches, logs and counts its own; the
database write is the source of truth and a failed XADD is repaired by the reconciler.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from taskq import constants
from taskq.api import current as context
from taskq.core.statuses import ACTIVE, Status
from taskq.errors import JobError
from taskq.runtime import Runtime, get_runtime, reset_after_fork
from taskq.services import recording
from taskq.services.recording import append_quietly
from taskq.services.trigger_admin import sync_job_templates
from taskq.worker import liveness

log = logging.getLogger(__name__)

#: What the start claim passes through on its way to ``running``, each its own event.
CLAIM_VIA = (Status.STARTING, Status.INITIALIZING)

def record(uuid: str, status: Status, *, rt: Runtime | None = None, **kwargs: Any) -> bool:
    """Commit the transition, then append its event (:func:`recording.record`)."""
    return recording.record(rt or get_runtime(), uuid, status, **kwargs)


def _is_job(task_name: str | None) -> bool:
    return bool(task_name) and str(task_name).startswith(constants.JOB_TASK_PREFIX)


@signals.after_task_publish.connect(dispatch_uid="taskq.after_task_publish")
def on_published(sender: str | None = None, headers: dict[str, Any] | None = None,
                 **_: Any) -> None:
    headers = headers or {}
    run_uuid = headers.get(constants.RUN_HEADER)
    if not run_uuid or headers.get(constants.QUEUED_HEADER):
        return
    try:
        record(run_uuid, Status.QUEUED)
    except Exception:
        recording.failures["after_task_publish"] += 1
        log.exception("taskq: recording queued for %s failed", run_uuid)


def _create_dev_run(task: Any, task_id: str, kwargs: dict[str, Any]) -> None:
    """A job task called with plain Celery (``.delay``) gets a run row on first start."""
    jd = getattr(task, "taskq_job", None)
    if jd is None:
        return

    rt = get_runtime()
    queued = rt.store.create_run(
        uuid=task_id, job=jd.name, namespace=jd.namespace, project=jd.project,
        queue=task.request.delivery_info.get("routing_key") or jd.queue, agent="default",
        task_name=task.name, params=dict(kwargs), tags=["development"])
    rt.store.mark_published(task_id)
    append_quietly(rt.bus, queued)


def _incarnation(task: Any) -> int:
    """The run incarnation this message was sent for: 0 unless a reuse_task trigger
    re-enqueued the run (then the header names the incarnation it is for)."""
    req = task.request
    raw = getattr(req, constants.INCARNATION_HEADER, None)
    if raw is None:
        raw = (getattr(req, "headers", None) or {}).get(constants.INCARNATION_HEADER)
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return -1  # malformed: matches no incarnation, so it is refused


@signals.task_received.connect(dispatch_uid="taskq.task_received")
def on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """A run with an eta is held by the worker until its time: ``starting`` now, in the
    MainProcess. A run that starts at once gets ``starting`` in its start claim's commit
    instead, so the path to its first line makes no extra write."""
    if request is None or not _is_job(getattr(request, "name", None)):
        return
    if getattr(request, "eta", None) is None:
        return
    headers = getattr(request, "request_dict", None) or {}
    try:
        incarnation = int(headers.get(constants.INCARNATION_HEADER) or 0)
        record(str(request.id), Status.STARTING, incarnation=incarnation,
               only_from=frozenset({Status.SCHEDULED}))
    except Exception:
        recording.failures["task_received"] += 1
        log.exception("taskq: recording starting of %s failed", request.id)


@signals.task_prerun.connect(dispatch_uid="taskq.task_prerun")
def on_prerun(sender: Any = None, task_id: str | None = None, task: Any = None,
              kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    if task is None or not _is_job(task.name) or not task_id:
        return
    attempt = int(task.request.retries or 0) + 1
    jd = getattr(task, "taskq_job", None)
    if jd is not None and kwargs is not None:
        try:
            kwargs.update(jd.validator.validate(kwargs, job=jd.name))
            unknown = sorted(set(kwargs) - set(jd.inputs)) if not jd.accepts_extra else []
            if unknown:
                raise JobError(f"params.{unknown[0]}: job {jd.name!r} has no input "
                               f"{unknown[0]!r}")
        except JobError as exc:
            # Bad params fail the run before it runs: recorded with the reason, never raised.
            task.request.taskq_skip = True
            try:
                if not record(task_id, Status.FAILED, reason=str(exc)):
                    _create_dev_run(task, task_id, kwargs)
                    record(task_id, Status.FAILED, reason=str(exc))
            except Exception:
                recording.failures["task_prerun"] += 1
                log.exception("taskq: recording invalid params of %s failed", task_id)
            return
    incarnation = _incarnation(task)
    hostname = getattr(task.request, "hostname", None)
    worker = liveness.identity(str(hostname)) if hostname else None
    try:
        applied = record(task_id, Status.RUNNING, attempt=attempt, incarnation=incarnation,
                         worker=worker, via=CLAIM_VIA)
        if not applied and get_runtime().store.get_run(task_id) is None:
            _create_dev_run(task, task_id, kwargs or {})
            applied = record(task_id, Status.RUNNING, attempt=attempt,
                             incarnation=incarnation, worker=worker, via=CLAIM_VIA)
        if not applied:
            # This attempt already started elsewhere (a republished message): do not run it.
            task.request.taskq_skip = True
            if (task.request.delivery_info or {}).get("redelivered"):
                _fail_if_orphaned(task_id, incarnation)
            else:
                log.info("taskq: run %s attempt %s already started; skipping duplicate "
                         "delivery", task_id, attempt)
    except Exception:
        recording.failures["task_prerun"] += 1
        task.request.taskq_claim_failed = True
        log.exception("taskq: claiming run %s failed; the message will be requeued", task_id)


def _fail_if_orphaned(task_id: str, incarnation: int = 0) -> None:
    """The broker redelivers an unacknowledged message only after its visibility timeout:
    the worker that started this attempt died with it (SIGKILL, OOM, host loss). Fail the
    run so that it does not stay RUNNING forever and triggers on failure fire."""
    run = get_runtime().store.get_run(task_id)
    if (run is not None and Status(run.status) in ACTIVE
            and run.incarnation == incarnation):  # not a later incarnation's
        record(task_id, Status.FAILED, via=(Status.UNKNOWN,), only_from=ACTIVE,
               reason="worker lost: the message was redelivered after the broker's "
                      "visibility timeout while the run was running")


def _attempt(task: Any) -> int | None:
    req = getattr(task, "request", None)
    if req is None or getattr(req, "taskq_skip", False):
        return None
    return int(req.retries or 0) + 1


@signals.task_success.connect(dispatch_uid="taskq.task_success")
def on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if sender is None or not _is_job(sender.name):
        return
    req = sender.request
    if getattr(req, "taskq_skip", False):
        return
    ctx = context.take(req.id)
    try:
        record(req.id, Status.SUCCEEDED, attempt=_attempt(sender),
               outputs=ctx.outputs if ctx else None, metrics=context.final_metrics(ctx))
    except Exception as exc:
        recording.failures["task_success"] += 1
        log.exception("taskq: recording success of %s failed", req.id)
        # Still end the run, so it does not stay RUNNING; say why outputs are missing.
        try:
            record(req.id, Status.FAILED, attempt=_attempt(sender),
                   reason=f"finished, but its outputs could not be stored: {exc}"[:2000])
        except Exception:
            log.exception("taskq: recording the end of %s failed", req.id)


@signals.task_failure.connect(dispatch_uid="taskq.task_failure")
def on_failure(sender: Any = None, task_id: str | None = None, exception: Any = None,
               **_: Any) -> None:
    if sender is None or not _is_job(getattr(sender, "name", None)) or not task_id:
        return
    req = getattr(sender, "request", None)
    in_child = req is not None and getattr(req, "id", None) == task_id
    if in_child and getattr(req, "taskq_skip", False):
        return
    ctx = context.take(task_id)
    reason = f"{type(exception).__name__}: {exception}"[:2000] if exception else None
    try:
        record(task_id, Status.FAILED, reason=reason,
               attempt=_attempt(sender) if in_child else None,
               outputs=ctx.outputs if ctx else None, metrics=context.final_metrics(ctx))
    except Exception:
        recording.failures["task_failure"] += 1
        log.exception("taskq: recording failure of %s failed", task_id)


@signals.task_retry.connect(dispatch_uid="taskq.task_retry")
def on_retry(sender: Any = None, request: Any = None, reason: Any = None, einfo: Any = None,
             **_: Any) -> None:
    if sender is None or not _is_job(sender.name) or request is None:
        return
    context.take(request.id)
    try:
        if einfo is None:
            # The MainProcess cancelled the job because the broker connection dropped
            # (worker_cancel_long_running_tasks_on_connection_loss); the message comes back
            # unchanged, so no new attempt would ever be claimed: the run failed. Only a run
            # that had started: one cancelled before its claim is still queued, and its
            # message (returned, or republished by the redelivery sweep if the broker lost
            # it) starts it as if nothing happened.
            if not record(request.id, Status.FAILED, only_from=ACTIVE,
                          reason=f"cancelled: the worker lost its broker connection "
                                 f"({reason})"[:2000]):
                log.info("taskq: run %s cancelled before it started (broker connection "
                         "lost); it stays queued for its message", request.id)
            return
        record(request.id, Status.RETRYING, reason=str(reason)[:2000] if reason else None,
               attempt=int(request.retries or 0) + 1)
    except Exception:
        recording.failures["task_retry"] += 1
        log.exception("taskq: recording retry of %s failed", request.id)


@signals.task_revoked.connect(dispatch_uid="taskq.task_revoked")
def on_revoked(sender: Any = None, request: Any = None, terminated: bool = False,
               signum: Any = None, expired: bool = False, **_: Any) -> None:
    if sender is None or not _is_job(getattr(sender, "name", None)) or request is None:
        return
    why = "expired" if expired else f"terminated ({signum})" if terminated else "revoked"
    try:
        record(request.id, Status.STOPPED, reason=why)
    except Exception:
        recording.failures["task_revoked"] += 1
        log.exception("taskq: recording revoke of %s failed", request.id)


@signals.worker_process_init.connect(dispatch_uid="taskq.worker_process_init")
def on_child_start(**_: Any) -> None:
    reset_after_fork()


@signals.worker_ready.connect(dispatch_uid="taskq.worker_ready")
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Store this worker's job templates (the evaluator loops are the bootstep's) and
    start its heartbeat (``worker.liveness``)."""
    hostname = getattr(sender, "hostname", None)
    if hostname:
        liveness.start(liveness.identity(str(hostname)), _consumed_queues(sender))
    try:
        sync_job_templates(get_runtime())
    except Exception:
        recording.failures["worker_ready"] += 1
        log.exception("taskq: storing job templates failed")


def _consumed_queues(consumer: Any) -> list[str]:
    """The queues this worker takes messages from (``-Q``, else every declared one)."""
    try:
        return sorted(str(q) for q in consumer.app.amqp.queues.consume_from)
    except Exception:
        log.exception("taskq: reading the queues this worker consumes failed")
        return []
