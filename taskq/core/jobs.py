"""Jobs as data: the job spec, input/output declarations and params checking. Pure.

A job template is what a worker stores for each ``@taskq.job``; everything that checks params
against it (submit, triggers, hooks, pipelines, the start claim) goes through
:func:`validate_params` and :func:`validate_inputs`, and every default comes from
:func:`input_defaults`, so there is one meaning of "valid params" in the house.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from taskq import constants
from taskq.errors import JobError

#: Input/output declarations: name -> type name ("str", "int", "float", "bool", "dict",
#: "list", "any") or {"type": ..., "default": ..., "required": bool}.
IOSpec = dict[str, Any]
_TYPES = {"str", "int", "float", "bool", "dict", "list", "any"}


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
        return input_defaults(self.inputs)


#: taskq's own jobs: notifiers that hooks name, ClearML's function call and scheduler loop.
#: Declared here as data so any process can store their templates; the worker binds the
#: functions that run them (``taskq.worker.builtin_jobs``).
BUILTIN_JOBS: dict[str, JobDef] = {jd.name: jd for jd in (
    JobDef(name="webhook", queue=constants.SERVICES_QUEUE, namespace=constants.DEFAULT_NAMESPACE,
           project=None, inputs={"connection": {"type": "str"}},
           description="POST the main run's summary as JSON, signed with the connection's "
                       "secret."),
    JobDef(name="slack", queue=constants.SERVICES_QUEUE, namespace=constants.DEFAULT_NAMESPACE,
           project=None, inputs={"connection": {"type": "str"}},
           description="Post to a Slack incoming webhook: a one-line text plus a small "
                       "block layout."),
    JobDef(name=constants.FUNCTION_JOB, queue=constants.SERVICES_QUEUE,
           namespace=constants.DEFAULT_NAMESPACE, project=None,
           inputs={"function": {"type": "str", "required": True},
                   "entity_id": {"type": "str", "required": True},
                   "family": {"type": "str", "default": None}},
           description="Call ``function(entity_id)`` (ClearML's schedule_function "
                       "interface)."),
    JobDef(name=constants.SCHEDULER_JOB, queue=constants.SERVICES_QUEUE,
           namespace=constants.DEFAULT_NAMESPACE, project=None,
           inputs={"seconds": {"type": "float", "default": 0.0}},
           description="Poll models, datasets and runs as they come due (``taskq runs "
                       "stop`` ends it)."),
)}


class JobRegistry:
    """The jobs one process has declared, by name (``@taskq.job`` adds to the default one).

    An object, not a module-level dict, so a test or a second app can hold its own."""

    def __init__(self, jobs: Iterable[JobDef] = ()) -> None:
        self._jobs: dict[str, JobDef] = {jd.name: jd for jd in jobs}

    def add(self, job: JobDef) -> None:
        self._jobs[job.name] = job

    def remove(self, name: str) -> None:
        self._jobs.pop(name, None)

    def get(self, name: str) -> JobDef | None:
        return self._jobs.get(name)

    def all(self) -> dict[str, JobDef]:
        return dict(self._jobs)

    def __iter__(self) -> Iterator[JobDef]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)


def input_defaults(inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The declared defaults of a job's inputs: the one place params start from."""
    return {k: v["default"] for k, v in (inputs or {}).items()
            if isinstance(v, dict) and "default" in v}


def normalise_io(spec: IOSpec | list[str] | None, what: str, job: str) -> IOSpec:
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


def validate_inputs(declared: Mapping[str, Any], params: dict[str, Any], *,
                    job: str, check_required: bool = True) -> dict[str, Any]:
    """Params must be ``declared`` inputs of the target job (else mark them context-only)
    and coerce to their types; required inputs must be given."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise JobError(f"params.{unknown[0]}: job {job!r} has no input {unknown[0]!r} "
                       f"(declare it, or mark the param contextOnly)")
    return validate_params(dict(declared), params, job=job, check_required=check_required)
