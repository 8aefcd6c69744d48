"""Checking and storing hooks and chaining triggers: everything refused here is refused
before anything runs.

Every function takes the context (settings and ports) whose store it writes; job
templates are synced here too, because a job's declared hooks and triggers are stored
with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError as PydanticError

from taskq.core import routing
from taskq.core.jobs import validate_inputs
from taskq.core.revisions import changes_by
from taskq.core.stored import StoredTrigger
from taskq.core.templating import check_params
from taskq.core.triggers import chaining
from taskq.core.triggers.hook import Hook, apply_presets, split_params
from taskq.errors import (
    AlreadyExists,
    JobError,
    RoutingError,
    TaskqError,
    TemplateFailure,
    ValidationError,
    first_error,
)
from taskq.ports import Context
from taskq.services import catalog, unmatched

log = logging.getLogger(__name__)


def check_hook(rt: Context, hook: Hook | dict[str, Any], namespace: str,
               attached_job: str | None = None) -> Hook:
    """Validate a hook against configuration and the target job; returns it with presets
    applied (the target template's first, then the hook's own)."""
    try:
        spec = hook if isinstance(hook, Hook) else Hook.model_validate(hook)
    except PydanticError as exc:
        raise ValidationError(first_error(exc, "hook")) from None
    settings = rt.settings
    if spec.connection is not None and spec.connection not in settings.connections:
        known = ", ".join(sorted(settings.connections)) or "none configured"
        raise ValidationError(f"hook.connection: undefined connection {spec.connection!r} "
                              f"(known: {known})")
    target = catalog.template(rt, spec.hub_ref, namespace)
    try:
        combined = spec.model_copy(update={"presets": (*target.presets,
                                                       *spec.presets)})
        spec = apply_presets(combined, settings.presets)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if spec.namespace is not None and spec.namespace != namespace:
        raise ValidationError(f"hook.namespace: {spec.namespace!r} differs from the namespace "
                              f"of what it is attached to ({namespace!r}); a hook never "
                              "crosses namespaces")
    if spec.queue is not None:
        try:
            routing.parse_queue(spec.queue, field="hook.queue", agents=settings.agents)
        except RoutingError as exc:
            raise ValidationError(str(exc)) from None
    if attached_job is not None:
        _refuse_cycles(rt, attached_job, spec.hub_ref, namespace)
    inputs, _ = split_params(spec.params)
    templated = {k for k, v in inputs.items()
                 if isinstance(v, str) and ("{{" in v or "{%" in v)}
    declared = target.inputs
    missing = [n for n, d in declared.items()
               if d.get("required") and "default" not in d and n not in inputs]
    containers = [k for k in templated if (declared.get(k) or {}).get("type") in ("dict", "list")]
    try:
        check_params(inputs)
        if missing:
            raise JobError(f"params.{missing[0]}: job {spec.hub_ref!r} requires it")
        if containers:
            raise JobError(f"params.{containers[0]}: a template renders a string, but "
                           f"{spec.hub_ref!r} declares it a {declared[containers[0]]['type']}")
        validate_inputs(declared, {k: None for k in inputs}, job=spec.hub_ref,
                        check_required=False)
        validate_inputs(declared,
                        {k: v for k, v in inputs.items() if k not in templated},
                        job=spec.hub_ref, check_required=False)
    except (TemplateFailure, JobError) as exc:
        raise ValidationError(f"hook.{exc}") from None
    return spec


def _refuse_cycles(rt: Context, job: str, target: str, namespace: str) -> None:
    """A job-level hook whose chain of hooks leads back to its own job would start runs
    without end: refused."""
    edges = _job_edges(rt, namespace)
    seen, stack = set(), [target]
    while stack:
        current = stack.pop()
        if current == job:
            raise ValidationError(f"hook.hubRef: {target!r} leads back to {job!r} through "
                                  "hooks; a job's hooks may not start that job again")
        if current not in seen:
            seen.add(current)
            stack.extend(edges.get(current, ()))


def _job_edges(rt: Context, namespace: str) -> dict[str, set[str]]:
    """Which job starts which, through job hooks and finish triggers of one namespace."""
    edges: dict[str, set[str]] = {}
    for t in rt.store.list_triggers(namespace):
        try:
            spec = t.spec or {}
            ref = str(spec.get("ref", ""))
            if t.kind == "hook" and ref.startswith("jobs."):
                edges.setdefault(ref[len("jobs."):], set()).add(t.job)
            if t.kind in (chaining.FINISH, chaining.JOIN):
                for i in spec.get("inputs", []):
                    if i.get("namespace") == namespace and str(i.get("ref")).startswith("jobs."):
                        edges.setdefault(i["ref"][len("jobs."):], set()).add(t.job)
        except _DECLARATION_ERRORS:  # a malformed stored row: the evaluator skips it too
            log.warning("taskq: trigger %r has a malformed spec; ignored", t.name)
    return edges


def register_hook(rt: Context, ref: str, namespace: str, hook: Hook, *, name: str,
                  replace: bool = True) -> StoredTrigger:
    if len(name) > 128:
        raise ValidationError("name: a hook name is at most 128 characters")
    catalog.check_run_ref(rt, ref, namespace, "ref")
    store = rt.store
    existing = store.get_trigger(name, namespace)
    spec = {"ref": ref, "hook": hook.spec()}
    if existing is not None and not replace and existing.spec != spec:
        raise ValidationError(f"name: a different hook named {name!r} exists; give this one "
                              "a `name` of its own, or delete the old one")
    try:
        store.upsert_trigger(name=name, namespace=namespace, kind="hook", spec=spec,
                             job=hook.hub_ref, params=hook.params, queue=hook.queue)
    except AlreadyExists as exc:
        raise ValidationError(str(exc)) from None
    row = _changed(rt, name, namespace)
    unmatched.notice(rt, row)
    return row


def set_job_hooks(rt: Context, job: str, hooks: list[Hook | dict[str, Any]],
                  namespace: str) -> None:
    """Store a job's declared hooks as ``<job>.hooks.<i>``, and remove declared hooks it no
    longer has (only those: hooks added by name or from YAML are left alone)."""
    prefix = f"{job}.hooks."
    wanted = {f"{prefix}{i}": check_hook(rt, h, namespace, attached_job=job)
              for i, h in enumerate(hooks)}
    for name, hook in wanted.items():
        register_hook(rt, f"jobs.{job}", namespace, hook, name=name)
    for t in rt.store.list_triggers(namespace):
        if (t.kind == "hook" and t.name.startswith(prefix) and t.name not in wanted
                and t.spec.get("ref") == f"jobs.{job}"):
            rt.store.delete_trigger(t.name, namespace)
            rt.coord.bump_triggers()


def add_chaining_trigger(rt: Context, *, name: str, job: str, on_finish: Any = None,
                         on: Any = None, mode: str = "all", reset: Any = None,
                         params: dict[str, Any] | None = None, queue: str | None = None,
                         namespace: str | None = None, replace: bool = False
                         ) -> StoredTrigger:
    """Check and store a finish / event trigger (Metaflow's @trigger_on_finish and
    @trigger); with ``replace`` an existing one of the same name is updated in place."""
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise ValidationError("name: must be a non-empty string of at most 128 characters")
    ns = catalog.check_namespace(rt, namespace)
    try:
        upstream, events, mode, reset = chaining.parse(ns, on_finish, on, mode, reset)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    allowed = rt.settings.watch_namespaces.get(ns, [])
    for u in upstream:
        if u.namespace not in (None, ns) and u.namespace not in allowed:
            raise ValidationError(
                f"trigger_on_finish: namespace {ns!r} may not watch runs of {u.namespace!r} "
                f"(allow it in watch_namespaces: {{{ns!r}: [{u.namespace!r}]}})")
    target = catalog.template(rt, job, ns)
    try:
        kind, spec = chaining.build_spec(ns, upstream, events, mode=mode, reset=reset)
    except PydanticError as exc:
        raise ValidationError(first_error(exc)) from None
    if any(u.job == job and u.namespace in (None, ns) for u in upstream):
        raise ValidationError(f"trigger_on_finish: {job!r} may not start itself when it "
                              "finishes (it would run without end)")
    for u in upstream:
        if u.namespace in (None, ns):
            _refuse_cycles(rt, u.job, job, ns)
    try:
        chaining.check_mapping(spec, target.inputs, job)
        check_params(params or {})
        if queue is not None:
            routing.parse_queue(queue, agents=rt.settings.agents)
    except (JobError, TemplateFailure, RoutingError) as exc:
        raise ValidationError(str(exc)) from None
    store = rt.store
    body: dict[str, Any] = dict(name=name, namespace=ns, kind=kind,
                                spec=spec.model_dump(mode="json"), job=job,
                                params=params or {}, queue=queue)
    try:
        if replace:
            store.upsert_trigger(**body)
        else:
            store.add_trigger(**body)
    except AlreadyExists as exc:
        raise ValidationError(str(exc)) from None
    row = _changed(rt, name, ns)
    unmatched.notice(rt, row)
    return row


def _changed(rt: Context, name: str, namespace: str) -> StoredTrigger:
    """Tell every evaluator to reload, and answer with the trigger as stored."""
    rt.coord.bump_triggers()
    row = rt.store.get_trigger(name, namespace)
    if row is None:
        raise ValidationError(f"name: trigger {name!r} was deleted while it was saved")
    return row


def set_job_triggers(rt: Context, job: str, declared: dict[str, Any] | None,
                     namespace: str) -> None:
    """The trigger a job declares in code (``<job>.trigger``), kept in step."""
    name = f"{job}.trigger"
    if declared is None:
        existing = rt.store.get_trigger(name, namespace)
        if existing is not None and existing.kind in (chaining.FINISH, chaining.EVENTS,
                                                         chaining.JOIN):
            rt.store.delete_trigger(name, namespace)
            rt.coord.bump_triggers()
        return
    add_chaining_trigger(rt, name=name, job=job, on_finish=declared["upstream"] or None,
                         on=declared["events"] or None, mode=declared["mode"],
                         reset=declared["reset"], namespace=namespace, replace=True)


def sync_job_templates(rt: Context) -> int:
    """Store the templates of every job this process has declared (upsert by name), then
    the hooks and triggers declared with them. One job's bad declaration is logged with its
    reason and never blocks the others: a worker still serves every job it can."""
    jobs = rt.jobs.all()
    stored = []
    for jd in jobs.values():
        if _quietly(f"template of job {jd.name!r}", rt.store.upsert_job_template,
                    name=jd.name, namespace=jd.namespace, queue=jd.queue,
                    task_name=jd.task_name, inputs=jd.inputs, outputs=jd.outputs,
                    project=jd.project, description=jd.description, presets=jd.presets,
                    approval=jd.approval):
            stored.append(jd)
    with catalog.syncing(), changes_by("code"):
        for jd in stored:
            _quietly(f"hooks of job {jd.name!r}", set_job_hooks, rt, jd.name, list(jd.hooks),
                     jd.namespace)
            _quietly(f"trigger of job {jd.name!r}", set_job_triggers, rt, jd.name,
                     jd.triggers, jd.namespace)
    return len(stored)


#: What a bad declaration or a malformed stored row raises (pydantic's errors are
#: ValueErrors); a database or Redis outage raises none of these.
_DECLARATION_ERRORS = (TaskqError, ValueError, TypeError, KeyError, AttributeError)


def _quietly(what: str, store: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Run one step of a sync; a refusal (or any error of that one declaration) is logged
    with its reason instead of stopping the sync."""
    try:
        store(*args, **kwargs)
    except _DECLARATION_ERRORS as exc:  # the store or Redis being down still raises
        reason = first_error(exc) if isinstance(exc, PydanticError) else str(exc)
        log.error("taskq: %s not stored: %s", what, reason or type(exc).__name__)
        return False
    return True
