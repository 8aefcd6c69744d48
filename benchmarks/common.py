"""What every benchmark sets up the same way: the Redis to use and a private taskq home."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import redis


def pick_redis(explicit: str | None, home: Path) -> str:
    """The given URL, else db 12 of a local Redis (tests use 11), else a bundled server."""
    if explicit:
        return explicit
    local = "redis://127.0.0.1:6379/12"
    try:
        if redis.Redis.from_url(local, socket_connect_timeout=1).ping():
            return local
    except redis.RedisError:
        pass
    from taskq.stream.embedded_redis import ensure_redis

    return f"unix://{ensure_redis(home)}?db=12"


def bench_env(redis_url: str | None, database_url: str | None, queues: str
              ) -> tuple[Path, str, str]:
    """A fresh home, the URLs, and the TASKQ_* environment every process of the run shares;
    the benchmark's Redis database is flushed."""
    home = Path(tempfile.mkdtemp(prefix="taskq-bench-"))
    url = pick_redis(redis_url, home)
    db_url = database_url or f"sqlite:///{home / 'bench.db'}"
    os.environ.update({"TASKQ_REDIS_URL": url, "TASKQ_DATABASE_URL": db_url,
                       "TASKQ_HOME": str(home), "TASKQ_IMPORTS": "benchmarks.bench_jobs",
                       "TASKQ_QUEUES": queues})
    redis.Redis.from_url(url).flushdb()
    return home, url, db_url


def start_bench_workers(root: Path, home: Path) -> list[Any]:
    """The evaluator worker and the job worker (queue ``bench``, prefork 2) the latency
    benchmarks share, with ``root``'s taskq on the path, once both answer a ping (at
    WARNING level a worker never logs " ready.")."""
    from taskq.dev import processes
    from taskq.runtime import get_runtime

    env = dict(os.environ, PYTHONPATH=str(root))
    logdir = home / "logs"
    procs = [
        processes.start_worker("evaluator", ["taskq.triggers"], env=env, logdir=logdir,
                               concurrency=2, loglevel="WARNING"),
        processes.start_worker("bench", ["bench"], env=env, logdir=logdir, concurrency=2,
                               loglevel="WARNING"),
    ]
    try:
        app = get_runtime().celery
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(app.control.ping(timeout=0.5) or []) < 2:
            pass
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return procs
