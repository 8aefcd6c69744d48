"""Jobs as data: the job spec, input/output declarations and params checking. Pure.

A job template is what a worker stores for each ``@taskq.job``; everything that checks params
against it (submit, triggers, hooks, pipelines, the start claim) goes through
:func:`validate_params` and :func:`validate_inputs`, and every default comes from
:func:`input_defaults`, so there is one meaning of "valid params" in the house.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from taskq import constants
from taskq.core.params import TYPES, ParamsValidator, validator_for
from taskq.errors import JobError

#: Input/output declarations: name -> type name ("str", "int", "float", "bool", "dict",
#: "list", "any") or {"type": ..., "default": ..., "required": bool, "schema": {...},
#: "description": ..., "contextOnly": bool}. Read from the function's signature by
#: :mod:`taskq.core.signature`; always JSON, because it is stored.
IOSpec = dict[str, Any]


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
    #: The real annotations of structured inputs (never stored: the worker validates with
    #: them, so the function receives the enum member or model instance it asked for).
    hints: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: The function takes ``**kwargs``: params it does not declare are passed on.
    accepts_extra: bool = True
    #: A typed return (TypedDict, dataclass, pydantic model) whose fields are the outputs.
    returns: Any = field(default=None, compare=False, repr=False)
    #: ``taskq.Alert`` thresholds on the metrics the job logs (checked in the running job;
    #: never stored: they belong to the code that logs the metric).
    alerts: tuple[Any, ...] = ()
    #: Every run waits for ``taskq runs approve`` before it is queued.
    approval: bool = False

    @cached_property
    def validator(self) -> ParamsValidator:
        """Built once per job, with the function's own types."""
        return ParamsValidator(self.inputs, self.hints)

    def context_only(self) -> frozenset[str]:
        """Inputs the job reads from ``current.run.params``, never passed as arguments."""
        return frozenset(n for n, d in self.inputs.items()
                         if isinstance(d, dict) and d.get("contextOnly"))

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
           inputs={"seconds": {"type": "float", "default": 0.0},
                   "script": {"type": "str", "default": None},
                   "script_name": {"type": "str", "default": None}},
           description="Poll models, datasets and runs as they come due (``taskq runs "
                       "stop`` ends it); with a scheduler ``script``, run it here."),
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


_KEYS = frozenset({"type", "default", "required", "schema", "description", "contextOnly"})


def normalise_io(spec: IOSpec | list[str] | None, what: str, job: str, *,
                 typed: bool = True) -> IOSpec:
    """Declarations checked and spelt one way; ``typed=False`` leaves an absent type absent
    (an explicit ``inputs=`` entry only overrides what the signature says)."""
    if spec is None:
        return {}
    if isinstance(spec, list | tuple):  # names only: the signature (if any) gives the type
        spec = {name: "any" if typed else {} for name in spec}
    if not isinstance(spec, Mapping):
        raise JobError(f"job {job!r} {what}: expected a mapping of names to declarations, "
                       f"got {type(spec).__name__}")
    out: IOSpec = {}
    for name, decl in spec.items():
        where = f"job {job!r} {what}.{name}"
        if not isinstance(decl, str | Mapping):
            raise JobError(f"{where}: expected a type name or a mapping, got "
                           f"{type(decl).__name__}")
        entry = {"type": decl} if isinstance(decl, str) else dict(decl)
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise JobError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(_KEYS))})")
        if entry.get("type", "any") not in TYPES:
            raise JobError(f"{where}.type: {entry.get('type')!r} is not one of {sorted(TYPES)}")
        if "schema" in entry and not isinstance(entry["schema"], dict):
            raise JobError(f"{where}.schema: must be a JSON schema object")
        for flag in ("required", "contextOnly"):
            if flag in entry and not isinstance(entry[flag], bool):
                raise JobError(f"{where}.{flag}: must be true or false")
        if typed:
            entry.setdefault("type", "any")
        out[name] = entry
    return out


def validate_params(inputs: IOSpec, params: dict[str, Any], *, job: str,
                    check_required: bool = True) -> dict[str, Any]:
    """Coerce declared inputs; a required input without a value is an error.

    Undeclared params pass through: a job may accept ``**kwargs``.
    """
    return validator_for(inputs).validate(params, job=job, check_required=check_required)


def validate_inputs(declared: Mapping[str, Any], params: dict[str, Any], *,
                    job: str, check_required: bool = True) -> dict[str, Any]:
    """Params must be ``declared`` inputs of the target job (else mark them context-only)
    and coerce to their types; required inputs must be given."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise JobError(f"params.{unknown[0]}: job {job!r} has no input {unknown[0]!r} "
                       f"(declare it, or mark the param contextOnly)")
    return validate_params(dict(declared), params, job=job, check_required=check_required)
