"""Chaos: events through a real stack while its processes, its Redis and its database fail;
then how many firings were lost, duplicated, or are still pending.

    python benchmarks/chaos.py [--events 10000] [--database-url URL] [--no-outage]
                               [--settle-timeout 600] [--outage-seconds 30] [--json FILE]

One redis-server of the benchmark's own without persistence (stream and broker), SQLite (or
PostgreSQL with ``--database-url``), a job worker on ``chaos-src``, one on ``chaos-clone``,
an evaluator worker and beat. A trigger on ``run_status_succeeded`` of ``chaos_src`` clones
``chaos_clone``. ``--events`` source runs are submitted (at most ``--backlog`` unfinished at a
time); as the clones come in, the schedule SIGKILLs and restarts job and evaluator workers,
restarts Redis empty once and (unless ``--no-outage``) takes the database's writes away for
``--outage-seconds``. Then it waits, up to ``--settle-timeout``, for everything to settle and
prints the counts read from SQL. A measurement: exit code 0 whatever the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from benchmarks import chaos_stack  # noqa: E402

#: (fraction of the clones made, action): the faults, spread over the run.
SCHEDULE = [(0.10, "kill src"), (0.20, "kill evaluator"), (0.30, "kill clone"),
            (0.40, "restart redis empty"), (0.50, "database outage"),
            (0.60, "kill evaluator"), (0.70, "kill src"), (0.80, "kill clone"),
            (0.90, "kill evaluator")]
#: A step whose fraction is not reached within this long runs anyway (a stalled stack).
STEP_PATIENCE = 120.0


class Run:
    """The shared state of one benchmark run: counts, the submitter and the chaos log."""

    def __init__(self, n: int, backlog: int) -> None:
        self.n, self.backlog = n, backlog
        self.counts: dict[str, int] = {}
        self.submitted = self.submit_errors = 0
        self.log: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self.chaos_done = threading.Event()
        self.finished = threading.Event()

    def note(self, what: str, console: Console) -> None:
        at = time.monotonic() - self.started
        self.log.append((round(at, 1), what))
        console.log(f"[bold red]chaos[/] {at:7.1f}s  {what}")

    def submit_all(self) -> None:
        """Source runs, never more than ``backlog`` unfinished; a failed submit (Redis gone,
        database locked) is tried again: its run may be in SQL already, counted from there."""
        import taskq

        while self.submitted < self.n:
            if self.submitted - self.counts.get("src_final", 0) >= self.backlog:
                time.sleep(0.05)
                continue
            try:
                taskq.submit("chaos_src", params={"i": self.submitted})
                self.submitted += 1
            except Exception:  # any failure of a submit under chaos
                self.submit_errors += 1
                time.sleep(0.5)


def chaos(run: Run, steps: list[str], actions: dict[str, Callable[[], str]],
          console: Console) -> None:
    try:
        for fraction, step in SCHEDULE:
            if step not in steps:
                continue
            since = time.monotonic()
            while (run.counts.get("clone", 0) < fraction * run.n
                   and time.monotonic() - since < STEP_PATIENCE):
                time.sleep(0.2)
            late = "" if run.counts.get("clone", 0) >= fraction * run.n else " (stalled)"
            run.note(f"{step} at {run.counts.get('clone', 0)} clones{late}", console)
            detail = actions[step]()
            if detail:
                run.note(f"  {detail}", console)
    except Exception as exc:  # report it, do not hang the run
        run.note(f"chaos step failed: {exc!r}", console)
    finally:
        run.chaos_done.set()


def supervise(run: Run, workers: chaos_stack.Workers, console: Console) -> None:
    while not run.finished.is_set():
        for what in workers.revive():
            run.note(f"restarted: {what}", console)
        run.finished.wait(1.0)


def settled(c: dict[str, int], n: int) -> bool:
    return (c.get("src", 0) >= n and c.get("src_final", 0) == c.get("src", 0)
            and c.get("clone", 0) >= c.get("src_succeeded", 0)
            and c.get("clone_final", 0) == c.get("clone", 0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000, help="source runs (default 10000)")
    ap.add_argument("--database-url", help="PostgreSQL admin URL (default: a new SQLite)")
    ap.add_argument("--no-outage", action="store_true", help="skip the database outage")
    ap.add_argument("--outage-seconds", type=float, default=30.0)
    ap.add_argument("--settle-timeout", type=float, default=600.0)
    ap.add_argument("--backlog", type=int, default=1000)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="taskq-chaos-"))
    admin_url = args.database_url or f"sqlite:///{home / 'chaos.db'}"
    server = chaos_stack.OwnRedis(home / "redis")
    server.start()
    workers: chaos_stack.Workers | None = None
    try:
        rt, env = setup(server, home, admin_url)
        workers = chaos_stack.Workers(env=env, logdir=home / "logs")
        console = Console(stderr=True)
        console.print(f"chaos: {args.events} source runs, database "
                      f"{admin_url.split(':')[0]}, redis port {server.port}, logs in "
                      f"{home / 'logs'}")
        workers.start_all()
        figures = run_chaos(args, rt, workers, server, admin_url, console)
    finally:
        if workers is not None:
            workers.stop()
        server.stop()
    figures.update(events=args.events, database=admin_url.split(":", 1)[0],
                   outage=not args.no_outage, logs=str(home / "logs"))
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def setup(server: chaos_stack.OwnRedis, home: Path, admin_url: str
          ) -> tuple[Any, dict[str, str]]:
    """The environment every process shares, the schema, the two jobs and the trigger."""
    db_url = chaos_stack.app_database_url(admin_url)
    env = {"TASKQ_REDIS_URL": server.url, "TASKQ_DATABASE_URL": db_url,
           "TASKQ_HOME": str(home), "TASKQ_IMPORTS": "benchmarks.chaos_jobs",
           # A SIGKILLed worker's unacknowledged message comes back in 30 s, not an hour;
           # queued runs whose message is nowhere are looked for every 5 s, 10 s after.
           "TASKQ_BROKER_VISIBILITY_TIMEOUT": "30", "TASKQ_REDELIVER_AFTER_SECONDS": "10",
           "TASKQ_REDELIVER_EVERY": "5"}
    os.environ.update(env)  # before taskq reads its settings
    from taskq.store import migrate

    migrate.upgrade(admin_url)
    chaos_stack.grant_app(admin_url)

    import taskq
    from benchmarks import chaos_jobs  # noqa: F401  - the two jobs' templates
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates

    rt = get_runtime()
    if chaos_stack.progress_counts(rt.store).get("src"):
        raise SystemExit(f"{admin_url} already holds a chaos run's data: give an empty "
                         "database (the counts are read from it)")
    sync_job_templates(rt)
    taskq.add_trigger(name=chaos_stack.TRIGGER, job="chaos_clone",
                      event=taskq.EventTrigger(ref="jobs.chaos_src",
                                               kinds=["run_status_succeeded"]),
                      params={"upstream": "{{ trigger.run.uuid }}"})
    return rt, dict(os.environ, PYTHONPATH=str(ROOT))


def run_chaos(args: argparse.Namespace, rt: Any, workers: chaos_stack.Workers,
              server: chaos_stack.OwnRedis, admin_url: str, console: Console
              ) -> dict[str, Any]:
    run = Run(args.events, args.backlog)
    actions: dict[str, Callable[[], str]] = {
        "kill src": lambda: workers.kill("src") or "",
        "kill clone": lambda: workers.kill("clone") or "",
        "kill evaluator": lambda: workers.kill("evaluator") or "",
        "restart redis empty": server.restart_empty,
        "database outage": lambda: chaos_stack.outage(admin_url, args.outage_seconds)}
    steps = [s for _, s in SCHEDULE if not (args.no_outage and s == "database outage")]
    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, refresh_per_second=4) as bar:
        ids = {k: bar.add_task(k, total=args.events) for k in
               ("submitted", "sources final", "clones made", "clones final")}
        threads = [threading.Thread(target=run.submit_all, daemon=True),
                   threading.Thread(target=chaos, args=(run, steps, actions, console),
                                    daemon=True),
                   threading.Thread(target=supervise, args=(run, workers, console),
                                    daemon=True)]
        for t in threads:
            t.start()
        settle_deadline: float | None = None
        chaos_end = time.monotonic()
        while True:
            try:
                run.counts = chaos_stack.progress_counts(rt.store)
            except Exception as exc:  # a read during an outage
                console.log(f"progress read failed: {exc!r}")
            c = run.counts
            bar.update(ids["submitted"], completed=run.submitted)
            bar.update(ids["sources final"], completed=c.get("src_final", 0))
            bar.update(ids["clones made"], completed=c.get("clone", 0),
                       total=max(args.events, c.get("src_succeeded", 0)))
            bar.update(ids["clones final"], completed=c.get("clone_final", 0),
                       total=max(args.events, c.get("clone", 0)))
            if run.chaos_done.is_set() and run.submitted >= args.events:
                if settle_deadline is None:
                    settle_deadline = time.monotonic() + args.settle_timeout
                    chaos_end = time.monotonic()
                if settled(c, args.events) or time.monotonic() > settle_deadline:
                    break
            time.sleep(0.5)
    run.finished.set()
    settle = time.monotonic() - chaos_end
    if settled(run.counts, args.events):
        time.sleep(5.0)  # room for a late duplicate to show up, if there were one
    figures: dict[str, Any] = chaos_stack.tally(rt.store)
    figures.update(elapsed_s=round(time.monotonic() - run.started, 1),
                   settle_s=round(settle, 1), settled=settled(run.counts, args.events),
                   submit_errors=run.submit_errors, worker_starts=dict(workers.starts),
                   exited_on_their_own=dict(workers.exits),
                   redis_restarts=server.restarts, chaos=run.log)
    return figures


def report(f: dict[str, Any]) -> None:
    table = Table(title=f"chaos, {f['events']} source runs, database {f['database']}, "
                        f"outage {'on' if f['outage'] else 'off'}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("lost", "duplicated", "still_pending", "source_runs", "sources_succeeded",
                "sources_failed", "sources_not_final", "firings", "firing_errors", "clones",
                "clones_succeeded", "clones_failed", "submit_errors", "redis_restarts",
                "elapsed_s", "settle_s", "settled"):
        style = "bold" if key in ("lost", "duplicated", "still_pending") else ""
        table.add_row(key.replace("_", " "), str(f[key]), style=style)
    for key in ("worker_starts", "exited_on_their_own"):
        table.add_row(key.replace("_", " "),
                      ", ".join(f"{k} {v}" for k, v in f[key].items()) or "none")
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
