"""Scale out: one backlog drained by 1, 2, ... evaluator loops, each in a process of its own.

Used by ``benchmarks/throughput.py --evaluators 1,2``. Every loop is a fresh interpreter
(as a worker's bootstep starts them) reading the one stream through the one consumer group
under its own consumer name. Each reports what it evaluated, over how long, and the CPU it
used meanwhile, so a figure shows both the combined rate and whether each loop kept its own
rate or starved for a core: its rate per CPU-second is what it would do with a core to itself.
The machine's load average is printed beside each figure, as other work bounds them too.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
from typing import Any

#: Idle reads (of 50 ms) after the target is reached before a loop stops draining.
QUIET_READS = 4


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _loop(target: int, fired: bool, total: Any, barrier: Any, results: Any) -> None:
    """One evaluator loop: evaluate until the loops together reached ``target``, then drain
    the rest (the clones' own events) untimed and report."""
    from taskq.runtime import get_runtime

    rt = get_runtime()
    ev = rt.evaluator()
    ev.refresh(force=True)
    barrier.wait()
    start, cpu0 = time.perf_counter(), _cpu()
    last_work = start
    while total.value < target:
        before = ev.stats.fired if fired else ev.stats.processed
        ev.run_once(block_ms=50)
        done = (ev.stats.fired if fired else ev.stats.processed) - before
        if done:
            last_work = time.perf_counter()
            with total.get_lock():
                total.value += done
        elif time.perf_counter() - start > 180:
            break
    end, cpu1 = time.perf_counter(), _cpu()
    own = ev.stats.fired if fired else ev.stats.processed
    quiet = 0
    while quiet < QUIET_READS:
        quiet = 0 if ev.run_once(block_ms=50) else quiet + 1
    ev.flush_marks()
    results.put({"consumer": ev.consumer, "count": own, "start": start, "end": end,
                 "busy_s": last_work - start, "cpu_s": cpu1 - cpu0})


def measure(loops: int, target: int, *, fired: bool) -> dict[str, Any]:
    """Start ``loops`` evaluator processes on the backlog already in the stream; they
    start reading together (a barrier, after each loaded its rules)."""
    ctx = mp.get_context("spawn")
    total = ctx.Value("q", 0)
    barrier = ctx.Barrier(loops)
    results = ctx.Queue()
    procs = [ctx.Process(target=_loop, args=(target, fired, total, barrier, results))
             for _ in range(loops)]
    for p in procs:
        p.start()
    each = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    start = min(e["start"] for e in each)
    wall = max(e["end"] for e in each) - start
    per = [{"consumer": e["consumer"], "count": e["count"],
            "per_s": e["count"] / max(e["end"] - e["start"], 1e-9),
            "cpu_pct": 100 * e["cpu_s"] / max(e["end"] - e["start"], 1e-9),
            "per_cpu_s": e["count"] / max(e["cpu_s"], 1e-9)} for e in each]
    return {"loops": loops, "combined_per_s": sum(e["count"] for e in each) / wall,
            "wall_s": wall, "load_1m": os.getloadavg()[0], "per_loop": per}


def report(figures: dict[str, Any]) -> None:
    rows = figures.get("evaluators")
    if not rows:
        return
    print("\nscale out: one backlog, N evaluator loops (own processes), one consumer group")
    print(f"{'loops':>6}{'figure':>10}{'combined/s':>12}{'x one':>7}{'load':>6}"
          "   per loop: /s (CPU %, per CPU-second)")
    base: dict[str, float] = {}
    for row in rows:
        for name in ("firings", "no_match"):
            f = row[name]
            base.setdefault(name, f["combined_per_s"])
            loops = ", ".join(f"{p['per_s']:.0f} ({p['cpu_pct']:.0f}%, {p['per_cpu_s']:.0f})"
                              for p in f["per_loop"])
            print(f"{row['loops']:>6}{name:>10}{f['combined_per_s']:12.0f}"
                  f"{f['combined_per_s'] / base[name]:7.2f}{f['load_1m']:6.1f}   {loops}")
