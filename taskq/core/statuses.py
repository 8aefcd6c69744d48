"""Run statuses and the transitions between them.

The names are Polyaxon's V1Statuses (and ``initializing``, which its event docs list) so that
hooks, DAG policies and event kinds written for Polyaxon read the same here. ``done`` is a
pseudo-status: it is never stored, it means "any final status".
Final statuses are terminal: a late or duplicated signal can never resurrect a run. The two
explicit exceptions make the run a new incarnation: a ``reuse_task`` trigger re-enqueueing a
finished run (``Store._requeue``; docs/entity-triggers.md) and resuming a stopped or failed
one (``Store.resume_run``, through ``resuming``). Where each status is written: the
"Run statuses" section of docs/chaining.md.
"""

from __future__ import annotations

from enum import StrEnum

from taskq.errors import InvalidTransition


class Status(StrEnum):
    CREATED = "created"
    #: Waiting for a schedule's time (Polyaxon's ``on_schedule``).
    ON_SCHEDULE = "on_schedule"
    #: Coming back from a retry or a restart, before it is compiled again.
    RESUMING = "resuming"
    #: Checked and resolved (params, conditions), ready to be queued.
    COMPILED = "compiled"
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    STARTING = "starting"
    #: Its worker is preparing it (Polyaxon: init containers), before the body runs.
    INITIALIZING = "initializing"
    RUNNING = "running"
    PROCESSING = "processing"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    SKIPPED = "skipped"
    WARNING = "warning"
    UNSCHEDULABLE = "unschedulable"
    UPSTREAM_FAILED = "upstream_failed"
    RETRYING = "retrying"
    UNKNOWN = "unknown"


#: Pseudo-status matching any final status (``run_status_done``).
DONE = "done"

FINAL: frozenset[Status] = frozenset(
    {Status.SUCCEEDED, Status.FAILED, Status.STOPPED, Status.SKIPPED, Status.UPSTREAM_FAILED}
)

#: Statuses from which a worker may start executing the run (the claim in task_prerun).
STARTABLE: frozenset[Status] = frozenset(
    {Status.CREATED, Status.ON_SCHEDULE, Status.RESUMING, Status.COMPILED, Status.QUEUED,
     Status.SCHEDULED, Status.STARTING, Status.INITIALIZING, Status.RETRYING,
     Status.UNSCHEDULABLE, Status.UNKNOWN, Status.WARNING}
)

_PENDING = frozenset({Status.CREATED, Status.ON_SCHEDULE, Status.RESUMING, Status.COMPILED,
                      Status.QUEUED, Status.SCHEDULED, Status.STARTING, Status.INITIALIZING})
#: Not started yet: stopping one needs no worker.
PENDING: frozenset[Status] = _PENDING | {Status.RETRYING, Status.UNSCHEDULABLE}
_ACTIVE = frozenset({Status.RUNNING, Status.PROCESSING, Status.WARNING})
#: Started and not finished: what a worker that vanished leaves behind.
ACTIVE: frozenset[Status] = _ACTIVE
#: What a job may set on itself (``current.set_status``).
SETTABLE: frozenset[Status] = frozenset({Status.PROCESSING, Status.WARNING})
#: What ``taskq runs resume`` brings back (as a new incarnation).
RESUMABLE: frozenset[Status] = frozenset({Status.STOPPED, Status.FAILED})
#: ``runs.approval`` of a run that needs approval: it waits ``created``, unsent, until
#: approved (then queued) or invalidated (then skipped, never run).
APPROVAL_WAITING, APPROVED, INVALIDATED = "waiting", "approved", "invalidated"
#: Published and not yet claimed by a worker: the redelivery sweep's to resend if lost.
AWAITING_START: frozenset[Status] = frozenset({Status.QUEUED, Status.SCHEDULED,
                                               Status.STARTING})

# Allowed predecessors of each status. Anything not listed is refused.
_ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset(),
    Status.ON_SCHEDULE: frozenset({Status.CREATED}),
    # Polyaxon compiles only from created, on_schedule, resuming and retrying.
    Status.RESUMING: frozenset({Status.CREATED, Status.ON_SCHEDULE, Status.RETRYING,
                                Status.UNSCHEDULABLE, Status.UNKNOWN}),
    Status.COMPILED: frozenset({Status.CREATED, Status.ON_SCHEDULE, Status.RESUMING,
                                Status.RETRYING}),
    Status.QUEUED: frozenset({Status.CREATED, Status.COMPILED, Status.RESUMING,
                              Status.RETRYING, Status.UNSCHEDULABLE}),
    Status.SCHEDULED: frozenset({Status.CREATED, Status.COMPILED, Status.QUEUED,
                                 Status.RETRYING}),
    Status.STARTING: frozenset({Status.CREATED, Status.COMPILED, Status.QUEUED,
                                Status.SCHEDULED, Status.RETRYING, Status.UNSCHEDULABLE}),
    Status.INITIALIZING: frozenset({Status.QUEUED, Status.SCHEDULED, Status.STARTING}),
    Status.RUNNING: STARTABLE,
    Status.PROCESSING: frozenset({Status.RUNNING, Status.WARNING}),
    Status.WARNING: _ACTIVE | _PENDING,
    Status.RETRYING: _ACTIVE | _PENDING,
    Status.UNSCHEDULABLE: _PENDING,
    Status.UNKNOWN: _ACTIVE | _PENDING | {Status.RETRYING, Status.STOPPING},
    Status.STOPPING: _ACTIVE | _PENDING | {Status.RETRYING, Status.UNKNOWN},
    Status.SUCCEEDED: _ACTIVE | {Status.STOPPING, Status.UNKNOWN},
    Status.FAILED: _ACTIVE | _PENDING | {Status.RETRYING, Status.STOPPING, Status.UNKNOWN,
                                         Status.UNSCHEDULABLE},
    Status.STOPPED: _ACTIVE | _PENDING | {Status.RETRYING, Status.STOPPING, Status.UNKNOWN,
                                          Status.UNSCHEDULABLE},
    Status.SKIPPED: _PENDING | {Status.UNSCHEDULABLE},
    Status.UPSTREAM_FAILED: _PENDING | {Status.UNSCHEDULABLE},
}


def is_final(status: Status) -> bool:
    return status in FINAL


def allowed_from(new: Status) -> frozenset[Status]:
    """The statuses a run may hold for ``new`` to be applied (used as a SQL compare-and-set)."""
    return _ALLOWED_FROM[new]


def can_transition(current: Status, new: Status) -> bool:
    return current in _ALLOWED_FROM[new]


def check_transition(current: Status, new: Status) -> None:
    if not can_transition(current, new):
        raise InvalidTransition(current, new)


# -- statuses as event kinds: run_status_<status> ----------------------------------------

RUN_STATUS_PREFIX = "run_status_"
RUN_STATUS_KINDS: frozenset[str] = frozenset(
    {f"{RUN_STATUS_PREFIX}{s.value}" for s in Status} | {f"{RUN_STATUS_PREFIX}{DONE}"}
)


def status_kind(status: Status | str) -> str:
    return f"{RUN_STATUS_PREFIX}{Status(status).value if status != DONE else DONE}"
