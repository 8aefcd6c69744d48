"""Throughput: how fast one evaluator drains a backlog, beside Celery's own publish rate.

    python benchmarks/throughput.py [--events 2000] [--rules 10,10000] [--database-url URL]
                                    [--redis-url URL] [--json FILE] [--evaluators 1,2]

In one run, on one Redis and one database: Celery's bare ``send_task`` rate to a queue (the
baseline), ``publish_event`` from one producer and ``publish_events`` in batches of 500,
then for each rule count a backlog of events that each fire one rule (firings/s, ratio to
the baseline) and a backlog that matches none (events/s, ratio to the smallest rule count).
The evaluator runs in this process, as a worker's evaluator loop runs it; its clones are
published to a queue nobody consumes, so the figure is the evaluator's, not a job worker's.
With ``--evaluators``, last, the same two backlogs (events of the first rule count's refs;
ten times as many for the one matching nothing) are drained again by that many evaluator
loops in processes of their own (:mod:`benchmarks.scale_out`): the combined rate, each
loop's own rate and the CPU each loop used. Prints figures; never asserts anything.
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

#: The checkout whose taskq is measured (``benchmarks/compare.py`` points it at another).
ROOT = Path(os.environ.get("TASKQ_BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from benchmarks import scale_out  # noqa: E402
from benchmarks.common import bench_env  # noqa: E402

SINK = "bench-sink"


def evaluator(rt: Any) -> Any:
    """The evaluator as the worker builds it (the runtime's factory, where there is one)."""
    if hasattr(rt, "evaluator"):
        return rt.evaluator()
    from taskq.evaluator import Evaluator  # type: ignore[import-not-found]

    return Evaluator(rt)


def sync_jobs(rt: Any) -> None:
    try:
        from taskq.services.trigger_admin import sync_job_templates
    except ImportError:
        from taskq.client import sync_job_templates  # type: ignore[import-not-found,no-redef]
    sync_job_templates(rt)


def drain(rt: Any, expected: int, *, fired: bool) -> float:
    """Seconds one evaluator takes until ``expected`` entries were evaluated (or, with
    ``fired``, until ``expected`` firings were made); then the rest of the stream (the
    clones' own ``queued`` events) is drained untimed, so the next figure starts empty."""
    ev = evaluator(rt)
    ev.refresh(force=True)
    start = time.perf_counter()
    while (ev.stats.fired if fired else ev.stats.processed) < expected:
        if not ev.run_once(block_ms=50) and time.perf_counter() - start > 120:
            raise SystemExit(f"stalled: {ev.stats}")
    elapsed = time.perf_counter() - start
    while ev.run_once(block_ms=50):
        pass
    ev.flush_marks()
    return elapsed


def publish_batched(taskq: Any, names: list[str]) -> None:
    for b in range(0, len(names), 500):
        taskq.publish_events([{"name": name, "payload": {"i": b + i}}
                              for i, name in enumerate(names[b:b + 500])])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rules", default="10,10000")
    ap.add_argument("--database-url")
    ap.add_argument("--redis-url")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--evaluators", help="also drain with this many loops, e.g. 1,2")
    args = ap.parse_args()

    _, redis_url, db_url = bench_env(args.redis_url, args.database_url, SINK)
    r = redis.Redis.from_url(redis_url)

    import taskq
    from benchmarks import bench_jobs  # noqa: F401  - the target job's template
    from taskq import constants
    from taskq.runtime import get_runtime
    from taskq.store import migrate

    migrate.upgrade(db_url)
    rt = get_runtime()
    sync_jobs(rt)
    n = args.events
    figures: dict[str, Any] = {"events": n, "database": db_url.split(":", 1)[0]}

    start = time.perf_counter()
    for i in range(n):
        rt.celery.send_task("bench.noop", kwargs={"i": i}, queue=SINK)
    figures["celery_send_task_per_s"] = baseline = n / (time.perf_counter() - start)
    r.delete(SINK)

    added = 0
    nonmatch_base: float | None = None
    for count in (int(c) for c in args.rules.split(",")):
        rows = [{"name": f"bench-{i}", "namespace": "default", "kind": "event",
                 "spec": {"ref": f"events.e{i}", "kinds": ["custom_event"]},
                 "job": "bench_down", "params": {}, "queue": SINK, "enabled": True}
                for i in range(added, count)]
        if hasattr(rt.store, "add_triggers"):  # 100,000 rules in seconds, not minutes
            for b in range(0, len(rows), 10_000):
                rt.store.add_triggers(rows[b:b + 10_000])
        else:
            for row in rows:
                rt.store.add_trigger(**row)
        added = max(added, count)
        r.incr(constants.TRIGGERS_VERSION)

        start = time.perf_counter()
        for i in range(n):
            taskq.publish_event(f"e{i % count}", {"i": i})
        publish_rate = n / (time.perf_counter() - start)
        firing_rate = n / drain(rt, n, fired=True)
        r.delete(SINK)

        start = time.perf_counter()
        if hasattr(taskq, "publish_events"):  # batches of 500, as a bulk producer sends
            for b in range(0, n, 500):
                taskq.publish_events([{"name": f"nomatch-{i}", "payload": {"i": i}}
                                      for i in range(b, min(n, b + 500))])
        else:
            for i in range(n):
                taskq.publish_event(f"nomatch-{i}", {"i": i})
        batched_rate = n / (time.perf_counter() - start)
        nonmatch_rate = n / drain(rt, n, fired=False)
        nonmatch_base = nonmatch_base or nonmatch_rate
        figures[f"rules_{count}"] = {
            "publish_event_per_s": publish_rate, "publish_events_batched_per_s": batched_rate,
            "firings_per_s": firing_rate,
            "firings_ratio_to_send_task": firing_rate / baseline,
            "nonmatching_per_s": nonmatch_rate,
            "nonmatching_ratio_to_fewest_rules": nonmatch_rate / nonmatch_base}

    client = taskq.Client()
    if hasattr(client, "add_triggers"):  # bulk registration, after the figures above
        bulk = [{"name": f"bulk-{i}", "event": {"ref": f"events.bulk-{i}",
                                                 "kinds": ["custom_event"]},
                 "job": "bench_down", "queue": SINK} for i in range(2000)]
        start = time.perf_counter()
        client.add_triggers(bulk)
        figures["add_triggers_bulk_per_s"] = len(bulk) / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(200):
            client.add_trigger(name=f"single-{i}", event={"ref": f"events.single-{i}",
                                                          "kinds": ["custom_event"]},
                               job="bench_down", queue=SINK)
        figures["add_trigger_one_by_one_per_s"] = 200 / (time.perf_counter() - start)

    # After the registration figures: those read every stored event name.
    first = int(args.rules.split(",")[0])
    for loops in (int(c) for c in (args.evaluators or "").split(",") if c):
        publish_batched(taskq, [f"e{i % first}" for i in range(n)])
        firing = scale_out.measure(loops, n, fired=True)
        r.delete(SINK)
        # Ten times the backlog: a no-match backlog of n drains in a few reads.
        publish_batched(taskq, [f"nomatch-{i}" for i in range(10 * n)])
        figures.setdefault("evaluators", []).append(
            {"loops": loops, "firings": firing,
             "no_match": scale_out.measure(loops, 10 * n, fired=False)})

    print(f"\nthroughput, {n} events per figure, database {figures['database']}")
    print(f"celery send_task (baseline): {baseline:9.0f}/s")
    print(f"{'rules':>7}{'publish/s':>11}{'batched/s':>11}{'firings/s':>11}"
          f"{'x send_task':>13}{'no match/s':>12}{'x fewest':>10}")
    for key, f in figures.items():
        if key.startswith("rules_"):
            print(f"{key[6:]:>7}{f['publish_event_per_s']:11.0f}"
                  f"{f['publish_events_batched_per_s']:11.0f}{f['firings_per_s']:11.0f}"
                  f"{f['firings_ratio_to_send_task']:13.2f}{f['nonmatching_per_s']:12.0f}"
                  f"{f['nonmatching_ratio_to_fewest_rules']:10.2f}")
    if "add_triggers_bulk_per_s" in figures:
        print(f"registration: add_triggers {figures['add_triggers_bulk_per_s']:.0f}/s in "
              f"one call of 2000, add_trigger {figures['add_trigger_one_by_one_per_s']:.0f}/s")
    scale_out.report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
