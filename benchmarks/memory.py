"""Memory: the evaluator's resident set over a long run, against the run's first 100,000.

    python benchmarks/memory.py [--events 1000000] [--rules 1000] [--database-url URL]
                                [--redis-url URL] [--json FILE]

One evaluator, in this process as a worker's evaluator loop runs it, drains ``--events``
custom events appended to the stream in chunks (so the stream never nears its cap), one in
a hundred firing one of ``--rules`` rules (its clone published to a queue nobody consumes,
emptied as it goes), the rest matching nothing, each event with its own name and payload
so that no cache is helped by repetition. Prints the RSS every 100,000 events and its
growth from the figure after the first 100,000 (the warm-up: imports, rule index, pools);
never asserts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import redis

ROOT = Path(os.environ.get("TASKQ_BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_env  # noqa: E402

SINK = "bench-sink"
CHUNK = 10_000
EVERY = 100_000

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--events", type=int, default=1_000_000)
ap.add_argument("--rules", type=int, default=1000)
ap.add_argument("--database-url")
ap.add_argument("--redis-url")
ap.add_argument("--json", help="also write the figures to this file")


def rss_mib() -> float:
    """The resident set now (not the peak): /proc/self/statm's second field, in pages."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    args = ap.parse_args()
    _, redis_url, db_url = bench_env(args.redis_url, args.database_url, SINK)
    r = redis.Redis.from_url(redis_url)

    from benchmarks import bench_jobs  # noqa: F401  - the target job's template
    from taskq import constants
    from taskq.core.events import custom_event
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates
    from taskq.store import migrate

    migrate.upgrade(db_url)
    rt = get_runtime()
    sync_job_templates(rt)
    rt.store.add_triggers([{"name": f"mem-{i}", "namespace": "default", "kind": "event",
                            "spec": {"ref": f"events.hit-{i}", "kinds": ["custom_event"]},
                            "job": "bench_down", "params": {}, "queue": SINK,
                            "enabled": True} for i in range(args.rules)])
    r.incr(constants.TRIGGERS_VERSION)
    ev = rt.evaluator()
    ev.refresh(force=True)

    samples: list[dict[str, float]] = []
    start = time.perf_counter()
    sent = 0
    while sent < args.events:
        pipe = r.pipeline(transaction=False)
        for i in range(sent, min(args.events, sent + CHUNK)):
            name = f"hit-{i % args.rules}" if i % 100 == 0 else f"miss-{i}"
            pipe.xadd(constants.EVENTS_STREAM,
                      custom_event(name, {"i": i, "tag": f"t{i}"}).to_fields())  # type: ignore[arg-type]
        pipe.execute()
        sent = min(args.events, sent + CHUNK)
        while ev.stats.processed < sent:
            ev.run_once(block_ms=50)
        r.delete(SINK)
        if sent % EVERY == 0:
            samples.append({"events": sent, "rss_mib": rss_mib(),
                            "seconds": time.perf_counter() - start})
            print(f"{sent:>9,} events  RSS {samples[-1]['rss_mib']:7.1f} MiB  "
                  f"{samples[-1]['seconds']:6.0f} s", flush=True)
    while ev.run_once(block_ms=50):  # the clones' own events, appended as it went
        pass
    ev.flush_marks()
    base = samples[0]["rss_mib"]
    growth = (samples[-1]["rss_mib"] - base) / base
    figures = {"database": db_url.split(":", 1)[0], "rules": args.rules,
               "fired": ev.stats.fired, "samples": samples, "growth_after_warmup": growth}
    print(f"\nevaluator RSS {base:.1f} MiB after {samples[0]['events']:,} events, "
          f"{samples[-1]['rss_mib']:.1f} MiB after {samples[-1]['events']:,}: "
          f"{growth:+.1%} (target <= +10%); {ev.stats.fired:,} firings")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
