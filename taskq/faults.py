"""Named crash points, so tests can SIGKILL a real process at an exact step.

Set ``TASKQ_CRASH_AT=<point>`` in a process's environment and it kills itself (SIGKILL, no
cleanup, as the OOM killer would) the first time it reaches that point. Unset, a crash point
is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

#: Points the dispatch path exposes, in order.
AFTER_RECORD = "after_record"  # firing + run + outbox committed, nothing published
AFTER_PUBLISH = "after_publish"  # task published, outbox not yet marked, entry not acked


def crash_point(name: str) -> None:
    if os.environ.get("TASKQ_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
