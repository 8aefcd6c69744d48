"""Imported by a test's worker (``TASKQ_IMPORTS``): with ``TASKQ_CRASH_AT=broker_delivered``
the worker SIGKILLs itself after Redis handed it a job's message (BRPOP returned) and before
kombu records it in the ``unacked`` hash: the one moment a killed worker takes the message
with it. ``TASKQ_CRASH_ONCE=<file>`` makes it happen once, as in ``taskq.crash_points``.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from kombu.transport import redis as kombu_redis

from taskq import constants

POINT = "broker_delivered"
_original = kombu_redis.QoS.append


def _append(self: Any, message: Any, delivery_tag: Any) -> Any:
    task = str((message.headers or {}).get("task") or "")
    if os.environ.get("TASKQ_CRASH_AT") == POINT and task.startswith(constants.JOB_TASK_PREFIX):
        once = os.environ.get("TASKQ_CRASH_ONCE")
        try:
            if once:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os.kill(os.getpid(), signal.SIGKILL)
        except FileExistsError:
            pass
    return _original(self, message, delivery_tag)


kombu_redis.QoS.append = _append
