"""``@taskq.job``: a function becomes a Celery task plus a job spec in the registry.

The Celery task id of a run is the run's uuid, so Flower, Celery's result APIs and taskq's
tables all name a run the same way. What a job *is* (its spec, params checking) is pure and
lives in :mod:`taskq.core.jobs`; this module only binds it to Celery.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from celery.exceptions import Reject
from pydantic import ValidationError as PydanticError

from taskq import constants
from taskq.celery.app import get_app
from taskq.core import signature
from taskq.core.alerts import Alert, check_alerts
from taskq.core.jobs import BUILTIN_JOBS, IOSpec, JobDef, JobRegistry, normalise_io
from taskq.core.names import NAME, validate_namespace
from taskq.core.routing import parse_queue
from taskq.core.run_context import RunContext, activate
from taskq.core.triggers import chaining
from taskq.core.triggers.hook import Hook
from taskq.errors import EventError, JobError, RoutingError, first_error

#: The jobs this process declared with ``@taskq.job`` (synced to the database by workers
#: and clients; the runtime hands it to the services that need it).
registry = JobRegistry(BUILTIN_JOBS.values())


def registered_jobs() -> dict[str, JobDef]:
    return registry.all()


def job(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    queue: str = constants.DEFAULT_QUEUE,
    inputs: IOSpec | list[str] | None = None,
    outputs: IOSpec | list[str] | None = None,
    namespace: str = constants.DEFAULT_NAMESPACE,
    project: str | None = None,
    hooks: list[Any] | None = None,
    presets: list[str] | None = None,
    trigger_on_finish: str | list[Any] | None = None,
    trigger_on: str | list[Any] | None = None,
    trigger_options: dict[str, Any] | None = None,
    alerts: list[Any] | None = None,
    approval: bool = False,
    **celery_options: Any,
) -> Any:
    """Register ``fn`` as a taskq job; returns the Celery task (``.delay`` still works).

    ``trigger_on_finish`` (job names) and ``trigger_on`` (event names, or
    ``{"name": ..., "parameters": {param: field}}``) start this job when those jobs succeed
    or those events are published; ``trigger_options`` takes ``mode`` ("all", the default,
    or "any") and ``reset`` (seconds or a cron string), as Metaflow's ``options``.
    ``alerts`` (``taskq.Alert``) raise ``alert_<level>`` when a logged metric crosses them.
    ``approval=True``: every run waits ``created``, unsent, until ``taskq runs approve``
    (or is ended by ``taskq runs invalidate``).
    """

    bound = bool(celery_options.pop("bind", False))

    def register(func: Callable[..., Any]) -> Any:
        jd = declare(func, name=name, queue=queue, inputs=inputs, outputs=outputs,
                     namespace=namespace, project=project, hooks=hooks, presets=presets,
                     trigger_on_finish=trigger_on_finish, trigger_on=trigger_on,
                     trigger_options=trigger_options, bound=bound, alerts=alerts,
                     approval=approval)
        return bind_job(jd, func, bound=bound, **celery_options)

    return register(fn) if fn is not None else register


def declare(func: Callable[..., Any], *, name: str | None, queue: str, inputs: Any,
            outputs: Any, namespace: str, project: Any, hooks: Any, presets: Any,
            trigger_on_finish: Any, trigger_on: Any, trigger_options: Any,
            bound: bool = False, alerts: Any = None, approval: Any = False) -> JobDef:
    """Every argument checked where it is written: a bad one raises :class:`JobError`
    naming the job and the field, so a typo never reaches the database."""
    job_name = name or getattr(func, "__name__", "")
    if not isinstance(job_name, str) or not NAME.match(job_name):
        raise JobError(f"job {job_name!r} name: malformed (letters, digits, '_', '.', '-')")
    try:
        parse_queue(queue, field=f"job {job_name!r} queue")
        validate_namespace(namespace)
    except (RoutingError, EventError) as exc:
        msg = str(exc)
        raise JobError(msg if msg.startswith("job ") else f"job {job_name!r} namespace: {msg}"
                       ) from None
    if project is not None and not isinstance(project, str):
        raise JobError(f"job {job_name!r} project: expected a string, got "
                       f"{type(project).__name__}")
    if isinstance(presets, str) or not all(isinstance(p, str) for p in presets or ()):
        raise JobError(f"job {job_name!r} presets: expected a list of preset names")
    if not isinstance(approval, bool):
        raise JobError(f"job {job_name!r} approval: must be true or false")
    if hooks is not None and not isinstance(hooks, list | tuple):
        raise JobError(f"job {job_name!r} hooks: expected a list of hooks")
    sig = signature.read(func, job=job_name, bound=bound,
                         explicit=normalise_io(inputs, "inputs", job_name, typed=False))
    declared_outputs = normalise_io(outputs, "outputs", job_name)
    if outputs is None and sig.returns is not None:
        declared_outputs = signature.outputs_of(sig.returns, job_name)
    return JobDef(name=job_name, queue=queue, namespace=namespace, project=project,
                  inputs=normalise_io(sig.inputs, "inputs", job_name),
                  outputs=declared_outputs,
                  description=(func.__doc__ or "").strip() or None,
                  hooks=tuple(_hook(h, job_name, i) for i, h in enumerate(hooks or [])),
                  presets=tuple(presets or ()),
                  triggers=_declared_triggers(job_name, namespace, trigger_on_finish,
                                              trigger_on, trigger_options),
                  hints=sig.hints, accepts_extra=sig.accepts_extra,
                  returns=sig.returns if outputs is None else None,
                  alerts=_alerts(alerts, job_name), approval=approval)


def _alerts(value: Any, job: str) -> tuple[Alert, ...]:
    try:
        return check_alerts(value)
    except ValueError as exc:
        raise JobError(f"job {job!r} {exc}") from None


def _hook(value: Any, job: str, index: int) -> Any:
    """Validate the spec at import time, so a typo fails where it is written."""
    if isinstance(value, Hook):
        return value
    try:
        return Hook.model_validate(value)
    except PydanticError as exc:
        raise JobError(f"job {job!r} {first_error(exc, f'hooks[{index}]')}") from None


def _declared_triggers(job: str, namespace: str, on_finish: Any, on: Any,
                       options: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate at import time, so a typo fails where it is written."""
    if on_finish is None and on is None:
        if options:
            raise JobError(f"job {job!r} trigger_options: given without trigger_on_finish "
                           "or trigger_on")
        return None
    try:
        return chaining.declared(namespace, on_finish, on, options or {})
    except ValueError as exc:
        raise JobError(f"job {job!r} {exc}") from None


def bind_job(jd: JobDef, func: Callable[..., Any], *, bound: bool = False,
             **celery_options: Any) -> Any:
    """Make ``func`` the Celery task that runs ``jd`` and add it to the registry."""
    registry.add(jd)
    job_name, namespace = jd.name, jd.namespace
    context_only = jd.context_only()

    @functools.wraps(func)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        req = self.request
        if getattr(req, "taskq_claim_failed", False):
            # The start could not be recorded (database unreachable): never run unclaimed;
            # put the message back and try again shortly.
            time.sleep(1.0)
            raise Reject("taskq could not record the run's start; requeued", requeue=True)
        if getattr(req, "taskq_skip", False):
            return None  # a redelivered message for an attempt that already started
        ctx = RunContext(uuid=req.id, job=job_name, params=dict(kwargs), namespace=namespace,
                         attempt=int(req.retries or 0) + 1, alerts=jd.alerts)
        # Params arrive checked and as JSON (task_prerun); structured ones become the
        # objects the function's annotations ask for.
        call = {k: v for k, v in kwargs.items() if k not in context_only}
        if jd.hints:
            call = jd.validator.validate(call, job=job_name, check_required=False,
                                         objects=True)
        with activate(ctx):
            result = func(self, *args, **call) if bound else func(*args, **call)
            if jd.returns is not None and result is not None:
                for key, value in signature.returned_outputs(jd.returns, result).items():
                    ctx.outputs.setdefault(key, value)
            return result

    # A killed child fails the run (task_failure in the MainProcess) rather than requeueing
    # it: re-running half a training job silently is worse than a recorded failure.
    options = {"acks_late": True, "reject_on_worker_lost": False, **celery_options}
    task = get_app().task(name=jd.task_name, bind=True, queue=jd.queue, **options)(run)
    task.taskq_job = jd
    return task


def builtin(name: str, **celery_options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@builtin("webhook")``: bind one of :data:`BUILTIN_JOBS` to its function."""
    def register(func: Callable[..., Any]) -> Any:
        return bind_job(BUILTIN_JOBS[name], func, **celery_options)

    return register
