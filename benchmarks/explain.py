"""Explain and what-if over a large event log: how long the answers take.

    python benchmarks/explain.py [--events 100000] [--what-if-events 1000000]
                                 [--database-url URL] [--redis-url URL] [--json FILE]

Stores ``--events`` published events (in batches, as ``publish_events`` does), registers one
trigger on a tenth of them, then times ``Client.explain`` over the newest of them (up to
its largest call, 100,000) and ``Client.what_if`` of a draft over all stored events
(events/s). Beside each wall time, the CPU time of this process: on a shared machine the
wall time is partly other processes' (SQLite runs in this process, PostgreSQL does not).
With ``--what-if-events`` larger, more events are stored first. The baseline printed beside
them is the rate at which the database hands the same events back (a plain read of their
rows), which bounds any pass over stored events. Prints figures; never asserts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("TASKQ_BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_env  # noqa: E402

SINK = "bench-sink"


def store_events(total: int) -> float:
    import taskq

    start = time.perf_counter()
    for b in range(0, total, 10_000):
        taskq.publish_events([{"name": f"e{i % 10}", "payload": {"i": i}}
                              for i in range(b, min(total, b + 10_000))])
    return total / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--what-if-events", type=int, default=0)
    ap.add_argument("--database-url")
    ap.add_argument("--redis-url")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    _, _, db_url = bench_env(args.redis_url, args.database_url, SINK)

    from sqlalchemy import select

    import taskq
    from benchmarks import bench_jobs  # noqa: F401  - the target job's template
    from benchmarks.throughput import sync_jobs
    from taskq.core.stored import StoredTrigger
    from taskq.runtime import get_runtime
    from taskq.store import migrate
    from taskq.store.base import RUN_EVENTS

    migrate.upgrade(db_url)
    rt = get_runtime()
    sync_jobs(rt)
    total = max(args.events, args.what_if_events)
    figures: dict[str, Any] = {"events": total, "database": db_url.split(":", 1)[0]}
    figures["store_events_per_s"] = store_events(total)
    client = taskq.Client()
    client.add_trigger(name="bench-explain", job="bench_down", queue=SINK,
                       event={"ref": "events.e3", "kinds": ["custom_event"]})

    start = time.perf_counter()
    with rt.store.read() as conn:
        rows = conn.execute(select(RUN_EVENTS.c.body)).all()
    figures["read_rows_per_s"] = len(rows) / (time.perf_counter() - start)

    start, cpu = time.perf_counter(), time.process_time()
    decisions = client.explain("bench-explain", since="1d", limit=min(total, 100_000))
    figures["explain_s"] = time.perf_counter() - start
    figures["explain_cpu_s"] = time.process_time() - cpu
    figures["explain_decisions"] = len(decisions)
    del decisions

    row = rt.store.get_trigger("bench-explain", "default")
    assert row is not None
    draft = StoredTrigger(**{**row.__dict__, "spec": {"ref": "events.e4",
                                                      "kinds": ["custom_event"]}})
    start, cpu = time.perf_counter(), time.process_time()
    answer = client.what_if("bench-explain", draft, "1d")
    elapsed = time.perf_counter() - start
    figures["what_if_events"] = answer["events"]
    figures["what_if_events_per_s"] = answer["events"] / elapsed
    figures["what_if_events_per_cpu_s"] = answer["events"] / (time.process_time() - cpu)
    figures["what_if_ratio_to_read"] = figures["what_if_events_per_s"] / figures[
        "read_rows_per_s"]

    print(f"\nexplain and what-if over {total} stored events, database {figures['database']}")
    print(f"  storing (publish_events, 10,000 a call): {figures['store_events_per_s']:9.0f}/s")
    print(f"  reading their rows back (the bound):     {figures['read_rows_per_s']:9.0f}/s")
    print(f"  explain, newest {figures['explain_decisions']:<7,}                 "
          f"{figures['explain_s']:9.2f} s (CPU {figures['explain_cpu_s']:.2f} s)")
    print(f"  what-if over all:                        {figures['what_if_events_per_s']:9.0f}"
          f"/s ({figures['what_if_ratio_to_read']:.2f} x the read; "
          f"{figures['what_if_events_per_cpu_s']:.0f} per CPU second)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
