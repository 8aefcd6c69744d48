"""``@taskq.job``: a function becomes a Celery task plus a stored job template.

The Celery task id of a run is the run's uuid, so Flower, Celery's result APIs and taskq's
tables all name a run the same way.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import Reject

from taskq import constants
from taskq.context import RunContext, activate
from taskq.events import validate_namespace

#: Input/output declarations: name -> type name ("str", "int", "float", "bool", "dict",
#: "list", "any") or {"type": ..., "default": ..., "required": bool}.
IOSpec = dict[str, Any]
_TYPES = {"str", "int", "float", "bool", "dict", "list", "any"}


class JobError(ValueError):
    pass


@dataclass(frozen=True)
class JobDef:
    name: str
    queue: str
    namespace: str
    project: str | None
    inputs: IOSpec = field(default_factory=dict)
    outputs: IOSpec = field(default_factory=dict)
    description: str | None = None
    #: Hooks run after every run of this job (stored when a worker or client syncs jobs).
    hooks: tuple[Any, ...] = ()
    #: Preset names applied to any hook that runs this job, before the hook's own presets.
    presets: tuple[str, ...] = ()
    #: ``trigger_on_finish`` / ``trigger_on`` as declared (checked at import; stored as the
    #: trigger ``<job>.trigger`` whenever a worker or client syncs its jobs).
    triggers: dict[str, Any] | None = None

    @property
    def task_name(self) -> str:
        return constants.job_task_name(self.name)

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.inputs.items()
                if isinstance(v, dict) and "default" in v}


_registry: dict[str, JobDef] = {}


def registered_jobs() -> dict[str, JobDef]:
    return dict(_registry)


def _normalise_io(spec: IOSpec | list[str] | None, what: str, job: str) -> IOSpec:
    if spec is None:
        return {}
    if isinstance(spec, list):
        spec = {name: "any" for name in spec}
    out: IOSpec = {}
    for name, decl in spec.items():
        entry = {"type": decl} if isinstance(decl, str) else dict(decl)
        if entry.get("type", "any") not in _TYPES:
            raise JobError(f"job {job!r}: {what}.{name}.type {entry.get('type')!r} is not one "
                           f"of {sorted(_TYPES)}")
        entry.setdefault("type", "any")
        out[name] = entry
    return out


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
    **celery_options: Any,
) -> Any:
    """Register ``fn`` as a taskq job; returns the Celery task (``.delay`` still works).

    ``trigger_on_finish`` (job names) and ``trigger_on`` (event names, or
    ``{"name": ..., "parameters": {param: field}}``) start this job when those jobs succeed
    or those events are published; ``trigger_options`` takes ``mode`` ("all", the default,
    or "any") and ``reset`` (seconds or a cron string), as Metaflow's ``options``.
    """

    def register(func: Callable[..., Any]) -> Any:
        from taskq.app import app
        from taskq.routing import parse_queue

        job_name = name or func.__name__
        parse_queue(queue, field=f"job {job_name!r} queue")
        validate_namespace(namespace)
        jd = JobDef(name=job_name, queue=queue, namespace=namespace, project=project,
                    inputs=_normalise_io(inputs, "inputs", job_name),
                    outputs=_normalise_io(outputs, "outputs", job_name),
                    description=(func.__doc__ or "").strip() or None,
                    hooks=tuple(_hook(h, job_name, i) for i, h in enumerate(hooks or [])),
                    presets=tuple(presets or ()),
                    triggers=_declared_triggers(job_name, namespace, trigger_on_finish,
                                                trigger_on, trigger_options))
        _registry[job_name] = jd

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
            ctx = RunContext(uuid=req.id, job=job_name, params=dict(kwargs),
                             namespace=namespace)
            with activate(ctx):
                return func(*args, **kwargs)

        # A killed child fails the run (task_failure in the MainProcess) rather than requeueing
        # it: re-running half a training job silently is worse than a recorded failure.
        options = {"acks_late": True, "reject_on_worker_lost": False, **celery_options}
        task = app.task(name=jd.task_name, bind=True, queue=queue, **options)(run)
        task.taskq_job = jd
        return task

    return register(fn) if fn is not None else register


def _hook(value: Any, job: str, index: int) -> Any:
    """Validate the spec at import time, so a typo fails where it is written."""
    from pydantic import ValidationError

    from taskq.hooks import Hook

    if isinstance(value, Hook):
        return value
    try:
        return Hook.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise JobError(f"job {job!r} hooks[{index}].{loc}: {first['msg']}") from None


def _declared_triggers(job: str, namespace: str, on_finish: Any, on: Any,
                       options: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate at import time, so a typo fails where it is written."""
    if on_finish is None and on is None:
        if options:
            raise JobError(f"job {job!r} trigger_options: given without trigger_on_finish "
                           "or trigger_on")
        return None
    from taskq import chaining

    try:
        return chaining.declared(namespace, on_finish, on, options or {})
    except ValueError as exc:
        raise JobError(f"job {job!r} {exc}") from None


_COERCE: dict[str, Any] = {"str": str, "int": int, "float": float, "dict": dict, "list": list}


def _coerce(kind: str, value: Any, where: str) -> Any:
    if kind == "any" or value is None:
        return value
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise JobError(f"{where}: expected a str, got {type(value).__name__}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise JobError(f"{where}: expected a bool, got {value!r}")
    if kind in ("int", "float") and isinstance(value, bool):
        raise JobError(f"{where}: expected {kind}, got a bool")
    if kind == "int" and isinstance(value, float) and not value.is_integer():
        raise JobError(f"{where}: expected an int, got {value!r}")
    if kind in ("dict", "list") and not isinstance(value, _COERCE[kind]):
        raise JobError(f"{where}: expected a {kind}, got {type(value).__name__}")
    try:
        return _COERCE[kind](value)
    except (TypeError, ValueError):
        raise JobError(f"{where}: expected {kind}, got {value!r}") from None


def validate_params(inputs: IOSpec, params: dict[str, Any], *, job: str,
                    check_required: bool = True) -> dict[str, Any]:
    """Coerce declared inputs; a required input without a value is an error.

    Undeclared params pass through for now: a job may accept ``**kwargs``.
    """
    out = dict(params)
    for name, decl in inputs.items():
        where = f"job {job!r} params.{name}"
        required = check_required and decl.get("required") and "default" not in decl
        if name in out and not (required and out[name] is None):
            out[name] = _coerce(decl.get("type", "any"), out[name], where)
        elif required:
            raise JobError(f"{where}: required input is missing")
    return out
