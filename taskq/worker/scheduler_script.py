"""``TriggerScheduler.start_remotely()`` of a script whose schedule_functions live in it.

ClearML re-runs the scheduler's whole script on an agent, which is why functions defined
in ``__main__`` work there. taskq does the same: the run of ``taskq.trigger-scheduler``
carries the script's source, and the worker runs it as a program of its own (its own
``__main__``) with ``TASKQ_SCHEDULER_RUN`` set, so that the script's ``start_remotely()``
becomes ``start()`` there. Its ``add_*`` calls find their triggers stored already (the
same trigger added again is a no-op). The program lives and dies with the run: stopping
the run or losing the worker ends it (on Linux the kernel delivers the parent's death).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import IO

from taskq import constants

_PR_SET_PDEATHSIG = 1
_TAIL_LINES = 20


def run_script(source: str, name: str, *, run_uuid: str, namespace: str,
               seconds: float | None) -> None:
    """Run ``source`` as the program ``name`` until it ends (or ``seconds`` pass); a
    program that fails raises with the last line it wrote to stderr."""
    folder = Path(tempfile.mkdtemp(prefix="taskq-scheduler-"))
    path = folder / _file_name(name)
    path.write_text(source, encoding="utf-8")
    env = {**os.environ, constants.SCHEDULER_RUN_ENV: run_uuid,
           "TASKQ_NAMESPACE": namespace, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(path)], cwd=str(folder), env=env, stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    assert proc.stderr is not None
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    relay = threading.Thread(target=_relay, args=(proc.stderr, tail), daemon=True)
    relay.start()
    try:
        code = proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        _end(proc)
        return
    finally:
        if proc.poll() is None:  # the job itself is ending (revoked, worker shutdown)
            _end(proc)
        relay.join(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)
    if code != 0:
        last = next((line for line in reversed(tail) if line.strip()), "")
        raise RuntimeError(f"the scheduler script {name!r} exited with code {code}"
                           + (f": {last.strip()}" if last else ""))


def _file_name(name: str) -> str:
    """The script's own base name where it is a plain one (its tracebacks then read as
    the user's file), else a neutral one."""
    base = Path(name).name
    plain = 3 < len(base) <= 100 and all(c.isascii() and (c.isalnum() or c in "_.-")
                                         for c in base)
    return base if plain and base.endswith(".py") else "scheduler.py"


def _relay(stream: IO[bytes], tail: deque[str]) -> None:
    """The program's stderr goes on to the worker's, and its last lines are kept for the
    run's failure reason."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        tail.append(line)
        sys.stderr.write(line)
    stream.close()


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the worker process that started it dies,
    so a SIGKILLed worker leaves no scheduler behind calling functions."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
