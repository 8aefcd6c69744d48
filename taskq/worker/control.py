"""A remote-control command of taskq's workers: forget that a run's task was revoked.

Celery keeps revoked task ids in every worker (and hands them to workers that join, with
mingle) for hours, and drops any message of such an id when it arrives. A run's task id is
its uuid, so a stopped run that is resumed (a new incarnation, the same uuid) would be
dropped by every worker that saw the stop: the resume broadcasts this command first.
"""

from __future__ import annotations

from typing import Any

from celery.worker import state as worker_state
from celery.worker.control import control_command

#: The command's name (``CeleryPublisher.unrevoke`` sends it).
UNREVOKE = "taskq_unrevoke"


@control_command(name=UNREVOKE, args=[("task_id", str)],  # type: ignore[untyped-decorator]
                 signature="<task_id>")
def taskq_unrevoke(state: Any, task_id: str, **_: Any) -> dict[str, str]:
    """Forget that task ``task_id`` was revoked (taskq: its run was resumed)."""
    worker_state.revoked.discard(task_id)
    return {"ok": f"{task_id} no longer revoked"}
