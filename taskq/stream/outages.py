"""Which Redis (and broker) errors mean "the service is away", not "this entry is bad"."""

from __future__ import annotations

import redis

#: Replies of a server that is starting, failing over, out of memory or refusing writes.
_UNAVAILABLE = ("LOADING", "READONLY", "MASTERDOWN", "OOM", "CLUSTERDOWN", "TRYAGAIN",
                "NOREPLICAS", "MISCONF", "BUSY ")


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return True  # BusyLoadingError and AuthenticationError included
    if isinstance(exc, redis.ReadOnlyError | redis.OutOfMemoryError):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_UNAVAILABLE)
