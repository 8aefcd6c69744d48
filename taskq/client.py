"""The Python API. ``taskq.submit`` and friends use a default Client built from the
environment; ``taskq.Client(settings)`` is the same API with explicit configuration.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskq import constants, routing
from taskq.errors import first_error
from taskq.events import EventError, validate_namespace
from taskq.hooks import Hook
from taskq.jobs import registered_jobs
from taskq.records import RunRecord, loader, run_record
from taskq.rules import EventTrigger
from taskq.runtime import Runtime, get_runtime
from taskq.settings import Settings
from taskq.store.manager import OutboxItem
from taskq.templating import TemplateFailure, check_params

if TYPE_CHECKING:
    from taskq.registry import Registry

log = logging.getLogger(__name__)


class ValidationError(ValueError):
    """Bad input from the caller; the message names the field and the reason."""


def sync_job_templates(rt: Runtime) -> int:
    """Store the templates of every job this process has imported (upsert by name), then
    the hooks declared with ``@taskq.job(hooks=[...])``."""
    from taskq import registration

    jobs = registered_jobs()
    for jd in jobs.values():
        rt.store.upsert_job_template(
            name=jd.name, namespace=jd.namespace, queue=jd.queue, task_name=jd.task_name,
            inputs=jd.inputs, outputs=jd.outputs, project=jd.project,
            description=jd.description, presets=jd.presets)
    global _syncing
    client = Client.__new__(Client)
    client.rt = rt
    _syncing = True
    try:
        for jd in jobs.values():
            try:
                client.set_job_hooks(jd.name, list(jd.hooks), namespace=jd.namespace)
            except ValidationError as exc:  # one job's bad hook must not block the others
                log.error("taskq: hooks of job %r not stored: %s", jd.name, exc)
            try:
                registration.set_job_triggers(client, jd.name, jd.triggers, jd.namespace)
            except ValidationError as exc:
                log.error("taskq: trigger of job %r not stored: %s", jd.name, exc)
    finally:
        _syncing = False
    return len(jobs)


#: Set while job templates are being stored, so a hook that names a job not stored yet
#: cannot start a second, recursive sync.
_syncing = False


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
        local = registered_jobs().get(job)
        if (template is None and local is not None and not _syncing
                and local.namespace in (namespace, constants.DEFAULT_NAMESPACE)):
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
        checked = [self._check_hook(h, ns) for h in hooks or []]  # all valid, or none stored
        for i, hook in enumerate(checked):
            self._register_hook(f"runs.{run_uuid}", ns, hook, name=f"{run_uuid}.hook.{i}")
        queued = self.rt.store.create_run(uuid=run_uuid, job=name, namespace=ns,
                                          project=template.get("project"), queue=route.queue,
                                          agent=route.agent, task_name=template["task_name"],
                                          params=run_params, tags=tags or [])
        append_quietly(self.rt, queued)
        publish(self.rt, OutboxItem(run_uuid=run_uuid, task_name=template["task_name"],
                                    queue=route.queue, agent=route.agent, params=run_params,
                                    attempts=0))
        run = self.get_run(run_uuid)
        assert run is not None
        return run

    def run_pipeline(self, spec: Any, params: dict[str, Any] | None = None,
                     namespace: str | None = None) -> RunRecord:
        """Start a DAG pipeline (a Polyaxonfile-shaped mapping, YAML, or a path to one);
        returns the pipeline's run. Everything is checked before anything runs."""
        from taskq.pipelines import engine

        return engine.start(self, spec, params=params, namespace=namespace)

    def get_run(self, run_uuid: str) -> RunRecord | None:
        return self._load(str(run_uuid))

    @property
    def _load(self) -> Callable[[str], RunRecord | None]:
        return loader(self.rt.store.get_run)

    def list_runs(self, *, job: Any = None, namespace: str | None = None,
                  status: str | None = None, trigger: str | None = None,
                  limit: int = 50) -> list[RunRecord]:
        rows = self.rt.store.list_runs(job=_job_name(job) if job else None, namespace=namespace,
                                       status=status, trigger=trigger, limit=limit)
        load = self._load
        return [r for r in (run_record(row, load) for row in rows) if r is not None]

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
        if run.kind == "pipeline":
            from taskq.pipelines import engine

            return engine.stop(self, run)
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
        spec = self._check_hook(hook, ns, attached_job=job_name)
        # An unnamed hook gets a readable name; it never silently replaces a different hook
        # of the same name (give it a `name` to update it in place).
        return self._register_hook(f"jobs.{job_name}", ns, spec, replace=name is not None,
                                   name=name or f"{job_name}.hook.{spec.hub_ref}."
                                                f"{spec.trigger}")

    def set_job_hooks(self, job: str, hooks: list[Hook | dict[str, Any]],
                      namespace: str = constants.DEFAULT_NAMESPACE) -> None:
        """The hooks a job declares in code, kept in step: added, changed, or removed."""
        from taskq import registration

        registration.set_job_hooks(self, job, hooks, namespace)

    def _check_hook(self, hook: Hook | dict[str, Any], namespace: str,
                    attached_job: str | None = None) -> Hook:
        from taskq import registration

        return registration.check_hook(self, hook, namespace, attached_job)

    def _register_hook(self, ref: str, namespace: str, hook: Hook, *, name: str,
                       replace: bool = True) -> dict[str, Any]:
        from taskq import registration

        return registration.register_hook(self, ref, namespace, hook, name=name,
                                          replace=replace)

    # -- triggers -------------------------------------------------------------------------

    def add_trigger(self, *, name: str, event: EventTrigger | dict[str, Any], job: Any,
                    params: dict[str, Any] | None = None, queue: str | None = None,
                    namespace: str | None = None, enabled: bool = True,
                    dry_run: bool = False) -> dict[str, Any]:
        """Register an event trigger; it takes effect in running evaluators at once.

        ``dry_run`` validates everything and stores nothing (``taskq apply`` checks a whole
        entry before replacing the old one)."""
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

        if dry_run:
            return {"name": name, "namespace": ns, "kind": "event",
                    "spec": spec.model_dump(mode="json"), "job": job_name,
                    "params": params or {}, "queue": queue, "enabled": enabled}
        try:
            row = self.rt.store.add_trigger(name=name, namespace=ns, kind="event",
                                            spec=spec.model_dump(mode="json"), job=job_name,
                                            params=params or {}, queue=queue, enabled=enabled)
        except AlreadyExists as exc:
            raise ValidationError(str(exc)) from None
        self._bump()
        return row

    def add_finish_trigger(self, *, name: str, job: Any, upstream: Any, mode: str = "all",
                           reset: float | str | None = None,
                           params: dict[str, Any] | None = None, queue: str | None = None,
                           namespace: str | None = None) -> dict[str, Any]:
        """Run ``job`` when ``upstream`` jobs succeed (Metaflow's ``@trigger_on_finish``):
        with several and mode "all", once each has a new successful run; "any": on each."""
        from taskq import registration

        return registration.add_chaining_trigger(
            self, name=name, job=_job_name(job), on_finish=upstream, mode=mode, reset=reset,
            params=params, queue=queue, namespace=namespace)

    def add_event_trigger(self, *, name: str, job: Any, events: Any, mode: str = "all",
                          reset: float | str | None = None,
                          params: dict[str, Any] | None = None, queue: str | None = None,
                          namespace: str | None = None) -> dict[str, Any]:
        """Run ``job`` when events are published (Metaflow's ``@trigger``); each event is a
        name or ``{"name": ..., "parameters": {param: field}}``."""
        from taskq import registration

        return registration.add_chaining_trigger(
            self, name=name, job=_job_name(job), on=events, mode=mode, reset=reset,
            params=params, queue=queue, namespace=namespace)

    def publish_event(self, name: str, payload: dict[str, Any] | None = None,
                      namespace: str | None = None, event_id: str | None = None) -> str:
        """Publish an external event; returns its id. With ``event_id`` a retried publish
        is the same event, evaluated once."""
        from taskq import external

        ns = self._namespace(namespace)
        try:
            return external.publish(self.rt, name, payload, namespace=ns, event_id=event_id,
                                    source="python").id
        except external.EventInputError as exc:
            raise ValidationError(str(exc)) from None

    # -- registries and entity triggers (docs/entity-triggers.md) -------------------------

    @property
    def models(self) -> Registry:
        """The model registry: register, publish, archive, unarchive, add_tags, ..."""
        from taskq.entities import Family
        from taskq.registry import Registry

        return Registry(self, Family.MODELS)

    @property
    def datasets(self) -> Registry:
        from taskq.entities import Family
        from taskq.registry import Registry

        return Registry(self, Family.DATASETS)

    def tag_run(self, run_uuid: str, add: list[str] | tuple[str, ...] = (),
                remove: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Add / remove a run's tags (run triggers on tags fire); returns its tags."""
        from taskq.registry import tag_run

        return tag_run(self, run_uuid, add, remove)

    def job(self, name: Any, namespace: str | None = None) -> JobView:
        """A job's runs: ``client.job("prediction").latest_run.trigger.run``."""
        return JobView(self, _job_name(name), self._namespace(namespace))

    def _bump(self) -> None:
        try:
            self.rt.redis.incr(constants.TRIGGERS_VERSION)
        except Exception:
            pass  # evaluators re-check the database every few seconds anyway

    def list_triggers(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.rt.store.list_triggers(namespace)

    def get_trigger(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        row = self.rt.store.get_trigger(name, namespace or constants.DEFAULT_NAMESPACE)
        if row is not None and (row["spec"] or {}).get("mode") == "all" and len(
                (row["spec"] or {}).get("inputs", [])) > 1:
            # An AND join explains itself: which inputs have an event waiting.
            row["waiting"] = self.rt.store.join_state(row["id"])
        return row

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


class JobView:
    """Runs of one job, newest first."""

    def __init__(self, client: Client, name: str, namespace: str) -> None:
        self.client, self.name, self.namespace = client, name, namespace

    def runs(self, limit: int = 50) -> list[RunRecord]:
        return self.client.list_runs(job=self.name, namespace=self.namespace, limit=limit)

    @property
    def latest_run(self) -> RunRecord | None:
        return next(iter(self.runs(limit=1)), None)

    def __repr__(self) -> str:
        return f"JobView({self.name!r}, namespace={self.namespace!r})"


def _first_error(field: str, exc: Exception) -> str:
    return first_error(exc, field)
