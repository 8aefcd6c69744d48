"""Jobs the latency benchmark runs. Imported by the benchmark's worker via TASKQ_IMPORTS.

Both flows hand a nanosecond timestamp to a Redis list that the driver BLPOPs, so the
driver never polls and the timestamps are taken on the very first/last statement.
"""

from __future__ import annotations

import json
import os
import time

import redis

import taskq
from taskq.app import app

DONE_LIST = "taskq:bench:done"
_r: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _r
    if _r is None:
        _r = redis.Redis.from_url(os.environ["TASKQ_REDIS_URL"])
    return _r


@app.task(name="bench.link_a", ignore_result=True)
def link_a() -> int:
    return time.time_ns()  # A's last statement: the timestamp is the return value


@app.task(name="bench.link_b", ignore_result=True)
def link_b(a_last_ns: int) -> None:
    first = time.time_ns()  # B's first statement
    _redis().rpush(DONE_LIST, json.dumps({"flow": "link", "start": a_last_ns, "end": first}))


@taskq.job(queue="bench")
def bench_up() -> None:
    """The upstream: reaching running is what fires the trigger."""
    first = time.time_ns()  # the upstream's first statement, just after it became RUNNING
    _redis().set(f"taskq:bench:up:{taskq.current.run.uuid}", first, ex=600)


@taskq.job(queue="bench", inputs={"upstream": {"type": "str"}})
def bench_down(upstream: str = "") -> None:
    first = time.time_ns()  # the cloned run's first statement
    _redis().rpush(DONE_LIST, json.dumps({"flow": "taskq", "upstream": upstream, "end": first}))


@app.task(name="bench.stamp", ignore_result=True)
def stamp(sent_ns: int) -> None:
    """Celery's own hop for the steady benchmark: ``send_task`` -> this first line."""
    first = time.time_ns()
    _redis().rpush(DONE_LIST, json.dumps({"flow": "celery", "start": sent_ns, "end": first}))
