"""The bundled redis-server keeps an append-only file under the home directory, so a
restart of ``taskq dev`` (or a crash of the server) loses no event."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from taskq import constants
from taskq.stream.embedded_redis import ensure_redis, stop_redis

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", ["shutdown", "sigkill"])
def test_a_restarted_embedded_server_keeps_the_stream(tmp_path: Path, how: str) -> None:
    home = tmp_path / ".taskq"
    client = redis.Redis(unix_socket_path=str(ensure_redis(home)))
    ids = [client.xadd(constants.EVENTS_STREAM, {"event": str(i)}) for i in range(3)]
    client.close()
    if how == "shutdown":
        stop_redis(home)
    else:
        os.kill(int((home / "redis.pid").read_text()), signal.SIGKILL)
        time.sleep(0.2)
    try:
        client = redis.Redis(unix_socket_path=str(ensure_redis(home)))
        assert [sid for sid, _ in client.xrange(constants.EVENTS_STREAM)] == ids
        assert any(p.name.startswith("appendonly") for p in home.iterdir())
        client.close()
    finally:
        stop_redis(home)
