"""Latency under a steady load: event -> cloned run's first line at 200, 500 and 1,000
events/s, beside Celery's own ``send_task`` -> first line at the same rate, in one run.

    python benchmarks/steady.py [--rates 200,500,1000] [--seconds 10] [--database-url URL]
                                [--redis-url URL] [--json FILE]

One producer paces ``publish_event`` (taskq) or ``send_task`` (Celery) at the rate, on
schedule (a late send is sent at once, never skipped, so a backlog shows as latency); one
evaluator worker and one job worker (prefork, concurrency 2, queue ``bench``) as
:mod:`benchmarks.latency` starts them. taskq's clock starts before ``publish_event`` is
called (its SQL commit and XADD count), Celery's before ``send_task``. Prints p50/p90/p99
of both and the achieved rate; never asserts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(os.environ.get("TASKQ_BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_env, start_bench_workers  # noqa: E402
from benchmarks.latency import pct  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rates", default="200,500,1000")
ap.add_argument("--seconds", type=float, default=10.0)
ap.add_argument("--database-url")
ap.add_argument("--redis-url")
ap.add_argument("--json", help="also write the figures to this file")


def paced(rate: float, seconds: float, send: Any) -> float:
    """``send(i)`` on schedule at ``rate``/s for ``seconds``; the rate achieved."""
    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        send(i)
    return n / (time.perf_counter() - start)


def collect(r: redis.Redis, n: int, done_list: str, timeout: float = 120.0) -> list[float]:
    """The latencies (ms) of ``n`` first lines, as they are pushed."""
    out: list[float] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        item = r.blpop([done_list], timeout=1)
        if item is None:
            continue
        rec = json.loads(item[1])
        start = rec["start"] if rec["flow"] == "celery" else int(rec["upstream"])
        out.append((rec["end"] - start) / 1e6)
    return out


def main() -> int:
    args = ap.parse_args()
    home, redis_url, db_url = bench_env(args.redis_url, args.database_url, "bench")
    r = redis.Redis.from_url(redis_url)

    import taskq
    from benchmarks import bench_jobs
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates
    from taskq.store import migrate

    migrate.upgrade(db_url)
    rt = get_runtime()
    sync_job_templates(rt)
    procs = start_bench_workers(ROOT, home)
    figures: dict[str, Any] = {"database": db_url.split(":", 1)[0], "rates": []}
    try:
        taskq.add_trigger(name="steady", job="bench_down",
                          event=taskq.EventTrigger(ref="events.tick", kinds=["custom_event"]),
                          params={"upstream": "{{ fields.sent }}"})

        def celery_send(_: int) -> None:
            rt.celery.send_task("bench.stamp", args=[time.time_ns()], queue="bench")

        def taskq_send(_: int) -> None:
            taskq.publish_event("tick", {"sent": str(time.time_ns())})

        for send in (celery_send, taskq_send):  # warm both paths up
            paced(50, 1.0, send)
            collect(r, 50, bench_jobs.DONE_LIST, timeout=60)
        for rate in (float(x) for x in args.rates.split(",")):
            row: dict[str, Any] = {"rate": rate}
            for flow, send in (("celery", celery_send), ("taskq", taskq_send)):
                achieved = paced(rate, args.seconds, send)
                lat = collect(r, int(rate * args.seconds), bench_jobs.DONE_LIST)
                row[flow] = {"sent_per_s": achieved, "done": len(lat),
                             "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99)}
                r.delete("bench", bench_jobs.DONE_LIST)
                time.sleep(1.0)
            figures["rates"].append(row)
            c, t = row["celery"], row["taskq"]
            print(f"{rate:6.0f}/s  celery p50 {c['p50']:7.2f} p99 {c['p99']:8.2f} "
                  f"({c['sent_per_s']:.0f}/s sent, {c['done']} done)   taskq p50 "
                  f"{t['p50']:7.2f} p99 {t['p99']:8.2f} ({t['sent_per_s']:.0f}/s sent, "
                  f"{t['done']} done)", flush=True)
    finally:
        for p in procs:
            p.stop()
    print("\nms from the producer's call to the first line; target: taskq p99 <= 20 ms at "
          "500 events/s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
