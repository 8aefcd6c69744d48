"""A redis-server of one's own that keeps nothing on disk, restartable empty.

The kill tests and the chaos benchmark both need a Redis that loses its data for real, as
the embedded default and many Redis set-ups do when they restart: the database alone must
then say what was delivered. A real server on a free TCP port, never a fake.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

from taskq.stream.embedded_redis import redis_server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VolatileRedis:
    """``--save '' --appendonly no`` on a free port; ``restart_empty`` is kill -9 and a start
    on the same port, so clients reconnect to a server that holds nothing."""

    def __init__(self, logdir: Path) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        self.logdir = logdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self, timeout: float = 20.0) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        with (self.logdir / f"redis-{self.restarts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.logdir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no save, no goodbye
            self.proc.wait(10)

    def restart_empty(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            client.set("taskq-testing:before-restart", "1")
            self.stop()
            self.restarts += 1
            self.start()
            if client.exists("taskq-testing:before-restart"):
                raise RuntimeError("redis-server kept its data across the restart")
        finally:
            client.close()
