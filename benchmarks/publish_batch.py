"""Publishing a firing batch's runs: one ``send_task`` each against one ``send_many``.

    python benchmarks/publish_batch.py [--runs 2000] [--batch 100] [--rounds 3]
                                       [--redis-url URL] [--json FILE]

The two halves of what a firing's publish costs, without the database: ``send`` per run
(Celery's ``send_task``, its task-sent event included, as the evaluator sent them before)
and ``send_many`` per batch of ``--batch`` runs (one Redis pipeline). Rounds alternate the
two so drift on a shared machine hits both alike; the median of each is printed. The
messages go to a queue nobody consumes. Prints figures; never asserts anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_env  # noqa: E402

SINK = "bench-sink"


def items(n: int) -> list[tuple[Any, dict[str, str]]]:
    from taskq.core.stored import OutboxItem
    from taskq.services.outbox import headers_for

    out = []
    for _ in range(n):
        item = OutboxItem(run_uuid=str(uuid.uuid4()), task_name="taskq.job.noop", queue=SINK,
                          agent="default", params={"i": 1}, attempts=0)
        out.append((item, headers_for(item)))
    return out


def one_by_one(publisher: Any, batch: list[tuple[Any, dict[str, str]]]) -> float:
    start = time.perf_counter()
    for item, headers in batch:
        publisher.send(item, headers)
    return time.perf_counter() - start


def batched(publisher: Any, batch: list[tuple[Any, dict[str, str]]], size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(batch), size):
        publisher.send_many(batch[i:i + size])
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis-url")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    _, redis_url, _ = bench_env(args.redis_url, None, SINK)
    r = redis.Redis.from_url(redis_url)

    from taskq.celery.publisher import CeleryPublisher
    from taskq.settings import get_settings

    publisher = CeleryPublisher(get_settings())
    batched(publisher, items(50), 50)  # connect and declare before timing
    send: list[float] = []
    many: list[float] = []
    for _ in range(args.rounds):
        send.append(args.runs / one_by_one(publisher, items(args.runs)))
        many.append(args.runs / batched(publisher, items(args.runs), args.batch))
        r.delete(SINK)
    figures = {"runs": args.runs, "batch": args.batch,
               "send_per_s": statistics.median(send),
               "send_many_per_s": statistics.median(many)}
    figures["send_many_ratio"] = figures["send_many_per_s"] / figures["send_per_s"]
    print(f"publish, {args.runs} runs, median of {args.rounds} round(s)")
    print(f"send (send_task each):         {figures['send_per_s']:8.0f}/s")
    print(f"send_many (batches of {args.batch:4d}):  {figures['send_many_per_s']:8.0f}/s"
          f"  x{figures['send_many_ratio']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
