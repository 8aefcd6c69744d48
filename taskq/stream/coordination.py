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
        self.members_key = members

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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
