"""Checking and storing hooks: everything refused here is refused before anything runs.

Kept apart from the client so the client stays a thin API; all functions take the Client
whose settings and store they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticError

from taskq import routing
from taskq.client import ValidationError, _first_error
from taskq.hooks import Hook, apply_presets, split_params
from taskq.jobs import JobError
from taskq.store.manager import AlreadyExists
from taskq.templating import TemplateFailure, check_params

if TYPE_CHECKING:
    from taskq.client import Client


def check_hook(client: Client, hook: Hook | dict[str, Any], namespace: str,
               attached_job: str | None = None) -> Hook:
    """Validate a hook against configuration and the target job; returns it with presets
    applied (the target template's first, then the hook's own)."""
    from taskq.dispatch import validate_inputs

    try:
        spec = hook if isinstance(hook, Hook) else Hook.model_validate(hook)
    except PydanticError as exc:
        raise ValidationError(_first_error("hook", exc)) from None
    settings = client.settings
    if spec.connection is not None and spec.connection not in settings.connections:
        known = ", ".join(sorted(settings.connections)) or "none configured"
        raise ValidationError(f"hook.connection: undefined connection {spec.connection!r} "
                              f"(known: {known})")
    target = client._template(spec.hub_ref, namespace)
    try:
        combined = spec.model_copy(update={"presets": (*target.get("presets", ()),
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
        except routing.RoutingError as exc:
            raise ValidationError(str(exc)) from None
    if attached_job is not None:
        _refuse_cycles(client, attached_job, spec.hub_ref, namespace)
    inputs, _ = split_params(spec.params)
    templated = {k for k, v in inputs.items()
                 if isinstance(v, str) and ("{{" in v or "{%" in v)}
    declared = target.get("inputs") or {}
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
        validate_inputs({"inputs": declared}, {k: None for k in inputs}, job=spec.hub_ref,
                        check_required=False)
        validate_inputs({"inputs": declared},
                        {k: v for k, v in inputs.items() if k not in templated},
                        job=spec.hub_ref, check_required=False)
    except (TemplateFailure, JobError) as exc:
        raise ValidationError(f"hook.{exc}") from None
    return spec


def _refuse_cycles(client: Client, job: str, target: str, namespace: str) -> None:
    """A job-level hook whose chain of hooks leads back to its own job would start runs
    without end: refused."""
    edges: dict[str, set[str]] = {}
    for t in client.rt.store.list_triggers(namespace):
        ref = str((t["spec"] or {}).get("ref", ""))
        if t["kind"] == "hook" and ref.startswith("jobs."):
            edges.setdefault(ref[len("jobs."):], set()).add(t["job"])
    seen, stack = set(), [target]
    while stack:
        current = stack.pop()
        if current == job:
            raise ValidationError(f"hook.hubRef: {target!r} leads back to {job!r} through "
                                  "hooks; a job's hooks may not start that job again")
        if current not in seen:
            seen.add(current)
            stack.extend(edges.get(current, ()))


def register_hook(client: Client, ref: str, namespace: str, hook: Hook, *, name: str,
                  replace: bool = True) -> dict[str, Any]:
    if len(name) > 128:
        raise ValidationError("name: a hook name is at most 128 characters")
    store = client.rt.store
    existing = store.get_trigger(name, namespace)
    spec = {"ref": ref, "hook": hook.spec()}
    if existing is not None and not replace and existing["spec"] != spec:
        raise ValidationError(f"name: a different hook named {name!r} exists; give this one "
                              "a `name` of its own, or delete the old one")
    try:
        store.upsert_trigger(name=name, namespace=namespace, kind="hook", spec=spec,
                             job=hook.hub_ref, params=hook.params, queue=hook.queue)
    except AlreadyExists as exc:
        raise ValidationError(str(exc)) from None
    client._bump()
    row = store.get_trigger(name, namespace)
    assert row is not None
    return row


def set_job_hooks(client: Client, job: str, hooks: list[Hook | dict[str, Any]],
                  namespace: str) -> None:
    """Store a job's declared hooks as ``<job>.hooks.<i>``, and remove declared hooks it no
    longer has (only those: hooks added by name or from YAML are left alone)."""
    prefix = f"{job}.hooks."
    wanted = {f"{prefix}{i}": check_hook(client, h, namespace, attached_job=job)
              for i, h in enumerate(hooks)}
    for name, hook in wanted.items():
        register_hook(client, f"jobs.{job}", namespace, hook, name=name)
    for t in client.rt.store.list_triggers(namespace):
        if (t["kind"] == "hook" and t["name"].startswith(prefix) and t["name"] not in wanted
                and (t["spec"] or {}).get("ref") == f"jobs.{job}"):
            client.rt.store.delete_trigger(t["name"], namespace)
            client._bump()
