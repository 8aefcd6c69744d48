"""Single-runner locks are short leases: a holder killed outright must not keep, say, loss
detection after a Redis restart from running until the pass's whole timeout has gone by."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from taskq import constants
from taskq.stream.coordination import RedisCoordination
from tests.conftest import ROOT, wait_for
from tests.integration.test_redis_loss import OwnRedis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: Shortened for the test; the holder process sets the same constant before it builds its
#: coordination, as any taskq process could.
LEASE = 1.0

HOLDER = """
import sys, time
import redis
from taskq import constants
constants.LOCK_LEASE_SECONDS = float(sys.argv[2])
from taskq.stream.coordination import RedisCoordination
coord = RedisCoordination(redis.Redis.from_url(sys.argv[1]))
with coord.single_runner(constants.RECONCILE_LOCK, timeout=120) as mine:
    print("held" if mine else "refused", flush=True)
    time.sleep(600)
"""


def _acquires(coord: RedisCoordination) -> bool:
    with coord.single_runner(constants.RECONCILE_LOCK, timeout=120) as mine:
        return mine


def test_killed_holder_frees_the_lock_within_a_lease(redis_url: str, r: redis.Redis) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, redis_url, str(LEASE)],
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        other = RedisCoordination(r)
        time.sleep(3 * LEASE)  # well past one lease: only renewal keeps it
        assert holder.poll() is None
        assert not _acquires(other), "the live holder's lock was free"
        assert 0 < r.pttl(constants.RECONCILE_LOCK) <= LEASE * 1000

        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        wait_for(lambda: _acquires(other), 5 * LEASE, interval=0.05,
                 message="the lock free after its holder was killed")
        print(f"lock free {time.monotonic() - killed:.2f}s after SIGKILL (lease {LEASE}s)")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_timeout_still_bounds_a_renewed_hold(r: redis.Redis) -> None:
    """Renewal stops at ``timeout``: a body that runs past it no longer keeps others out."""
    coord = RedisCoordination(r, lease=0.5)
    body_done = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with coord.single_runner(constants.RECONCILE_LOCK, timeout=2.0) as mine:
            assert mine
            held.set()
            body_done.wait(30)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    try:
        assert held.wait(10)
        time.sleep(1.2)  # past two leases, before the timeout
        assert not _acquires(coord)
        started = time.monotonic()
        wait_for(lambda: _acquires(coord), 10, message="the lock free after its timeout")
        print(f"lock free {time.monotonic() - started + 1.2:.2f}s into a 2s timeout")
    finally:
        body_done.set()
        t.join(10)


def test_redis_away_does_not_reach_the_body(tmp_path: Path) -> None:
    """Renewals fail while Redis is down; the body still finishes and leaves cleanly."""
    own = OwnRedis(tmp_path / "redis")
    own.start()
    client = redis.Redis.from_url(own.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        coord = RedisCoordination(client, lease=0.3)
        with coord.single_runner(constants.RECONCILE_LOCK, timeout=30) as mine:
            assert mine
            own.stop()
            time.sleep(1.5)  # several failed renewals
        own.start()  # empty, so the lock is free again
        assert _acquires(coord)
    finally:
        client.close()
        own.stop()
