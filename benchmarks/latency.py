"""Latency: "upstream reaches running" -> "cloned run's first line" (taskq), beside Celery's
own ``link`` ("A's last line" -> "B's first line"), measured in one run on one worker set-up.

    python benchmarks/latency.py [--samples 500] [--database-url URL] [--redis-url URL]

Both flows use the same Redis, the same job worker (prefork, concurrency 2, queue ``bench``)
and alternate sample by sample, so drift on a shared machine hits both alike. taskq's start
instant is the run's ``started_at``, written in the same transaction that makes it RUNNING,
before the event is even appended: the honest "reaches running". Prints p50/p90/p99 of both
and the ratios; never asserts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import redis

#: The checkout whose taskq is measured (``benchmarks/compare.py`` points it at another).
ROOT = Path(os.environ.get("TASKQ_BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_env, start_bench_workers  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def breakdown(store: object, samples: list[tuple[str, int, int]]) -> dict[str, list[float]]:
    """Split each firing at the timestamps the database already records."""
    from sqlalchemy import select

    from taskq.store.models import Run, RunEvent

    def ns(value: datetime) -> int:
        return int(value.replace(tzinfo=value.tzinfo or UTC).timestamp() * 1e9)

    out: dict[str, list[float]] = {k: [] for k in (
        "upstream RUNNING txn start -> upstream first line",
        "upstream RUNNING txn start -> firing txn start (evaluator)",
        "firing txn start -> downstream claim txn start (publish, delivery)",
        "downstream claim txn start -> downstream first line")}
    keys = list(out)
    with store.tx() as conn:  # type: ignore[attr-defined]
        for up, up_first, down_first in samples:
            up_run = conn.execute(select(RunEvent.created_at).where(
                RunEvent.run_uuid == up, RunEvent.status == "running")).scalar_one()
            down = conn.execute(select(Run.uuid, Run.created_at).where(
                Run.params["upstream"].as_string() == up)).one()
            down_run = conn.execute(select(RunEvent.created_at).where(
                RunEvent.run_uuid == down.uuid, RunEvent.status == "running")).scalar_one()
            t_up, t_fire, t_claim = ns(up_run), ns(down.created_at), ns(down_run)
            for key, value in zip(keys, (up_first - t_up, t_fire - t_up, t_claim - t_fire,
                                         down_first - t_claim), strict=True):
                out[key].append(value / 1e6)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--database-url")
    ap.add_argument("--redis-url")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    home, redis_url, db_url = bench_env(args.redis_url, args.database_url, "bench")
    r = redis.Redis.from_url(redis_url)

    import taskq
    from benchmarks import bench_jobs
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates
    from taskq.store import migrate

    migrate.upgrade(db_url)
    sync_job_templates(get_runtime())
    procs = start_bench_workers(ROOT, home)
    try:
        taskq.add_trigger(name="bench", job="bench_down",
                          event=taskq.EventTrigger(ref="jobs.bench_up",
                                                   kinds=["run_status_running"]),
                          params={"upstream": "{{ trigger.run.uuid }}"})
        link_b = bench_jobs.link_b.s().set(queue="bench")

        def one_link() -> float:
            bench_jobs.link_a.apply_async(queue="bench", link=link_b)
            _, raw = r.blpop([bench_jobs.DONE_LIST], timeout=30)  # type: ignore[misc]
            rec = json.loads(raw)
            return (rec["end"] - rec["start"]) / 1e6

        samples: list[tuple[str, int, int]] = []  # (upstream uuid, up first, down first)

        def one_taskq() -> tuple[float, float]:
            run = taskq.submit("bench_up")
            _, raw = r.blpop([bench_jobs.DONE_LIST], timeout=30)  # type: ignore[misc]
            rec = json.loads(raw)
            assert rec["upstream"] == run.uuid
            started = taskq.get_run(run.uuid).started_at  # type: ignore[union-attr]
            committed_ns = int(datetime.fromisoformat(started).timestamp() * 1e9)  # type: ignore[arg-type]
            # On a loaded machine the clone can finish before the upstream's first line has
            # stored its timestamp: wait for it rather than fail the run.
            raw_first = None
            for _ in range(500):
                raw_first = r.get(f"taskq:bench:up:{run.uuid}")
                if raw_first is not None:
                    break
                time.sleep(0.01)
            first_line_ns = int(raw_first)  # type: ignore[arg-type]
            samples.append((run.uuid, first_line_ns, rec["end"]))
            return (rec["end"] - first_line_ns) / 1e6, (rec["end"] - committed_ns) / 1e6

        for _ in range(args.warmup):
            one_link()
            one_taskq()
        link: list[float] = []
        tq: list[float] = []
        tq_db: list[float] = []
        t0 = time.monotonic()
        for i in range(args.samples):
            link.append(one_link())
            from_first_line, from_transition = one_taskq()
            tq.append(from_first_line)
            tq_db.append(from_transition)
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{args.samples} pairs ...", file=sys.stderr)
        elapsed = time.monotonic() - t0
        stages = breakdown(get_runtime().store, samples[-args.samples:])
    finally:
        for p in procs:
            p.stop()

    dbkind = db_url.split(":", 1)[0]
    rows = []
    for name, values in (("celery link", link), ("taskq trigger", tq),
                         ("  from txn start", tq_db)):
        rows.append((name, pct(values, 50), pct(values, 90), pct(values, 99),
                     statistics.mean(values)))
    print(f"\nlatency over {args.samples} samples each (ms), database {dbkind}, "
          f"{elapsed:.1f}s total")
    print("celery link: A's last line -> B's first line; taskq trigger: upstream's first "
          "line -> cloned run's first line;\n  from txn start: from the start of the "
          "transaction that made the upstream RUNNING")
    print(f"{'flow':<16}{'p50':>8}{'p90':>8}{'p99':>8}{'mean':>8}")
    for name, p50, p90, p99, mean in rows:
        print(f"{name:<16}{p50:8.2f}{p90:8.2f}{p99:8.2f}{mean:8.2f}")
    print("\nwhere the taskq time goes (p50 of each stage, ms):")
    for name, values in stages.items():
        print(f"  {name:<58}{pct(values, 50):7.2f}")
    ratio50 = rows[1][1] / rows[0][1]
    ratio99 = rows[1][3] / rows[0][3]
    print(f"ratio taskq/link: p50 {ratio50:.2f}x (target <= 1.5x), "
          f"p99 {ratio99:.2f}x (target <= 2x)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "samples": args.samples, "database": dbkind,
            "link": dict(zip(["p50", "p90", "p99", "mean"], rows[0][1:], strict=True)),
            "taskq": dict(zip(["p50", "p90", "p99", "mean"], rows[1][1:], strict=True)),
            "taskq_from_txn_start": dict(zip(["p50", "p90", "p99", "mean"], rows[2][1:],
                                             strict=True)),
            "ratio_p50": ratio50, "ratio_p99": ratio99}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
