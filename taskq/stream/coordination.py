"""Redis as the place processes agree: the trigger version, single-runner locks, the set of
live evaluator loops, and small cursors (the reconciler's position in the stream).

Written once here so the services never hold a Redis client: the reconciler, the relay and
the poller each take :meth:`RedisCoordination.single_runner` instead of a lock of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from taskq import constants

log = logging.getLogger(__name__)


class RedisCoordination:
    def __init__(self, client: redis.Redis, *, members: str = constants.EVALUATORS_LIVE
                 ) -> None:
        self.redis = client
        self.members = members

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
        """Yields True to the one holder, False to everyone else (who should skip)."""
        lock = self.redis.lock(name, timeout=timeout, blocking=False)
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
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
        self.redis.zadd(self.members, {member: at})

    def prune_members(self, before: float) -> None:
        self.redis.zremrangebyscore(self.members, 0, before)

    def is_member(self, member: str) -> bool:
        return self.redis.zscore(self.members, member) is not None

    def member_count(self) -> int:
        return int(self.redis.zcard(self.members))

    def leave(self, member: str) -> None:
        self.redis.zrem(self.members, member)
