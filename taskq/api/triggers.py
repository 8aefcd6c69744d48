"""Triggers and hooks in the Python API: register, inspect, enable, disable, delete.

A facet of :class:`taskq.Client` (which mixes it in); every check and write is a service
call on the client's runtime, so the CLI, the HTTP server and Python refuse the same input
the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError as PydanticError

from taskq.api.explaining import ExplainFacet
from taskq.api.publishing import PublishingFacet
from taskq.api.scope import Scope
from taskq.core import routing
from taskq.core.matching import EventTrigger
from taskq.core.templating import check_params
from taskq.core.triggers.event import APPROVAL
from taskq.core.triggers.hook import Hook
from taskq.errors import (
    AlreadyExists,
    EventError,
    RoutingError,
    TemplateFailure,
    ValidationError,
    first_error,
)
from taskq.runtime import Runtime
from taskq.services import catalog, unmatched
from taskq.services import trigger_admin as registration
from taskq.settings import Settings


def spec_with_approval(event: EventTrigger, approval: bool) -> dict[str, Any]:
    """The stored spec: the event, and ``approval`` beside it only when true (a trigger
    without it is stored as it always was)."""
    return {**event.model_dump(mode="json"), **({APPROVAL: True} if approval else {})}


def _job_name(job: Any) -> str:
    jd = getattr(job, "taskq_job", None)
    if jd is not None:
        return str(jd.name)
    if isinstance(job, str) and job:
        return job
    raise ValidationError(f"job: expected a job name or a @taskq.job function, got {job!r}")


class TriggersFacet(PublishingFacet, ExplainFacet):
    rt: Runtime
    scope: Scope

    @property
    def settings(self) -> Settings:
        return self.rt.settings

    # -- hooks ----------------------------------------------------------------------------

    def add_hook(self, *, job: Any, hook: Hook | dict[str, Any], name: str | None = None,
                 namespace: str | None = None) -> dict[str, Any]:
        """Attach a hook to every run of ``job``; returns the stored trigger row."""
        ns = self.scope.one(self.rt, namespace)
        job_name = _job_name(job)
        # The job watched may not exist yet: the hook waits for its runs (and says so).
        spec = self._check_hook(hook, ns, attached_job=job_name)
        # An unnamed hook gets a readable name; it never silently replaces a different hook
        # of the same name (give it a `name` to update it in place).
        return self._register_hook(f"jobs.{job_name}", ns, spec, replace=name is not None,
                                   name=name or f"{job_name}.hook.{spec.hub_ref}."
                                                f"{spec.trigger}")

    def set_job_hooks(self, job: str, hooks: list[Hook | dict[str, Any]],
                      namespace: str | None = None) -> None:
        """The hooks a job declares in code, kept in step: added, changed, or removed."""
        registration.set_job_hooks(self.rt, job, hooks, self.scope.one(self.rt, namespace))

    def _check_hook(self, hook: Hook | dict[str, Any], namespace: str,
                    attached_job: str | None = None) -> Hook:
        return registration.check_hook(self.rt, hook, namespace, attached_job)

    def _register_hook(self, ref: str, namespace: str, hook: Hook, *, name: str,
                       replace: bool = True) -> dict[str, Any]:
        return registration.register_hook(self.rt, ref, namespace, hook, name=name,
                                          replace=replace).as_dict()

    # -- triggers -------------------------------------------------------------------------

    def add_trigger(self, *, name: str, event: EventTrigger | dict[str, Any], job: Any,
                    params: dict[str, Any] | None = None, queue: str | None = None,
                    namespace: str | None = None, enabled: bool = True,
                    dry_run: bool = False, approval: bool = False) -> dict[str, Any]:
        """Register an event trigger; it takes effect in running evaluators at once.

        ``dry_run`` validates everything and stores nothing (``taskq apply`` checks a whole
        entry before replacing the old one). ``approval``: each run it fires waits
        ``created``, unsent, until ``taskq runs approve``."""
        checked = self._checked_trigger(name=name, event=event, job=job, params=params,
                                        queue=queue, namespace=namespace, enabled=enabled,
                                        approval=approval)
        if dry_run:
            return checked
        ns, spec, job_name = checked["namespace"], checked["spec"], checked["job"]
        try:
            row = self.rt.store.add_trigger(name=name, namespace=ns, kind="event",
                                            spec=spec, job=job_name, params=params or {},
                                            queue=queue, enabled=enabled)
        except AlreadyExists as exc:
            raise ValidationError(str(exc)) from None
        self.rt.coord.bump_triggers()
        unmatched.notice(self.rt, row)
        return row.as_dict()

    def _checked_trigger(self, *, name: str, event: EventTrigger | dict[str, Any],
                         job: Any, params: dict[str, Any] | None = None,
                         queue: str | None = None, namespace: str | None = None,
                         enabled: bool = True, approval: bool = False,
                         known: set[tuple[str, str]] | None = None) -> dict[str, Any]:
        """Every check of :meth:`add_trigger`, and the row it would store; ``known``: the
        (job, namespace) pairs whose template was found already (a bulk call reads each
        template once)."""
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise ValidationError("name: must be a non-empty string of at most 128 characters")
        ns = self.scope.one(self.rt, namespace)
        try:
            spec = event if isinstance(event, EventTrigger) else EventTrigger.model_validate(event)
        except (PydanticError, EventError) as exc:
            raise ValidationError(first_error(exc, "event")) from None
        catalog.check_run_ref(self.rt, spec.ref, ns, "event.ref")
        job_name = _job_name(job)
        if known is None or (job_name, ns) not in known:
            catalog.template(self.rt, job_name, ns)
            if known is not None:
                known.add((job_name, ns))
        if queue is not None:
            try:
                routing.parse_queue(queue, agents=self.settings.agents)
            except RoutingError as exc:
                raise ValidationError(str(exc)) from None
        if params is not None and not isinstance(params, dict):
            raise ValidationError("params: must be a mapping of parameter names to values")
        try:
            check_params(params or {})
        except TemplateFailure as exc:
            raise ValidationError(str(exc)) from None
        if not isinstance(approval, bool):
            raise ValidationError("approval: must be true or false")
        return {"name": name, "namespace": ns, "kind": "event",
                "spec": spec_with_approval(spec, approval), "job": job_name,
                "params": params or {}, "queue": queue, "enabled": enabled}

    def add_triggers(self, triggers: Sequence[Mapping[str, Any]],
                     namespace: str | None = None) -> list[dict[str, Any]]:
        """Register many event triggers at once (each the keywords of :meth:`add_trigger`):
        each checked as one is, then all stored in one transaction with one version bump,
        so thousands take a moment and evaluators reload once. A bad one is refused naming
        its index, and then none is stored."""
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        known: set[tuple[str, str]] = set()
        for i, item in enumerate(triggers):
            if not isinstance(item, Mapping):
                raise ValidationError(f"triggers[{i}]: must be a mapping of add_trigger's "
                                      "keywords (name, event, job, params, queue, enabled, "
                                      "approval)")
            try:
                row = self._checked_trigger(**{"namespace": namespace, **item}, known=known)
            except TypeError as exc:
                raise ValidationError(f"triggers[{i}]: {exc}") from None
            except ValidationError as exc:
                raise ValidationError(f"triggers[{i}].{exc}") from None
            if (row["namespace"], row["name"]) in seen:
                raise ValidationError(f"triggers[{i}].name: {row['name']!r} is given twice")
            seen.add((row["namespace"], row["name"]))
            rows.append(row)
        try:
            stored = self.rt.store.add_triggers(rows)
        except AlreadyExists as exc:
            raise ValidationError(str(exc)) from None
        self.rt.coord.bump_triggers()
        return [t.as_dict() for t in stored]

    def add_finish_trigger(self, *, name: str, job: Any, upstream: Any, mode: str = "all",
                           reset: float | str | None = None,
                           params: dict[str, Any] | None = None, queue: str | None = None,
                           namespace: str | None = None) -> dict[str, Any]:
        """Run ``job`` when ``upstream`` jobs succeed (Metaflow's ``@trigger_on_finish``):
        with several and mode "all", once each has a new successful run; "any": on each."""
        return registration.add_chaining_trigger(
            self.rt, name=name, job=_job_name(job), on_finish=upstream, mode=mode, reset=reset,
            params=params, queue=queue, namespace=self.scope.one(self.rt, namespace)).as_dict()

    def add_event_trigger(self, *, name: str, job: Any, events: Any, mode: str = "all",
                          reset: float | str | None = None,
                          params: dict[str, Any] | None = None, queue: str | None = None,
                          namespace: str | None = None) -> dict[str, Any]:
        """Run ``job`` when events are published (Metaflow's ``@trigger``); each event is a
        name or ``{"name": ..., "parameters": {param: field}}``."""
        return registration.add_chaining_trigger(
            self.rt, name=name, job=_job_name(job), on=events, mode=mode, reset=reset,
            params=params, queue=queue, namespace=self.scope.one(self.rt, namespace)).as_dict()

    def list_triggers(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [t.as_dict() for t in
                self.rt.store.list_triggers(self.scope.many(self.rt, namespace))]

    def get_trigger(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        found = self.rt.store.get_trigger(name, self.scope.one(self.rt, namespace))
        if found is None:
            return None
        row = found.as_dict()
        if found.spec.get("mode") == "all" and len(found.spec.get("inputs", [])) > 1:
            # An AND join explains itself: which inputs have an event waiting.
            row["waiting"] = self.rt.store.join_state(found.id)
        waits = unmatched.find(self.rt, found)
        if waits:
            # Names it watches that match nothing yet: it waits for them to appear.
            row["unmatched"] = [u.message() for u in waits]
        return row

    def unmatched_names(self, namespace: str | None = None) -> dict[tuple[str, str], list[str]]:
        """(namespace, trigger name) -> what it watches that matches nothing yet, for
        every trigger that has such a name (``taskq triggers list`` marks them)."""
        cache: dict[str, Any] = {}
        out: dict[tuple[str, str], list[str]] = {}
        for t in self.rt.store.list_triggers(self.scope.many(self.rt, namespace)):
            waits = unmatched.find(self.rt, t, cache)
            if waits:
                out[(t.namespace, t.name)] = [u.short() for u in waits]
        return out

    def firings(self, name: str, namespace: str | None = None) -> list[dict[str, Any]]:
        trig = self.get_trigger(name, namespace)
        if trig is None:
            raise ValidationError(f"name: no trigger named {name!r}")
        return self.rt.store.firings(trig["id"])

    def enable_trigger(self, name: str, namespace: str | None = None) -> None:
        self.rt.store.set_trigger_enabled(name, self.scope.one(self.rt, namespace), True)
        self.rt.coord.bump_triggers()

    def disable_trigger(self, name: str, namespace: str | None = None) -> None:
        self.rt.store.set_trigger_enabled(name, self.scope.one(self.rt, namespace), False)
        self.rt.coord.bump_triggers()

    def delete_trigger(self, name: str, namespace: str | None = None) -> None:
        self.rt.store.delete_trigger(name, self.scope.one(self.rt, namespace))
        self.rt.coord.bump_triggers()
