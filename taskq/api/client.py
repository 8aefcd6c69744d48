"""The Python API. ``taskq.submit`` and friends use a default Client built from the
environment; ``taskq.Client(settings)`` is the same API with explicit configuration.
"""

from __future__ import annotations

import getpass
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from taskq import constants
from taskq.api.records import RunRecord, loader, run_record
from taskq.api.registries import Registry, tag_run
from taskq.api.scope import HINT, Scope
from taskq.api.triggers import TriggersFacet, _job_name
from taskq.core import routing
from taskq.core.jobs import input_defaults, validate_params
from taskq.core.statuses import APPROVAL_WAITING, APPROVED, INVALIDATED, RESUMABLE, Status
from taskq.core.stored import OutboxItem
from taskq.core.triggers.hook import Hook
from taskq.core.watched import Family
from taskq.errors import (
    JobError,
    RoutingError,
    ValidationError,
)
from taskq.runtime import Runtime, get_runtime
from taskq.services import catalog
from taskq.services import pipelines as engine
from taskq.services.approvals import decide
from taskq.services.outbox import publish
from taskq.services.recording import append_quietly, resume_run, stop_run
from taskq.settings import Settings

log = logging.getLogger(__name__)

#: The longest countdown accepted (a week): a later start is a schedule's, not a run's.
MAX_COUNTDOWN = 7 * 24 * 3600



class Client(TriggersFacet):
    """The whole Python API on one configuration, bound to one namespace; triggers and
    hooks come from :class:`~taskq.api.triggers.TriggersFacet`.

    ``namespace`` (default: TASKQ_NAMESPACE, else ``default``) is the only namespace it
    reads and changes; ``admin=True`` (default: TASKQ_ADMIN) lets it see and change every
    one (taskq/api/scope.py)."""

    def __init__(self, settings: Settings | None = None, *, namespace: str | None = None,
                 admin: bool | None = None) -> None:
        self.rt = Runtime(settings) if settings is not None else get_runtime()
        self.scope = Scope.of(self.rt, namespace, admin)

    @property
    def namespace(self) -> str:
        return self.scope.namespace

    @property
    def admin(self) -> bool:
        return self.scope.admin

    @property
    def settings(self) -> Settings:
        return self.rt.settings

    # -- runs -----------------------------------------------------------------------------

    def submit(self, job: Any, params: dict[str, Any] | None = None, queue: str | None = None,
               namespace: str | None = None, tags: list[str] | None = None,
               hooks: list[Hook | dict[str, Any]] | None = None,
               eta: datetime | None = None, countdown: float | None = None) -> RunRecord:
        """Start a run by hand; returns the run as stored (status ``queued`` or later).

        ``hooks`` attach to this run only; they are stored before the run is published, so
        none can miss its final status. ``eta`` (an aware datetime) or ``countdown``
        (seconds), as Celery's: the run is ``scheduled`` until a worker takes it at that
        time. A job declared with ``approval=True`` waits ``created``, unsent, until
        :meth:`approve_run`."""
        ns = self.scope.one(self.rt, namespace)
        start_at = _start_time(eta, countdown)
        name = _job_name(job)
        template = catalog.template(self.rt, name, ns)
        try:
            route = routing.resolve(namespace=ns, trigger_queue=queue,
                                    template_queue=template.queue,
                                    default_queue=self.settings.default_queue,
                                    agents=self.settings.agents)
        except RoutingError as exc:
            raise ValidationError(str(exc)) from None
        try:
            run_params = validate_params(template.inputs,
                                         {**input_defaults(template.inputs), **(params or {})},
                                         job=name)
        except JobError as exc:
            raise ValidationError(str(exc)) from None
        run_uuid = str(uuid.uuid4())
        checked = [self._check_hook(h, ns) for h in hooks or []]  # all valid, or none stored
        for i, hook in enumerate(checked):
            self._register_hook(f"runs.{run_uuid}", ns, hook, name=f"{run_uuid}.hook.{i}")
        queued = self.rt.store.create_run(uuid=run_uuid, job=name, namespace=ns,
                                          project=template.project, queue=route.queue,
                                          agent=route.agent, task_name=template.task_name,
                                          params=run_params, tags=tags or [],
                                          eta=start_at, approval=template.approval)
        append_quietly(self.rt.bus, queued)
        if not template.approval:
            publish(self.rt, OutboxItem(run_uuid=run_uuid, task_name=template.task_name,
                                        queue=route.queue, agent=route.agent,
                                        params=run_params, attempts=0, eta=start_at))
        run = self.get_run(run_uuid)
        assert run is not None
        return run

    def run_pipeline(self, spec: Any, params: dict[str, Any] | None = None,
                     namespace: str | None = None) -> RunRecord:
        """Start a DAG pipeline (a Polyaxonfile-shaped mapping, YAML, or a path to one);
        returns the pipeline's run. Everything is checked before anything runs."""
        ns = self.scope.one(self.rt, namespace)
        run = self.get_run(engine.start(self.rt, spec, params=params, namespace=ns))
        assert run is not None
        return run

    def get_run(self, run_uuid: str) -> RunRecord | None:
        """The run, or None if there is none in this client's namespace (another
        namespace's run is not found, unless the client is admin)."""
        run = self._load(str(run_uuid))
        return run if run is not None and self.scope.sees(run.namespace) else None

    @property
    def _load(self) -> Callable[[str], RunRecord | None]:
        return loader(self.rt.store.get_run)

    def list_runs(self, *, job: Any = None, namespace: str | None = None,
                  status: str | None = None, trigger: str | None = None,
                  limit: int = 50) -> list[RunRecord]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not (
                1 <= limit <= constants.MAX_LIST_LIMIT):
            raise ValidationError(f"limit: must be a whole number from 1 to "
                                  f"{constants.MAX_LIST_LIMIT}")
        rows = self.rt.store.list_runs(job=_job_name(job) if job else None,
                                       namespace=self.scope.many(self.rt, namespace),
                                       status=status, trigger=trigger, limit=limit)
        load = self._load
        return [r for r in (run_record(row, load) for row in rows) if r is not None]

    def stop_run(self, run_uuid: str, reason: str = "stopped by user") -> bool:
        """Stop a run: a pending one is marked stopped at once and never starts; a running
        one is revoked with SIGTERM and recorded as stopped by the worker's revoke signal."""
        run = self.get_run(run_uuid)
        if run is None:
            raise ValidationError(f"uuid: no run {run_uuid!r}")
        if run.done:
            return False
        if run.kind == "pipeline":
            return engine.stop(self.rt, run.uuid)
        # Only a run that has not started is stopped in SQL here (a compare-and-set, so a
        # worker claiming it at this moment wins); an active one is terminated, and the
        # worker's task_revoked records it stopped.
        return stop_run(self.rt, run.uuid, reason)

    def resume_run(self, run_uuid: str, reason: str = "resumed by user") -> bool:
        """Run a stopped or failed run again: ``resuming``, then ``queued`` as a new
        incarnation (its attempts start again; a message of the old one is refused). False
        if a concurrent resume of the same run got there first."""
        run = self.get_run(run_uuid)
        if run is None:
            raise ValidationError(f"uuid: no run {run_uuid!r}")
        if run.status not in RESUMABLE or run.kind != "job" or run.pipeline_uuid:
            raise ValidationError(
                f"uuid: run {run.uuid} is {run.status}; only a stopped or failed job run "
                "(not a pipeline or one of its operations) can be resumed")
        return resume_run(self.rt, run.uuid, reason)

    def approve_run(self, run_uuid: str, actor: str | None = None) -> bool:
        """Queue a run waiting for approval (``approval=True`` on its job or trigger), once:
        ``run_approved_actor`` naming ``actor`` (default: this process's user), then
        ``compiled`` and ``queued``. False if a concurrent approval got there first."""
        return self._decide(run_uuid, True, actor, None)

    def invalidate_run(self, run_uuid: str, reason: str = "invalidated by user",
                       actor: str | None = None) -> bool:
        """End a run waiting for approval without running it: ``run_invalidated_actor``,
        then ``skipped`` with ``reason``. False if a concurrent invalidation got there
        first."""
        return self._decide(run_uuid, False, actor, reason)

    def _decide(self, run_uuid: str, approve: bool, actor: str | None,
                reason: str | None) -> bool:
        run = self.get_run(run_uuid)
        if run is None:
            raise ValidationError(f"uuid: no run {run_uuid!r}")
        if actor is not None and (not isinstance(actor, str) or not actor.strip()):
            raise ValidationError("actor: must be a non-empty string")
        waiting = run.approval == APPROVAL_WAITING and run.status == Status.CREATED
        if waiting and decide(self.rt, run.uuid, approve=approve, actor=actor or _user(),
                              reason=reason):
            return True
        now = self.get_run(run.uuid) or run
        if waiting and now.approval == (APPROVED if approve else INVALIDATED):
            return False  # the same decision, made by someone else at the same moment
        why = {None: " and does not need approval", APPROVED: ": it was approved already",
               INVALIDATED: ": it was invalidated"}.get(now.approval,
                                                         ", no longer waiting for approval")
        raise ValidationError(f"uuid: run {now.uuid} is {now.status}{why}; only a run "
                              "waiting for approval (created) can be "
                              f"{'approved' if approve else 'invalidated'}")

    # -- dead letters ---------------------------------------------------------------------

    def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        """Entries moved aside (malformed, or failing every delivery), newest first. Admin
        only: they may hold any namespace's events."""
        self._require_admin("dead letters")
        return self.rt.bus.dead_letters(count)

    def replay_dead_letters(self, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """Put dead letters (``ids``, or all there are) back into the stream to be evaluated
        again: (dead-letter id, new stream id) for each. Each is moved once however many
        replays race; an event that already fired does not fire again (its firing's dedup
        key is taken). Admin only, as :meth:`dead_letters`."""
        self._require_admin("replaying dead letters")
        return self.rt.bus.replay_dead(ids)

    def _require_admin(self, what: str) -> None:
        if not self.admin:
            raise ValidationError(f"admin: {what} may hold every namespace's events; {HINT}")

    # -- registries and entity triggers (docs/entity-triggers.md) -------------------------

    @property
    def models(self) -> Registry:
        """The model registry: register, publish, archive, unarchive, add_tags, ..."""
        return Registry(self.rt, Family.MODELS, self.scope)

    @property
    def datasets(self) -> Registry:
        return Registry(self.rt, Family.DATASETS, self.scope)

    def tag_run(self, run_uuid: str, add: list[str] | tuple[str, ...] = (),
                remove: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Add / remove a run's tags (run triggers on tags fire); returns its tags."""
        if self.get_run(str(run_uuid)) is None:
            raise ValidationError(f"uuid: no run {run_uuid!r}")
        return tag_run(self.rt, run_uuid, add, remove)

    def job(self, name: Any, namespace: str | None = None) -> JobView:
        """A job's runs: ``client.job("prediction").latest_run.trigger.run``."""
        return JobView(self, _job_name(name), self.scope.one(self.rt, namespace))



def _user() -> str:
    """Who approves when no actor is named: the user this process runs as."""
    try:
        return getpass.getuser()
    except Exception:  # no name for the uid (a container's): still an actor
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _start_time(eta: datetime | None, countdown: float | None) -> datetime | None:
    """One start time from Celery's two spellings of it; refused before anything is
    stored."""
    if eta is not None and countdown is not None:
        raise ValidationError("eta, countdown: give one or the other")
    if countdown is not None:
        if isinstance(countdown, bool) or not isinstance(countdown, int | float) or not (
                0 <= countdown <= MAX_COUNTDOWN):
            raise ValidationError(f"countdown: must be seconds from 0 to {MAX_COUNTDOWN}")
        return datetime.now(UTC) + timedelta(seconds=countdown)
    if eta is not None and (not isinstance(eta, datetime) or eta.tzinfo is None):
        raise ValidationError("eta: must be a timezone-aware datetime")
    return eta


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
