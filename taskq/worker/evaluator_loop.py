"""One evaluator loop in a process of its own: ``python -m taskq.worker.evaluator_loop``.

The worker's bootstep (:mod:`taskq.worker.evaluator_step`) starts these beside its pool, so
the loop never holds a pool slot a job could use. A fresh interpreter, not a fork of the
worker: it inherits none of the worker's sockets (a forked copy of the broker connection
could keep a BRPOP alive that nobody reads) and its main thread keeps SIGALRM for the
template time limit. It stops on SIGTERM, SIGINT or SIGHUP after the current read (at most
``TASKQ_EVALUATOR_BLOCK_MS``), leaving its slot, and on its own when the worker that
started it is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from celery import platforms

from taskq.runtime import get_runtime
from taskq.services.serving import serve

#: The environment variable naming the worker process that started the loop.
PARENT_ENV = "TASKQ_EVALUATOR_PARENT"
#: The environment variable naming the pipe on which the loop says it is up (one byte).
READY_FD_ENV = "TASKQ_EVALUATOR_READY_FD"

log = logging.getLogger("taskq.evaluator")


class _Stop:
    """Set by a signal; read between two reads of the stream."""

    def __init__(self, parent: int | None) -> None:
        self.parent = parent
        self.requested = False

    def request(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __call__(self) -> bool:
        return self.requested or (self.parent is not None and os.getppid() != self.parent)


def _tell_ready(consumer: str, evaluators: int) -> None:
    log.info("taskq: evaluator loop %s started (at most %d across workers)", consumer,
             evaluators)
    raw = os.environ.pop(READY_FD_ENV, None)
    if raw:
        try:
            os.write(int(raw), b"1")
            os.close(int(raw))
        except OSError:  # the worker stopped waiting: nothing to tell
            pass


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(asctime)s: %(levelname)s/taskq-evaluator %(process)d] "
                               "%(message)s")
    raw = os.environ.get(PARENT_ENV)
    stop = _Stop(int(raw) if raw else None)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop.request)
    if stop.parent is not None:
        platforms.set_pdeathsig("SIGKILL")  # the worker died without stopping us
    rt = get_runtime()
    ev = rt.evaluator()
    serve(ev, slice_seconds=rt.settings.evaluator_slice_seconds, stop=stop,
          ready=lambda: _tell_ready(ev.consumer, rt.settings.evaluators))
    log.info("taskq: evaluator loop %s stopped: %d entries, %d firings", ev.consumer,
             ev.stats.processed, ev.stats.fired)
    return 0


if __name__ == "__main__":
    sys.exit(main())
