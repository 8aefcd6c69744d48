"""A worker's heartbeat: what tells the sweep that its runs are still being run.

A daemon thread of the worker's MainProcess refreshes the worker's liveness key every
``worker_lost_after_seconds / 6`` with a time to live of half the bound; a worker killed
whole stops refreshing it and its key expires (``services.worker_loss``). A thread, not a
Celery timer: a MainProcess busy with its consumer still beats.

The identity is the Celery hostname plus a token of this worker's start: a worker restarted
under the same hostname (a container restarted in place) beats as a new worker, so the runs
of the one that was killed are still judged dead. The token is made when the worker imports
this module (before its pool forks) and kept in the environment, so every pool process,
forked or spawned, claims runs under the identity its MainProcess beats for.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence

from taskq.runtime import get_runtime
from taskq.services import worker_loss

log = logging.getLogger(__name__)

_BOOT_ENV = "TASKQ_WORKER_BOOT"
_started: set[str] = set()
_lock = threading.Lock()
os.environ.setdefault(_BOOT_ENV, uuid.uuid4().hex[:12])


def identity(hostname: str) -> str:
    """What a run records as its claiming worker, and what that worker beats for."""
    return f"{hostname}/{os.environ[_BOOT_ENV]}"


def _beat_once(hostname: str, queues: Sequence[str] = ()) -> None:
    try:
        worker_loss.beat(get_runtime(), hostname, time.time(), queues)
    except Exception as exc:  # Redis away: the next beat tries again
        log.warning("taskq: worker heartbeat of %s failed: %s", hostname, exc)


def _loop(hostname: str, every: float, queues: Sequence[str]) -> None:
    while True:
        time.sleep(every)
        _beat_once(hostname, queues)


def start(hostname: str, queues: Sequence[str] = ()) -> None:
    """Beat now (before the first run is claimed), then in the background; once per
    hostname and process. ``queues`` (those the worker consumes) are beaten for too: a
    run queued on a queue none has is ``unschedulable``."""
    with _lock:
        if hostname in _started:
            return
        _started.add(hostname)
    _beat_once(hostname, queues)
    every = worker_loss.heartbeat_every(get_runtime())
    threading.Thread(target=_loop, args=(hostname, every, tuple(queues)),
                     name="taskq-liveness", daemon=True).start()
