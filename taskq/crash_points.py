"""Named crash points, so tests can SIGKILL a real process at an exact step.

Set ``TASKQ_CRASH_AT=<point>`` in a process's environment and it kills itself (SIGKILL, no
cleanup, as the OOM killer would) when it reaches that point. With ``TASKQ_CRASH_ONCE=<file>``
it crashes only if that file does not exist yet (and creates it), so a restarted process
carrying the same environment gets past the point. Unset, a crash point is one lookup.
"""

from __future__ import annotations

import os
import signal

#: Points the dispatch path exposes, in order.
BEFORE_RECORD = "before_record"  # a batch's firings planned, its transaction not begun
AFTER_RECORD = "after_record"  # firing + run + outbox committed, nothing published
AFTER_PUBLISH = "after_publish"  # task published, outbox not yet marked, entry not acked


def crash_point(name: str) -> None:
    if os.environ.get("TASKQ_CRASH_AT") != name:
        return
    once = os.environ.get("TASKQ_CRASH_ONCE")
    if once:
        try:
            fd = os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
