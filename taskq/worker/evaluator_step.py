"""The evaluator beside the pool: a worker bootstep for every worker consuming taskq.triggers.

The loop used to be a Celery task holding a pool slot for a whole slice; on a worker that
also runs jobs (`-Q train,viz,taskq.triggers -c 2`) it starved them. This step starts
``settings.evaluators`` loop processes next to the pool instead, whatever the pool, its
concurrency and the other queues; the coordination slots still bound the loops across all
workers to ``TASKQ_EVALUATORS`` (the extra ones stand by). A warm shutdown asks each loop to
stop after its current read and waits for it; a loop that died is started again.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from celery import bootsteps

from taskq import constants
from taskq.settings import get_settings
from taskq.worker.evaluator_loop import PARENT_ENV, READY_FD_ENV

log = logging.getLogger(__name__)

#: How often the worker checks that its loops are alive.
SUPERVISE_SECONDS = 2.0
#: A cold shutdown waits this long for the loops before killing them.
TERMINATE_GRACE_SECONDS = 2.0
#: Beyond one stream read, what a warm shutdown gives a loop to finish its entries.
STOP_GRACE_SECONDS = 10.0
#: How long a starting worker waits for its loops to be up before it says it is ready.
READY_WAIT_SECONDS = 60.0


def consumed_queues(worker: Any) -> set[str]:
    """The queues this worker consumes (`-Q`, or every declared queue without it)."""
    try:
        return {str(name) for name in worker.app.amqp.queues.consume_from}
    except Exception:
        return set()


def start_loop() -> tuple[subprocess.Popen[bytes], int]:
    """A loop process and the pipe on which it says it is up (joined or standing by)."""
    read_end, write_end = os.pipe()
    env = dict(os.environ)
    env[PARENT_ENV] = str(os.getpid())
    env[READY_FD_ENV] = str(write_end)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "taskq.worker.evaluator_loop"],
                                env=env, stdin=subprocess.DEVNULL, pass_fds=(write_end,))
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return proc, read_end


def wait_ready(started: list[tuple[subprocess.Popen[bytes], int]], timeout: float) -> None:
    """Until every loop is up, so that a worker that says it is ready evaluates (a fresh
    interpreter takes a second or two to import); a loop that dies or is slow is only
    logged: the worker's supervision takes it from there."""
    deadline = time.monotonic() + timeout
    waiting = {fd: proc for proc, fd in started}
    try:
        while waiting and time.monotonic() < deadline:
            readable, _, _ = select.select(list(waiting), [], [],
                                           max(0.0, deadline - time.monotonic()))
            for fd in readable:
                waiting.pop(fd)
        for proc in waiting.values():
            log.warning("taskq: evaluator loop %s not up after %.0fs", proc.pid, timeout)
    finally:
        for _, fd in started:
            os.close(fd)


class EvaluatorStep(bootsteps.StartStopStep):  # type: ignore[misc]
    label = "taskq evaluator"
    # After the pool and the timer (the supervision runs on it), before the consumer.
    requires = ("celery.worker.components:Pool", "celery.worker.components:Timer")

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.loops: list[subprocess.Popen[bytes]] = []
        self.stopping = False
        self._tref: Any = None

    def start(self, worker: Any) -> None:
        if constants.TRIGGERS_QUEUE not in consumed_queues(worker):
            return
        settings = get_settings()
        started = [start_loop() for _ in range(settings.evaluators)]
        self.loops = [proc for proc, _ in started]
        wait_ready(started, READY_WAIT_SECONDS)
        log.info("taskq: %d evaluator loop(s) beside the pool (pids %s), at most %d "
                 "evaluating across workers", len(self.loops),
                 ", ".join(str(p.pid) for p in self.loops), settings.evaluators)
        self._tref = worker.timer.call_repeatedly(SUPERVISE_SECONDS, self.supervise)

    def supervise(self) -> None:
        if self.stopping:
            return
        for i, proc in enumerate(self.loops):
            code = proc.poll()
            if code is not None:
                log.warning("taskq: evaluator loop %s exited with %s; starting another",
                            proc.pid, code)
                self.loops[i], ready = start_loop()
                os.close(ready)  # the worker is running: nobody waits for this one

    def stop(self, worker: Any) -> None:
        """Warm shutdown: each loop finishes its read, its entries and leaves its slot."""
        self._halt(get_settings().evaluator_block_ms / 1000 + STOP_GRACE_SECONDS)

    def terminate(self, worker: Any) -> None:
        self._halt(TERMINATE_GRACE_SECONDS)

    def shutdown(self, worker: Any) -> None:
        self._halt(TERMINATE_GRACE_SECONDS)

    def _halt(self, grace: float) -> None:
        self.stopping = True
        if self._tref is not None:
            try:
                self._tref.cancel()
            except Exception:
                pass
            self._tref = None
        for proc in self.loops:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.loops:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                # Its pending entries are reclaimed by the next loop: nothing fires twice.
                log.warning("taskq: evaluator loop %s did not stop in %.0fs; killed",
                            proc.pid, grace)
                proc.kill()
                proc.wait(5)
        self.loops = []
