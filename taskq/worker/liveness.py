"""A worker's heartbeat: what tells the sweep that its runs are still being run.

A daemon thread of the worker's MainProcess refreshes the worker's liveness key every
``worker_lost_after_seconds / 6`` with a time to live of half the bound; a worker killed
whole stops refreshing it and its key expires (``services.worker_loss``). A thread, not a
Celery timer: a MainProcess busy with its consumer still beats.
"""

from __future__ import annotations

import logging
import threading
import time

from taskq.runtime import get_runtime
from taskq.services import worker_loss

log = logging.getLogger(__name__)

_started: set[str] = set()
_lock = threading.Lock()


def _beat_once(hostname: str) -> None:
    try:
        worker_loss.beat(get_runtime(), hostname, time.time())
    except Exception as exc:  # Redis away: the next beat tries again
        log.warning("taskq: worker heartbeat of %s failed: %s", hostname, exc)


def _loop(hostname: str, every: float) -> None:
    while True:
        time.sleep(every)
        _beat_once(hostname)


def start(hostname: str) -> None:
    """Beat now (before the first run is claimed), then in the background; once per
    hostname and process."""
    with _lock:
        if hostname in _started:
            return
        _started.add(hostname)
    _beat_once(hostname)
    every = worker_loss.heartbeat_every(get_runtime())
    threading.Thread(target=_loop, args=(hostname, every), name="taskq-liveness",
                     daemon=True).start()
