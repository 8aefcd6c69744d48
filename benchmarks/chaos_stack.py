"""The chaos benchmark's stack and its faults: a redis-server of its own (restartable empty),
real Celery workers and beat, a database outage, and the tally read back from SQL.

Split from ``benchmarks/chaos.py`` so that script is only the run's schedule and display.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

#: Named queues of the two jobs (``benchmarks/chaos_jobs.py``); nothing here imports taskq
#: at module level, so the script can set the environment before taskq reads it.
SOURCE_QUEUE = "chaos-src"
CLONE_QUEUE = "chaos-clone"
TRIGGER = "chaos-on-succeeded"
FINAL = ("succeeded", "failed", "stopped", "skipped", "upstream_failed")
APP_ROLE = "taskq_chaos_app"


class OwnRedis:
    """The stream and the broker both, a redis-server without persistence: a restart leaves
    nothing, and the database alone must say what was delivered."""

    def __init__(self, logdir: Path) -> None:
        from taskq.testing.redis_server import VolatileRedis

        self.server = VolatileRedis(logdir)
        self.url, self.port = self.server.url, self.server.port
        self.start, self.stop = self.server.start, self.server.stop

    @property
    def restarts(self) -> int:
        return self.server.restarts

    def restart_empty(self) -> str:
        """kill -9, start again on the same port; what it held before."""
        from taskq import constants

        c = redis.Redis.from_url(self.url)
        held = (f"stream {c.xlen(constants.EVENTS_STREAM)} entries, queued messages "
                f"{sum(int(c.llen(q)) for q in (SOURCE_QUEUE, CLONE_QUEUE, 'taskq.triggers'))}"
                f", unacked {c.hlen('unacked')}")
        c.close()
        self.server.restart_empty()
        return f"gone: {held}"


@dataclass
class Workers:
    """The named job workers, the evaluator workers and beat; each kill is SIGKILL to the
    whole process group (main process and pool children), then a fresh worker."""

    env: dict[str, str]
    logdir: Path
    concurrency: int = 2
    procs: dict[str, Any] = field(default_factory=dict)
    starts: Counter[str] = field(default_factory=Counter)
    #: Processes that exited without being killed (restarted, as a supervisor would).
    exits: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    ROLES = {"src": [SOURCE_QUEUE], "clone": [CLONE_QUEUE], "evaluator": ["taskq.triggers"]}

    def start(self, role: str, wait: bool = True) -> Any:
        from taskq.dev import processes

        self.starts[role] += 1
        proc = processes.start_worker(f"{role}-{self.starts[role]}", self.ROLES[role],
                                      env=self.env, logdir=self.logdir,
                                      concurrency=self.concurrency)
        self.procs[role] = proc
        if wait:
            proc.wait_ready(120)
        return proc

    def start_beat(self, wait: bool = True) -> None:
        from taskq.dev import processes

        self.starts["beat"] += 1
        self.procs["beat"] = processes.start_beat(env=self.env, logdir=self.logdir,
                                                  home=self.logdir.parent)
        if wait:
            self.procs["beat"].wait_ready(120)

    def start_all(self) -> None:
        for role in self.ROLES:
            self.start(role, wait=False)
        self.start_beat(wait=False)
        for proc in self.procs.values():
            proc.wait_ready(120)

    def kill(self, role: str) -> None:
        import signal

        with self.lock:
            proc = self.procs[role]
            proc.kill(signal.SIGKILL)
            proc.popen.wait(10)
            self.start(role)

    def revive(self) -> list[str]:
        """Restart what exited by itself (a worker whose broker connection broke for good,
        say), as systemd or Kubernetes would; which roles those were."""
        revived = []
        with self.lock:
            for role, proc in list(self.procs.items()):
                if proc.alive():
                    continue
                self.exits[role] += 1
                revived.append(f"{proc.name} exited ({proc.popen.returncode})")
                self.start_beat() if role == "beat" else self.start(role)
        return revived

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()


def app_database_url(admin_url: str) -> str:
    """SQLite as given; PostgreSQL through a role of its own (``grant_app`` makes it), since
    the outage revokes its writes and the admin is a superuser no REVOKE reaches."""
    if not admin_url.startswith("postgresql"):
        return admin_url
    scheme, rest = admin_url.split("://", 1)
    return f"{scheme}://{APP_ROLE}:{APP_ROLE}@{rest.split('@', 1)[-1]}"


def grant_app(admin_url: str) -> None:
    """The app's PostgreSQL role, created if missing, allowed everything on the schema."""
    if not admin_url.startswith("postgresql"):
        return
    sql(admin_url, f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                   f"'{APP_ROLE}') THEN CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE}';"
                   f" END IF; END $$",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")


def sql(url: str, *statements: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def outage(admin_url: str, seconds: float) -> str:
    """No writes for ``seconds``: PostgreSQL revokes INSERT/UPDATE on runs and firings from
    the app's role; SQLite holds ``BEGIN EXCLUSIVE`` from a connection of its own (writers
    wait on their busy timeout, or fail past it)."""
    if admin_url.startswith("postgresql"):
        sql(admin_url, f"REVOKE INSERT, UPDATE ON runs, firings FROM {APP_ROLE}")
        try:
            time.sleep(seconds)
        finally:
            sql(admin_url, f"GRANT INSERT, UPDATE ON runs, firings TO {APP_ROLE}")
        return f"revoked INSERT, UPDATE on runs, firings for {seconds:.0f}s"
    path = admin_url.split("sqlite:///", 1)[1]
    conn = sqlite3.connect(path, timeout=120, isolation_level=None)
    try:
        waited = time.monotonic()
        conn.execute("BEGIN EXCLUSIVE")
        waited = time.monotonic() - waited
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return f"held BEGIN EXCLUSIVE for {seconds:.0f}s (took {waited:.1f}s to get it)"


def progress_counts(store: Any) -> dict[str, int]:
    """Cheap counts for the progress display: one grouped read."""
    from sqlalchemy import func, select

    from taskq.store.models import Run

    out: Counter[str] = Counter()
    with store.read() as conn:
        rows = conn.execute(select(Run.job, Run.status, func.count()).where(
            Run.job.in_(["chaos_src", "chaos_clone"])).group_by(Run.job, Run.status)).all()
    for job, status, n in rows:
        kind = "src" if job == "chaos_src" else "clone"
        out[kind] += n
        if status in FINAL:
            out[f"{kind}_final"] += n
        if status == "succeeded":
            out[f"{kind}_succeeded"] += n
    return dict(out)


def tally(store: Any) -> dict[str, int]:
    """Lost, duplicated and still-pending, read from SQL, the record of what happened.

    lost: a source run that succeeded with no firing and no clone; duplicated: a source run
    with more than one firing or more than one clone; pending: a clone not final."""
    from sqlalchemy import select

    from taskq.store.models import Firing, Run, RunEvent, Trigger

    with store.read() as conn:
        sources = dict(conn.execute(select(Run.uuid, Run.status).where(
            Run.job == "chaos_src")).all())
        clones = conn.execute(select(Run.status, Run.params).where(
            Run.job == "chaos_clone")).all()
        trigger_ids = [t for (t,) in conn.execute(select(Trigger.id).where(
            Trigger.name == TRIGGER))]
        event_run = dict(conn.execute(select(RunEvent.event_id, RunEvent.run_uuid).where(
            RunEvent.kind == "run_status_succeeded")).all())
        firings = conn.execute(select(Firing.event_id, Firing.outcome).where(
            Firing.trigger_id.in_(trigger_ids))).all()
    fired: Counter[str] = Counter()
    errors = 0
    for event_id, outcome in firings:
        if outcome == "fired":
            fired[str(event_run.get(event_id))] += 1
        else:
            errors += 1
    cloned = Counter(str((params or {}).get("upstream")) for _, params in clones)
    succeeded = [u for u, s in sources.items() if s == "succeeded"]
    return {
        "source_runs": len(sources),
        "sources_succeeded": len(succeeded),
        "sources_failed": sum(1 for s in sources.values() if s == "failed"),
        "sources_not_final": sum(1 for s in sources.values() if s not in FINAL),
        "firings": sum(fired.values()),
        "firing_errors": errors,
        "clones": len(clones),
        "clones_succeeded": sum(1 for s, _ in clones if s == "succeeded"),
        "clones_failed": sum(1 for s, _ in clones if s == "failed"),
        "lost": sum(1 for u in succeeded if not fired[u] and not cloned[u]),
        "duplicated": sum(1 for u in sources if fired[u] > 1 or cloned[u] > 1),
        "still_pending": sum(1 for s, _ in clones if s not in FINAL),
    }
