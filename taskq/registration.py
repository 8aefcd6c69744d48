"""Checking and storing hooks and chaining triggers: everything refused here is refused
before anything runs.

Kept apart from the client so the client stays a thin API; all functions take the Client
whose settings and store they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticError

from taskq import chaining, routing
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
    edges = _job_edges(client, namespace)
    seen, stack = set(), [target]
    while stack:
        current = stack.pop()
        if current == job:
            raise ValidationError(f"hook.hubRef: {target!r} leads back to {job!r} through "
                                  "hooks; a job's hooks may not start that job again")
        if current not in seen:
            seen.add(current)
            stack.extend(edges.get(current, ()))


def _job_edges(client: Client, namespace: str) -> dict[str, set[str]]:
    """Which job starts which, through job hooks and finish triggers of one namespace."""
    edges: dict[str, set[str]] = {}
    for t in client.rt.store.list_triggers(namespace):
        spec = t["spec"] or {}
        ref = str(spec.get("ref", ""))
        if t["kind"] == "hook" and ref.startswith("jobs."):
            edges.setdefault(ref[len("jobs."):], set()).add(t["job"])
        if t["kind"] in (chaining.FINISH, chaining.JOIN):
            for i in spec.get("inputs", []):
                if i.get("namespace") == namespace and str(i.get("ref")).startswith("jobs."):
                    edges.setdefault(i["ref"][len("jobs."):], set()).add(t["job"])
    return edges


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


def add_chaining_trigger(client: Client, *, name: str, job: str, on_finish: Any = None,
                         on: Any = None, mode: str = "all", reset: Any = None,
                         params: dict[str, Any] | None = None, queue: str | None = None,
                         namespace: str | None = None, replace: bool = False
                         ) -> dict[str, Any]:
    """Check and store a finish / event trigger (Metaflow's @trigger_on_finish and
    @trigger); with ``replace`` an existing one of the same name is updated in place."""
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise ValidationError("name: must be a non-empty string of at most 128 characters")
    ns = client._namespace(namespace)
    try:
        upstream, events, mode, reset = chaining.parse(ns, on_finish, on, mode, reset)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    allowed = client.settings.watch_namespaces.get(ns, [])
    for u in upstream:
        if u.namespace not in (None, ns) and u.namespace not in allowed:
            raise ValidationError(
                f"trigger_on_finish: namespace {ns!r} may not watch runs of {u.namespace!r} "
                f"(allow it in watch_namespaces: {{{ns!r}: [{u.namespace!r}]}})")
    target = client._template(job, ns)
    kind, spec = chaining.build_spec(ns, upstream, events, mode=mode, reset=reset)
    if any(u.job == job and u.namespace in (None, ns) for u in upstream):
        raise ValidationError(f"trigger_on_finish: {job!r} may not start itself when it "
                              "finishes (it would run without end)")
    for u in upstream:
        if u.namespace in (None, ns):
            _refuse_cycles(client, u.job, job, ns)
    try:
        chaining.check_mapping(spec, target.get("inputs") or {}, job)
        check_params(params or {})
        if queue is not None:
            routing.parse_queue(queue, agents=client.settings.agents)
    except (JobError, TemplateFailure, routing.RoutingError) as exc:
        raise ValidationError(str(exc)) from None
    store = client.rt.store
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
    client._bump()
    row = store.get_trigger(name, ns)
    assert row is not None
    return row


def set_job_triggers(client: Client, job: str, declared: dict[str, Any] | None,
                     namespace: str) -> None:
    """The trigger a job declares in code (``<job>.trigger``), kept in step."""
    name = f"{job}.trigger"
    if declared is None:
        existing = client.rt.store.get_trigger(name, namespace)
        if existing is not None and existing["kind"] in (chaining.FINISH, chaining.EVENTS,
                                                         chaining.JOIN):
            client.rt.store.delete_trigger(name, namespace)
            client._bump()
        return
    add_chaining_trigger(client, name=name, job=job, on_finish=declared["upstream"] or None,
                         on=declared["events"] or None, mode=declared["mode"],
                         reset=declared["reset"], namespace=namespace, replace=True)
