"""``taskq dev``: the whole system on one machine, and the seed scenario, live.

Embedded Redis and SQLite unless URLs are configured; then an evaluator worker, job workers
on the example queues and beat, all ordinary ``celery`` processes; then ``train`` runs and a
trigger on its ``run_status_running`` starts ``tensorboard`` while it still runs.
"""

from __future__ import annotations

import importlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from taskq import constants
from taskq.api.client import Client
from taskq.core.matching import EventTrigger
from taskq.dev import processes
from taskq.errors import UserError, ValidationError
from taskq.settings import configure, get_settings
from taskq.store import migrate
from taskq.stream.embedded_redis import ensure_redis

console = Console()
TRIGGER = "tensorboard-on-train-running"


def _env() -> dict[str, str]:
    settings = get_settings()
    env = dict(os.environ)
    env["TASKQ_REDIS_URL"] = settings.resolved_redis_url()
    env["TASKQ_DATABASE_URL"] = settings.resolved_database_url()
    env.setdefault("TASKQ_IMPORTS", "workers.examples")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env


def start_stack(env: dict[str, str], logdir: Path) -> list[processes.Proc]:
    """Start everything, or nothing: a failure (or Ctrl-C) stops what already started,
    since the processes run in their own sessions and would outlive the CLI."""
    procs: list[processes.Proc] = []
    try:
        # The production layout; the loop runs beside the pool, the one slot is beat's.
        procs.append(processes.start_worker("evaluator", [constants.TRIGGERS_QUEUE], env=env,
                                            logdir=logdir, concurrency=1))
        procs.append(processes.start_worker("train", ["train"], env=env, logdir=logdir))
        procs.append(processes.start_worker("viz", ["viz", "default", "services", "gpu"],
                                            env=env, logdir=logdir, concurrency=2))
        procs.append(processes.start_beat(env=env, logdir=logdir, home=get_settings().home))
        with console.status("starting evaluator, workers and beat ..."):
            for p in procs:
                p.wait_ready(90)
    except BaseException as exc:
        for p in procs:
            p.stop()
        if isinstance(exc, RuntimeError | TimeoutError):
            last = str(exc).splitlines()[0]
            raise UserError(f"taskq dev could not start: {last}",
                           f"see the logs in {logdir}") from None
        raise
    console.print(f"[green]up:[/] {', '.join(p.name for p in procs)} (logs in {logdir})")
    return procs


def _view(client: Any, events: list[str], train_uuid: str) -> Group:
    table = Table("job", "uuid", "status", "queue", "trigger", "started", "finished",
                  title="runs")
    for r in client.list_runs(limit=8):
        mark = "[bold]" if r.uuid == train_uuid or r.trigger_name == TRIGGER else ""
        table.add_row(f"{mark}{r.job}", r.uuid[:8], r.status.value, r.queue, r.trigger_name or "",
                      (r.started_at or "")[11:23], (r.finished_at or "")[11:23])
    ev_table = Table("events (newest last)", title="stream")
    for line in events[-10:]:
        ev_table.add_row(line)
    return Group(ev_table, table)


def scenario(client: Any) -> bool:
    if client.get_trigger(TRIGGER) is None:
        client.add_trigger(name=TRIGGER, job="tensorboard",
                           event=EventTrigger(ref="jobs.train",
                                                    kinds=["run_status_running"]),
                           params={"uuid": "{{ trigger.run.uuid }}"})
    console.print(f"trigger [bold]{TRIGGER}[/]: on jobs.train run_status_running "
                  "-> tensorboard(uuid={{ trigger.run.uuid }})")
    bus = client.rt.bus
    last = "$"
    train = client.submit("train", params={"epochs": 3, "seconds": 3.0})
    events: list[str] = []
    deadline = time.monotonic() + 60
    board = None
    with Live(_view(client, events, train.uuid), console=console, refresh_per_second=8) as live:
        while time.monotonic() < deadline:
            for sid, ev in bus.tail(last, block_ms=200):
                last = sid
                if ev is not None:
                    events.append(f"{ev.timestamp:%H:%M:%S.%f}"[:-3] + f" {ev.kind:<24} "
                                  f"{ev.payload.get('job', '')} {ev.ref[5:13]}")
            live.update(_view(client, events, train.uuid))
            train = client.get_run(train.uuid)
            boards = client.list_runs(trigger=TRIGGER, limit=50)
            board = next((b for b in boards
                          if (b.trigger_context or {}).get("run", {}).get("uuid") == train.uuid),
                         None)
            if train.done and board is not None and board.done:
                break
    ok = bool(board and train.status == "succeeded" and board.status == "succeeded"
              and board.params.get("uuid") == train.uuid
              and board.started_at and train.finished_at
              and board.started_at < train.finished_at)
    if ok and board:
        console.print(f"[green]tensorboard {board.uuid[:8]} started at {board.started_at[11:23]}"
                      f" while train {train.uuid[:8]} was running (finished "
                      f"{train.finished_at[11:23]})[/]")  # type: ignore[index]
    else:
        console.print("[red]scenario did not complete as expected; see the logs[/]")
    try:  # submit checks params against train's signature before anything is queued
        client.submit("train", params={"learning_rate": "fast"})
    except ValidationError as exc:
        console.print(f"submit refused bad params ({exc})", highlight=False)
    # A message sent with plain Celery meets the worker's own check and fails before it runs.
    bad_uuid = str(uuid.uuid4())
    client.rt.celery.send_task(constants.job_task_name("train"), task_id=bad_uuid,
                               kwargs={"learning_rate": "fast"}, queue="train")
    bad = None
    for _ in range(100):
        bad = client.get_run(bad_uuid)
        if bad is not None and bad.done:
            break
        time.sleep(0.1)
    time.sleep(1.0)
    fired = [b for b in client.list_runs(trigger=TRIGGER, limit=50)
             if (b.trigger_context or {}).get("run", {}).get("uuid") == bad_uuid]
    outcome = f"{bad.status}: {bad.reason}" if bad is not None else "never recorded"
    console.print(f"a train run that fails before running ({outcome}) "
                  f"started {len(fired)} tensorboard(s)")
    return ok and bad is not None and not fired


def run_dev(*, linger: float, scenario_enabled: bool = True) -> int:
    settings = get_settings()
    if settings.embedded_redis:
        sock = ensure_redis(settings.home)
        console.print(f"embedded redis-server on {sock}")
    env = _env()
    imports = env["TASKQ_IMPORTS"].split(",")
    configure(redis_url=env["TASKQ_REDIS_URL"], database_url=env["TASKQ_DATABASE_URL"],
              imports=imports)
    for module in imports:  # the jobs the workers run, declared here too (as Celery does)
        importlib.import_module(module)
    migrate.upgrade(env["TASKQ_DATABASE_URL"])
    console.print(f"database {env['TASKQ_DATABASE_URL']} migrated")
    logdir = get_settings().home.resolve() / "logs"
    procs = start_stack(env, logdir)
    code = 0
    try:
        if scenario_enabled:
            code = 0 if scenario(Client()) else 1
        if linger > 0:
            console.print(f"running for {linger:.0f}s more (Ctrl-C to stop) ...")
            time.sleep(linger)
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("stopping ..."):
            for p in procs:
                p.stop()
    return code
