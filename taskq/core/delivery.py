"""Telling, from what SQL remembers and what Redis shows, that Redis lost its data.

Pure: the reconciler reads the values (an epoch token kept in both SQL and a Redis key, the
last stream id it saw, the stream's and the consumer group's positions) and this module
decides. A Redis that lost data is not an error to raise but a state to repair: every event
the database has not recorded as evaluated is emitted again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamState:
    """What the event stream's key says about itself (XINFO STREAM / XINFO GROUPS)."""

    exists: bool
    last_id: str | None = None
    #: The evaluators' group's last delivered id; None when the group is missing.
    group_last_id: str | None = None


def parse_stream_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def redis_lost(*, epoch_sql: str | None, epoch_redis: str | None, seen_sql: str | None,
               state: StreamState) -> str | None:
    """Why Redis is known to have lost data, or None.

    ``epoch_sql`` is the token the reconciler wrote to SQL and to a Redis key; the key is
    gone (or different) only if Redis lost or replaced its data: a restart that kept its data
    (AOF, RDB) keeps the key, so a new ``run_id`` alone is no evidence. ``seen_sql`` is the
    last stream id the reconciler saw: a stream whose last id is below it went back in time
    (restored from an older snapshot, or deleted).
    """
    if epoch_sql is None:
        return None  # the first pass ever: nothing was promised yet
    if epoch_redis != epoch_sql:
        return "the epoch key is gone" if epoch_redis is None else "the epoch key changed"
    if seen_sql and seen_sql != "0":
        seen = parse_stream_id(seen_sql)
        if not state.exists or state.last_id is None:
            return f"the event stream is gone (last seen entry {seen_sql})"
        if parse_stream_id(state.last_id) < seen:
            return f"the event stream went back from {seen_sql} to {state.last_id}"
    if (state.exists and state.last_id is not None and state.group_last_id is not None
            and parse_stream_id(state.group_last_id) > parse_stream_id(state.last_id)):
        return (f"the consumer group is ahead of the stream ({state.group_last_id} > "
                f"{state.last_id})")
    return None
