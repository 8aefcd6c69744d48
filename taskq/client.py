"""The Python API. ``taskq.submit`` and friends use a default Client built from the
environment; ``taskq.Client(settings)`` is the same API with explicit configuration.
"""

from __future__ import annotations

import uuid
from typing import Any

from taskq import constants, routing
from taskq.events import EventError, validate_namespace
from taskq.hooks import Hook
from taskq.jobs import registered_jobs
from taskq.records import RunRecord, run_record
from taskq.rules import EventTrigger
from taskq.runtime import Runtime, get_runtime
from taskq.settings import Settings
from taskq.store.manager import OutboxItem
from taskq.templating import TemplateFailure, check_params


class ValidationError(ValueError):
    """Bad input from the caller; the message names the field and the reason."""


def sync_job_templates(rt: Runtime) -> int:
    """Store the templates of every job this process has imported (upsert by name), then
    the hooks declared with ``@taskq.job(hooks=[...])``."""
    jobs = registered_jobs()
    for jd in jobs.values():
        rt.store.upsert_job_template(
            name=jd.name, namespace=jd.namespace, queue=jd.queue, task_name=jd.task_name,
            inputs=jd.inputs, outputs=jd.outputs, project=jd.project,
            description=jd.description, presets=jd.presets)
    client = Client.__new__(Client)
    client.rt = rt
    for jd in jobs.values():
        if jd.hooks:
            client.set_job_hooks(jd.name, list(jd.hooks), namespace=jd.namespace)
    return len(jobs)


def _job_name(job: Any) -> str:
    jd = getattr(job, "taskq_job", None)
    if jd is not None:
        return str(jd.name)
    if isinstance(job, str) and job:
        return job
    raise ValidationError(f"job: expected a job name or a @taskq.job function, got {job!r}")


class Client:
    def __init__(self, settings: Settings | None = None) -> None:
        self.rt = Runtime(settings) if settings is not None else get_runtime()

    @property
    def settings(self) -> Settings:
        return self.rt.settings

    # -- helpers --------------------------------------------------------------------------

    def _namespace(self, namespace: str | None) -> str:
        ns = namespace or constants.DEFAULT_NAMESPACE
        try:
            validate_namespace(ns)
        except EventError as exc:
            raise ValidationError(str(exc)) from None
        if ns not in self.settings.namespaces:
            raise ValidationError(
                f"namespace: {ns!r} is not configured (TASKQ_NAMESPACES lists "
                f"{', '.join(self.settings.namespaces)})")
        return ns

    def _template(self, job: str, namespace: str) -> dict[str, Any]:
        template = self.rt.store.find_job_template(job, namespace)
        if template is None and job in ("webhook", "slack"):
            import taskq.notifiers  # noqa: F401  - the built-in notifier jobs
        if template is None and job in registered_jobs():
            sync_job_templates(self.rt)
            template = self.rt.store.find_job_template(job, namespace)
        if template is None:
            known = [t["name"] for t in self.rt.store.list_job_templates(namespace)]
            raise ValidationError(
                f"job: unknown job {job!r} in namespace {namespace!r}"
                f" (known: {', '.join(known) or 'none; start a worker that imports your jobs'})")
        return template

    # -- runs -----------------------------------------------------------------------------

    def submit(self, job: Any, params: dict[str, Any] | None = None, queue: str | None = None,
               namespace: str | None = None, tags: list[str] | None = None,
               hooks: list[Hook | dict[str, Any]] | None = None) -> RunRecord:
        """Start a run by hand; returns the run as stored (status ``queued`` or later).

        ``hooks`` attach to this run only; they are stored before the run is published, so
        none can miss its final status."""
        from taskq.dispatch import append_quietly, publish

        ns = self._namespace(namespace)
        name = _job_name(job)
        template = self._template(name, ns)
        try:
            route = routing.resolve(namespace=ns, trigger_queue=queue,
                                    template_queue=template["queue"],
                                    default_queue=self.settings.default_queue,
                                    agents=self.settings.agents)
        except routing.RoutingError as exc:
            raise ValidationError(str(exc)) from None
        defaults = {k: v["default"] for k, v in (template.get("inputs") or {}).items()
                    if isinstance(v, dict) and "default" in v}
        run_params = {**defaults, **(params or {})}
        run_uuid = str(uuid.uuid4())
        for i, hook in enumerate(hooks or []):
            self._register_hook(f"runs.{run_uuid}", ns, hook, name=f"{run_uuid}.hook.{i}")
        queued = self.rt.store.create_run(uuid=run_uuid, job=name, namespace=ns,
                                          project=template.get("project"), queue=route.queue,
                                          agent=route.agent, task_name=template["task_name"],
                                          params=run_params, tags=tags or [])
        append_quietly(self.rt, queued)
        publish(self.rt, OutboxItem(run_uuid=run_uuid, task_name=template["task_name"],
                                    queue=route.queue, agent=route.agent, params=run_params,
                                    attempts=0))
        run = run_record(self.rt.store.get_run(run_uuid))
        assert run is not None
        return run

    def get_run(self, run_uuid: str) -> RunRecord | None:
        return run_record(self.rt.store.get_run(str(run_uuid)))

    def list_runs(self, *, job: Any = None, namespace: str | None = None,
                  status: str | None = None, trigger: str | None = None,
                  limit: int = 50) -> list[RunRecord]:
        rows = self.rt.store.list_runs(job=_job_name(job) if job else None, namespace=namespace,
                                       status=status, trigger=trigger, limit=limit)
        return [RunRecord.model_validate(r) for r in rows]

    def stop_run(self, run_uuid: str, reason: str = "stopped by user") -> bool:
        """Stop a run: a pending one is marked stopped at once and never starts; a running
        one is revoked with SIGTERM and recorded as stopped by the worker's revoke signal."""
        from taskq.lifecycle import PENDING, Status
        from taskq.signals import record

        run = self.get_run(run_uuid)
        if run is None:
            raise ValidationError(f"uuid: no run {run_uuid!r}")
        if run.done:
            return False
        # Only a run that has not started is stopped in SQL here (a compare-and-set, so a
        # worker claiming it at this moment wins); an active one is terminated, and the
        # worker's task_revoked records it stopped.
        stopped_pending = record(run.uuid, Status.STOPPED, rt=self.rt, reason=reason,
                                 only_from=PENDING)
        self.rt.celery.control.revoke(run.uuid, terminate=not stopped_pending,
                                      signal="SIGTERM")
        return True

    # -- hooks ----------------------------------------------------------------------------

    def add_hook(self, *, job: Any, hook: Hook | dict[str, Any], name: str | None = None,
                 namespace: str | None = None) -> dict[str, Any]:
        """Attach a hook to every run of ``job``; returns the stored trigger row."""
        ns = self._namespace(namespace)
        job_name = _job_name(job)
        self._template(job_name, ns)
        spec = self._check_hook(hook, ns)
        return self._register_hook(f"jobs.{job_name}", ns, spec,
                                   name=name or f"{job_name}.hook.{spec.hub_ref}."
                                                f"{spec.trigger}")

    def set_job_hooks(self, job: str, hooks: list[Hook | dict[str, Any]],
                      namespace: str = constants.DEFAULT_NAMESPACE) -> None:
        """The hooks a job declares in code, kept in step: added, changed, or removed."""
        prefix = f"{job}.hooks."
        wanted = {f"{prefix}{i}": h for i, h in enumerate(hooks)}
        for name, hook in wanted.items():
            self._register_hook(f"jobs.{job}", namespace, hook, name=name)
        for t in self.rt.store.list_triggers(namespace):
            if t["kind"] == "hook" and t["name"].startswith(prefix) and t["name"] not in wanted:
                self.rt.store.delete_trigger(t["name"], namespace)
        self._bump()

    def _check_hook(self, hook: Hook | dict[str, Any], namespace: str) -> Hook:
        from pydantic import ValidationError as PydanticError

        from taskq.dispatch import validate_inputs
        from taskq.hooks import apply_presets, split_params
        from taskq.jobs import JobError

        try:
            spec = hook if isinstance(hook, Hook) else Hook.model_validate(hook)
        except PydanticError as exc:
            raise ValidationError(_first_error("hook", exc)) from None
        if spec.namespace is not None and spec.namespace != namespace:
            raise ValidationError(f"hook.namespace: {spec.namespace!r} differs from the "
                                  f"namespace of what it is attached to ({namespace!r}); "
                                  "a hook never crosses namespaces")
        if spec.connection is not None and spec.connection not in self.settings.connections:
            known = ", ".join(sorted(self.settings.connections)) or "none configured"
            raise ValidationError(f"hook.connection: undefined connection "
                                  f"{spec.connection!r} (known: {known})")
        target = self._template(spec.hub_ref, namespace)
        try:
            # The target job's presets first, then the hook's: the hook's override them.
            combined = spec.model_copy(update={"presets": (*target.get("presets", ()),
                                                           *spec.presets)})
            spec = apply_presets(combined, self.settings.presets)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if spec.queue is not None:
            try:
                routing.parse_queue(spec.queue, field="hook.queue", agents=self.settings.agents)
            except routing.RoutingError as exc:
                raise ValidationError(str(exc)) from None
        inputs, _ = split_params(spec.params)
        literal = {k: v for k, v in inputs.items()
                   if not (isinstance(v, str) and ("{{" in v or "{%" in v))}
        declared = target.get("inputs") or {}
        missing = [n for n, d in declared.items()
                   if d.get("required") and "default" not in d and n not in inputs]
        try:
            check_params(inputs)
            if missing:
                raise JobError(f"params.{missing[0]}: job {spec.hub_ref!r} requires it")
            validate_inputs({"inputs": declared}, {k: None for k in inputs}, job=spec.hub_ref,
                            check_required=False)
            validate_inputs({"inputs": declared}, literal, job=spec.hub_ref,
                            check_required=False)
        except (TemplateFailure, JobError) as exc:
            raise ValidationError(f"hook.{exc}") from None
        return spec

    def _register_hook(self, ref: str, namespace: str, hook: Hook | dict[str, Any], *,
                       name: str) -> dict[str, Any]:
        spec = self._check_hook(hook, namespace)
        self.rt.store.upsert_trigger(name=name, namespace=namespace, kind="hook",
                                     spec={"ref": ref, "hook": spec.spec()}, job=spec.hub_ref,
                                     params=spec.params, queue=spec.queue)
        self._bump()
        row = self.rt.store.get_trigger(name, namespace)
        assert row is not None
        return row

    # -- triggers -------------------------------------------------------------------------

    def add_trigger(self, *, name: str, event: EventTrigger | dict[str, Any], job: Any,
                    params: dict[str, Any] | None = None, queue: str | None = None,
                    namespace: str | None = None, enabled: bool = True) -> dict[str, Any]:
        """Register an event trigger; it takes effect in running evaluators at once."""
        from pydantic import ValidationError as PydanticError

        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise ValidationError("name: must be a non-empty string of at most 128 characters")
        ns = self._namespace(namespace)
        try:
            spec = event if isinstance(event, EventTrigger) else EventTrigger.model_validate(event)
        except (PydanticError, EventError) as exc:
            raise ValidationError(_first_error("event", exc)) from None
        job_name = _job_name(job)
        self._template(job_name, ns)
        if queue is not None:
            try:
                routing.parse_queue(queue, agents=self.settings.agents)
            except routing.RoutingError as exc:
                raise ValidationError(str(exc)) from None
        if params is not None and not isinstance(params, dict):
            raise ValidationError("params: must be a mapping of parameter names to values")
        try:
            check_params(params or {})
        except TemplateFailure as exc:
            raise ValidationError(str(exc)) from None
        from taskq.store.manager import AlreadyExists

        try:
            row = self.rt.store.add_trigger(name=name, namespace=ns, kind="event",
                                            spec=spec.model_dump(mode="json"), job=job_name,
                                            params=params or {}, queue=queue, enabled=enabled)
        except AlreadyExists as exc:
            raise ValidationError(str(exc)) from None
        self._bump()
        return row

    def _bump(self) -> None:
        try:
            self.rt.redis.incr(constants.TRIGGERS_VERSION)
        except Exception:
            pass  # evaluators re-check the database every few seconds anyway

    def list_triggers(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.rt.store.list_triggers(namespace)

    def get_trigger(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.rt.store.get_trigger(name, namespace or constants.DEFAULT_NAMESPACE)

    def firings(self, name: str, namespace: str | None = None) -> list[dict[str, Any]]:
        trig = self.get_trigger(name, namespace)
        if trig is None:
            raise ValidationError(f"name: no trigger named {name!r}")
        return self.rt.store.firings(trig["id"])

    def enable_trigger(self, name: str, namespace: str | None = None) -> None:
        self.rt.store.set_trigger_enabled(name, namespace or constants.DEFAULT_NAMESPACE, True)
        self._bump()

    def disable_trigger(self, name: str, namespace: str | None = None) -> None:
        self.rt.store.set_trigger_enabled(name, namespace or constants.DEFAULT_NAMESPACE, False)
        self._bump()

    def delete_trigger(self, name: str, namespace: str | None = None) -> None:
        self.rt.store.delete_trigger(name, namespace or constants.DEFAULT_NAMESPACE)
        self._bump()


def _first_error(field: str, exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        return f"{field}.{loc}: {msg}" if loc else f"{field}: {msg}"
    return f"{field}: {exc}"
