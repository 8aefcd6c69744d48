"""Checking and storing model, dataset and run triggers: everything ClearML accepts and then
gets wrong silently is refused here with the field and the reason."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from pydantic import ValidationError as PydanticError

from taskq import constants
from taskq.core import routing
from taskq.core.stored import StoredTrigger
from taskq.core.triggers.entity_params import OVERRIDE_FIELDS, check_refs, param_name
from taskq.core.triggers.entity_spec import FAMILY_BY_KIND, EntitySpec, map_statuses
from taskq.core.watched import Family, check_tags
from taskq.errors import AlreadyExists, RoutingError, ValidationError, first_error
from taskq.ports import Context
from taskq.services import catalog, unmatched

_SIGNS = {"max": "max", "maximum": "max", "min": "min", "minimum": "min"}
#: Spec fields as the caller spelled them (ClearML's parameter names).
_CLEARML_NAMES = {"name_pattern": "trigger_name", "project": "trigger_project",
                  "on_publish": "trigger_on_publish", "on_archive": "trigger_on_archive",
                  "on_tags": "trigger_on_tags", "required_tags": "trigger_required_tags",
                  "on_status": "trigger_on_status", "exclude_dev": "trigger_exclude_dev_tasks",
                  "metric": "trigger_on_metric", "variant": "trigger_on_variant",
                  "threshold": "trigger_on_threshold", "sign": "trigger_on_sign",
                  "judge": "trigger_on_metric_value"}


def function_path(fn: Any) -> str:
    """A callable or ``"pkg.mod:fn"``. An importable one is called by a worker; one
    defined in the scheduler script (``__main__:fn``) by ``TriggerScheduler.start()`` in
    that script's process, as ClearML calls every schedule_function."""
    if isinstance(fn, str):
        module, sep, qualname = fn.partition(":")
        if not sep or not module or not qualname or " " in fn:
            raise ValidationError(f"schedule_function: {fn!r} is not 'package.module:function'")
        return fn
    if callable(fn):
        qualname = getattr(fn, "__qualname__", "")
        module = getattr(fn, "__module__", "")
        if not module or not qualname or "<" in qualname:
            raise ValidationError(
                f"schedule_function: {fn!r} has no name to be found by (a lambda or a nested "
                "function); define it at the top of a module, or of the scheduler script")
        return f"{module}:{qualname}"
    raise ValidationError("schedule_function: a function or 'package.module:function'")


def _target(rt: Context, ns: str, task: Any, function: Any
            ) -> tuple[str, str, str | None, str | None]:
    """(target kind, job name, source run uuid, function path)."""
    if (task is None) == (function is None):
        raise ValidationError("schedule_task_id / schedule_function: give exactly one (a job "
                              "or run to clone, or a function to call)")
    if function is not None:
        path = function_path(function)
        catalog.template(rt, constants.FUNCTION_JOB, ns)
        return "function", constants.FUNCTION_JOB, None, path
    task = getattr(task, "uuid", None) or getattr(getattr(task, "taskq_job", None), "name",
                                                   None) or task
    if not isinstance(task, str) or not task:
        raise ValidationError("schedule_task_id: a job name or a run uuid")
    try:
        run_uuid: str | None = str(uuid.UUID(task))
    except ValueError:
        run_uuid = None
    run = rt.store.get_run(run_uuid) if run_uuid else None
    if run is not None:
        if run.namespace != ns:
            raise ValidationError(f"schedule_task_id: run {run_uuid} is in namespace "
                                  f"{run.namespace!r}, not {ns!r}")
        catalog.template(rt, run.job, ns)
        return "run", run.job, run_uuid, None
    try:
        catalog.template(rt, task, ns)
    except ValidationError as exc:
        raise ValidationError(f"schedule_task_id: no run {task!r}, and {exc}") from None
    return "job", task, None, None


def _mapping(value: Any, field: str, family: Family) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ValidationError(f"{field}: a mapping of names to values")
    try:
        check_refs(value, family, field)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    return dict(value)


def _overrides(value: Any, family: Family) -> dict[str, Any]:
    out = _mapping(value, "task_overrides", family)
    for key, item in out.items():
        if param_name(key) != key:
            continue  # Args/x, General/x, params.x: a param
        if key not in OVERRIDE_FIELDS:
            raise ValidationError(
                f"task_overrides.{key}: a taskq run has no such field (allowed: "
                f"{', '.join(OVERRIDE_FIELDS)}, and params as 'Args/<name>')")
        if key == "tags":
            out[key] = check_tags(item, "task_overrides.tags")
        elif not isinstance(item, str):
            raise ValidationError(f"task_overrides.{key}: must be a string")
    return out


def add_entity_trigger(rt: Context, kind: str, *, name: str | None,
                       namespace: str | None, schedule_task_id: Any,
                       schedule_function: Any, schedule_queue: str | None,
                       trigger_project: str | None, add_tag: bool | str | None,
                       task_parameters: Any, task_overrides: Any, reuse_task: bool,
                       single_instance: bool, target_project: str | None,
                       **filters: Any) -> StoredTrigger:
    family = FAMILY_BY_KIND[kind]
    ns = catalog.check_namespace(rt, namespace)
    target, job, source_run, function = _target(rt, ns, schedule_task_id,
                                                schedule_function)
    if schedule_queue is not None:
        try:
            routing.parse_queue(schedule_queue, field="schedule_queue",
                                agents=rt.settings.agents)
        except RoutingError as exc:
            raise ValidationError(str(exc)) from None
    if reuse_task and target != "run":
        raise ValidationError("reuse_task: schedule_task_id must name a run to re-enqueue "
                              f"(got {'a function' if function else f'job {job!r}'})")
    if reuse_task and (task_parameters or task_overrides):
        raise ValidationError("task_parameters / task_overrides: not available with "
                              "reuse_task (the same run is re-enqueued as it is)")
    name = _name(name, kind, source_run or function or job)
    tag = (name if add_tag is True else None if not add_tag
           else check_tags(add_tag, "add_tag")[0])
    sign = filters.pop("sign", None)
    if sign is not None and sign not in _SIGNS:
        raise ValidationError(f"trigger_on_sign: {sign!r} is not max/maximum or min/minimum")
    threshold = filters.get("threshold")
    if threshold is not None and (isinstance(threshold, bool)
                                  or not isinstance(threshold, int | float)):
        raise ValidationError(f"trigger_on_threshold: a number, got {threshold!r}")
    for field in ("on_tags", "required_tags"):
        filters[field] = tuple(check_tags(filters.get(field) or [], f"trigger_{field}"))
    if "on_status" in filters:
        try:
            filters["on_status"] = map_statuses(filters["on_status"])
        except ValueError as exc:
            raise ValidationError(f"trigger_on_status: {exc}") from None
    try:
        spec = EntitySpec(
            family=family, project=trigger_project, target=target,  # type: ignore[arg-type]
            source_run=source_run, function=function, target_project=target_project,
            add_tag=tag, single_instance=bool(single_instance), reuse_task=bool(reuse_task),
            task_parameters=_mapping(task_parameters, "task_parameters", family),
            task_overrides=_overrides(task_overrides, family),
            **({"sign": _SIGNS[sign]} if sign else {}),
            **{k: v for k, v in filters.items() if v is not None})
    except PydanticError as exc:
        raise ValidationError(first_error(exc, locate=lambda loc: ".".join(
            _CLEARML_NAMES.get(str(p), str(p)) for p in loc))) from None
    row = _store(rt, name, ns, kind, spec.model_dump(mode="json"), job, schedule_queue)
    # A project (or name) that matches nothing yet is matched by name once it appears:
    # said, never refused, never widened to every project (ClearML's unknown project).
    unmatched.notice(rt, row)
    return row


def _name(name: str | None, kind: str, target: str) -> str:
    if name is None:
        name = f"{kind}.{target}"
        if len(name) > 128:
            name = f"{kind}.{hashlib.sha256(target.encode()).hexdigest()[:16]}"
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise ValidationError("name: must be a non-empty string of at most 128 characters")
    return name


def _store(rt: Context, name: str, ns: str, kind: str, spec: dict[str, Any], job: str,
           queue: str | None) -> StoredTrigger:
    """Names are unique: the same trigger added again is a no-op (a restarted scheduler
    script); a different one under a taken name is refused."""
    store = rt.store
    existing = store.get_trigger(name, ns)
    if existing is not None:
        if (existing.kind, existing.spec, existing.job, existing.queue) == (
                kind, spec, job, queue):
            return existing
        raise ValidationError(f"name: a different trigger named {name!r} exists in namespace "
                              f"{ns!r}; trigger names are unique (delete it first, or give "
                              "this one another name)")
    try:
        row = store.add_trigger(name=name, namespace=ns, kind=kind, spec=spec, job=job,
                                params={}, queue=queue)
    except AlreadyExists as exc:
        raise ValidationError(str(exc)) from None
    rt.coord.bump_triggers()
    return row

