"""Jobs the chaos benchmark runs. Imported by its workers via TASKQ_IMPORTS.

Both are as small as a job gets, so what the benchmark measures is the delivery machinery
(SQL, stream, broker, evaluator, sweeps) under kills, not the work itself.
"""

from __future__ import annotations

import taskq
from benchmarks.chaos_stack import CLONE_QUEUE, SOURCE_QUEUE


@taskq.job(queue=SOURCE_QUEUE)
def chaos_src(i: int = 0) -> None:
    """The source: its reaching ``succeeded`` is what fires the trigger."""


@taskq.job(queue=CLONE_QUEUE)
def chaos_clone(upstream: str = "") -> None:
    """The clone the trigger makes, one per succeeded source run."""
