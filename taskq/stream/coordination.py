"""Redis as the place processes agree: the trigger version, single-runner locks, the set of
live evaluator loops, and small cursors (the reconciler's position in the stream).

Written once here so the services never hold a Redis client: the reconciler, the relay and
the poller each take :meth:`RedisCoordination.single_runner` instead of a lock of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from taskq import constants

log = logging.getLogger(__name__)


class RedisCoordination:
    def __init__(self, client: redis.Redis, *, members: str = constants.EVALUATORS_LIVE,
                 lease: float | None = None) -> None:
        self.redis = client
        self.members_key = members
        #: Read when built, so a test (or a process) may shorten the constant first.
        self.lease = constants.LOCK_LEASE_SECONDS if lease is None else lease

    # -- trigger version ------------------------------------------------------------------

    def trigger_version(self) -> Any:
        return self.redis.get(constants.TRIGGERS_VERSION)

    def bump_triggers(self) -> None:
        """Evaluators reload at once; if Redis is away they re-check the database within
        seconds anyway, so a failed bump is not an error."""
        try:
            self.redis.incr(constants.TRIGGERS_VERSION)
        except redis.RedisError:
            pass

    # -- one runner at a time -------------------------------------------------------------

    @contextmanager
    def single_runner(self, name: str, *, timeout: float) -> Iterator[bool]:
        """Yields True to the one holder, False to everyone else (who should skip).

        The lock is a short lease renewed while the body runs, so a holder killed outright
        (SIGKILL, OOM) frees it within about a lease; ``timeout`` is still the longest a
        holder keeps it, however long its body runs. Not thread-local: the renewing thread
        must present the holder's token.
        """
        lock = self.redis.lock(name, timeout=min(self.lease, timeout), blocking=False,
                               thread_local=False)
        if not lock.acquire(blocking=False):
            yield False
            return
        renewal = _Renewal(lock, lease=self.lease, timeout=timeout)
        try:
            yield True
        finally:
            renewal.stop()
            try:
                lock.release()
            except redis.RedisError:  # expired: harmless, the next run takes over
                pass

    # -- small values ---------------------------------------------------------------------

    def get_value(self, key: str) -> str | None:
        raw: Any = self.redis.get(key)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def set_value(self, key: str, value: str) -> None:
        self.redis.set(key, value)

    def remember(self, key: str, value: str, *, ttl_seconds: int) -> None:
        self.redis.set(key, value, ex=max(1, ttl_seconds))

    # -- live members (evaluator loops) ---------------------------------------------------

    def heartbeat(self, member: str, at: float) -> None:
        self.redis.zadd(self.members_key, {member: at})

    def prune_members(self, before: float) -> None:
        self.redis.zremrangebyscore(self.members_key, 0, before)

    def is_member(self, member: str) -> bool:
        return self.redis.zscore(self.members_key, member) is not None

    def member_count(self) -> int:
        return int(self.redis.zcard(self.members_key))

    def leave(self, member: str) -> None:
        self.redis.zrem(self.members_key, member)

    def members(self) -> dict[str, float]:
        rows: Any = self.redis.zrange(self.members_key, 0, -1, withscores=True)
        return {_text(m): float(at) for m, at in rows}

    # -- health (what an outage does to the evaluators) -----------------------------------

    def set_health(self, member: str, value: str) -> None:
        self.redis.hset(constants.EVALUATORS_HEALTH, member, value)

    def health(self) -> dict[str, str]:
        raw: Any = self.redis.hgetall(constants.EVALUATORS_HEALTH)
        return {_text(k): _text(v) for k, v in raw.items()}

    def clear_health(self) -> None:
        self.redis.delete(constants.EVALUATORS_HEALTH)


class _Renewal:
    """Renews a held lock's lease from a daemon thread until stopped or ``timeout`` is
    reached (the last renewal ends the lease at that deadline). A failed renewal never
    reaches the body: Redis away is retried on the next tick, a lock lost ends renewing."""

    def __init__(self, lock: Lock, *, lease: float, timeout: float) -> None:
        self.lock = lock
        self.lease = lease
        self.deadline = time.monotonic() + timeout
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        if timeout > lease:
            self.thread = threading.Thread(target=self._run, daemon=True,
                                           name=f"taskq-lease:{_text(lock.name)}")
            self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            # Bounded: a renewal stuck on an unreachable Redis must not hold up the body's
            # exit; one landing after release fails on the token and changes nothing.
            self.thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self.stopped.wait(self.lease / 3):
            left = self.deadline - time.monotonic()
            if left <= 0:
                return
            try:
                self.lock.extend(min(self.lease, left), replace_ttl=True)
            except LockNotOwnedError:
                log.warning("taskq: lock %s expired or was taken while its holder ran; "
                            "no longer renewed", _text(self.lock.name))
                return
            except redis.RedisError as exc:
                log.debug("taskq: renewing lock %s failed (%s); retrying",
                          _text(self.lock.name), exc)
                continue
            if left <= self.lease:
                return  # the lease now ends at the deadline


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
