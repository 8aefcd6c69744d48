"""Start and stop real Celery processes (workers, beat, flower) for ``taskq dev``, the
benchmarks and the integration tests. Ordinary ``celery`` command lines, nothing special.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready_marker: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_marker and self.ready_marker in self.output():
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n"
                                   f"{self.output()[-4000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.output()[-4000:]}")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the worker and its pool children)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(5)

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.popen.pid)], capture_output=True,
                             text=True, check=False).stdout
        return [int(p) for p in out.split()]


def _spawn(name: str, args: list[str], env: dict[str, str], logdir: Path,
           marker: str | None) -> Proc:
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    fh = log.open("wb")
    popen = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    fh.close()
    return Proc(name=name, popen=popen, log=log, ready_marker=marker)


def celery_args(*rest: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "taskq.app", *rest]


def start_worker(name: str, queues: list[str], *, env: dict[str, str], logdir: Path,
                 concurrency: int = 1, pool: str = "prefork", loglevel: str = "INFO",
                 extra_args: tuple[str, ...] = ()) -> Proc:
    args = celery_args("worker", "-Q", ",".join(queues), "-c", str(concurrency), "-P", pool,
                       "-n", f"{name}@%h", "-l", loglevel, "--without-gossip",
                       "--without-mingle", "-E", *extra_args)
    return _spawn(name, args, env, logdir, marker=" ready.")


def start_beat(*, env: dict[str, str], logdir: Path, home: Path) -> Proc:
    home.mkdir(parents=True, exist_ok=True)
    schedule = home / "celerybeat-schedule"
    args = celery_args("beat", "-l", "INFO", "-s", str(schedule), "--max-interval", "1")
    return _spawn("beat", args, env, logdir, marker="beat: Starting")


def start_flower(*, env: dict[str, str], logdir: Path, port: int, basic_auth: str) -> Proc:
    args = celery_args("flower", f"--port={port}", "--address=127.0.0.1",
                       f"--basic-auth={basic_auth}", "--persistent=False")
    return _spawn("flower", args, env, logdir, marker="Visit me at")
