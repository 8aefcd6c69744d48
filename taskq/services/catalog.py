"""The catalog of job templates and namespaces: what a trigger, hook or run may name.

Every service that checks "does this job exist here?" asks :func:`template`, so the answer
(and the lazy store of jobs this process declared but no worker synced yet) is the same for
submit, hooks, triggers and pipelines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from taskq import constants
from taskq.core.names import validate_namespace
from taskq.core.stored import JobTemplate
from taskq.errors import EventError, ValidationError
from taskq.ports import Context

#: Set while job templates are being stored, so a hook that names a job not stored yet
#: cannot start a second, recursive sync.
_syncing = False


@contextmanager
def syncing() -> Iterator[None]:
    global _syncing
    _syncing, before = True, _syncing
    try:
        yield
    finally:
        _syncing = before


def is_syncing() -> bool:
    return _syncing


def check_namespace(rt: Context, namespace: str | None) -> str:
    """The namespace asked for (default: ``default``), if it is well-formed and configured."""
    ns = namespace or constants.DEFAULT_NAMESPACE
    try:
        validate_namespace(ns)
    except EventError as exc:
        raise ValidationError(str(exc)) from None
    if ns not in rt.settings.namespaces:
        raise ValidationError(
            f"namespace: {ns!r} is not configured (TASKQ_NAMESPACES lists "
            f"{', '.join(rt.settings.namespaces)})")
    return ns


def check_run_ref(rt: Context, ref: str, namespace: str, field: str) -> None:
    """A trigger or hook on ``runs.<uuid>`` watches that one run's events, which carry the
    run's namespace: one of another namespace could never fire, and would tell its owner
    that run exists. A run not stored yet passes (a submit stores its hooks first)."""
    if not ref.startswith("runs."):
        return
    run = rt.store.get_run(ref[len("runs."):])
    if run is not None and run.namespace != namespace:
        raise ValidationError(f"{field}: {ref!r} is a run of another namespace; a trigger in "
                              f"{namespace!r} may watch only that namespace's runs")


def template(rt: Context, job: str, namespace: str) -> JobTemplate:
    """The stored template of ``job``; a job declared in this process but not stored yet
    is stored first (``rt.sync_jobs``)."""
    found = rt.store.find_job_template(job, namespace)
    local = rt.jobs.get(job)
    if (found is None and local is not None and not _syncing
            and local.namespace in (namespace, constants.DEFAULT_NAMESPACE)):
        rt.sync_jobs()
        found = rt.store.find_job_template(job, namespace)
    if found is None:
        known = [t.name for t in rt.store.list_job_templates(namespace)]
        raise ValidationError(
            f"job: unknown job {job!r} in namespace {namespace!r}"
            f" (known: {', '.join(known) or 'none; start a worker that imports your jobs'})")
    return found
