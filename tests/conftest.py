"""Fixtures shared by the three tiers.

Real services only: Redis is the one at TASKQ_TEST_REDIS_URL, else 127.0.0.1:6379 if it
answers, else a bundled redis-server started for the session. Databases: SQLite always;
PostgreSQL when TASKQ_TEST_DATABASE_URL is set (CI sets it, and fails rather than skip when
it is missing). Each test gets a fresh database cloned from a migrated template.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
TEST_DB_INDEX = 11


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


_session_redis: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Pick the test Redis before anything imports taskq.app, so nothing in the test process
    ever falls back to the embedded default in the working directory."""
    explicit = os.environ.get("TASKQ_TEST_REDIS_URL")
    force_bundled = os.environ.get("TASKQ_TEST_BUNDLED_REDIS") == "1"
    if explicit:
        url = explicit
    elif not force_bundled and _redis_answers(f"redis://127.0.0.1:6379/{TEST_DB_INDEX}"):
        url = f"redis://127.0.0.1:6379/{TEST_DB_INDEX}"
    else:
        import tempfile

        from taskq.stream.embedded_redis import ensure_redis

        home = Path(tempfile.mkdtemp(prefix="taskq-test-redis-"))
        sock = ensure_redis(home)
        _session_redis["home"] = home
        url = f"unix://{sock}?db={TEST_DB_INDEX}"
    _session_redis["url"] = url
    os.environ["TASKQ_REDIS_URL"] = url
    os.environ.setdefault("TASKQ_HOME", str(Path(tempfile_dir()) / "home"))


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="taskq-test-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if "home" in _session_redis:
        from taskq.stream.embedded_redis import stop_redis

        stop_redis(_session_redis["home"])


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = str(_session_redis["url"])
    if not _redis_answers(url):
        pytest.fail(f"test Redis {url} does not answer")
    return url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


# -- databases ---------------------------------------------------------------------------


def _pg_admin_url() -> str | None:
    return os.environ.get("TASKQ_TEST_DATABASE_URL")


def _pg_exec(admin_url: str, sql: str) -> None:
    from sqlalchemy import create_engine, text

    url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from taskq.store import migrate

    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    admin = _pg_admin_url()
    if not admin:
        yield None
        return
    from taskq.store import migrate

    name = f"taskq_tmpl_{os.getpid()}"
    _pg_exec(admin, f"DROP DATABASE IF EXISTS {name}")
    _pg_exec(admin, f"CREATE DATABASE {name}")
    migrate.upgrade(_with_db(admin, name))
    from taskq.store.engine import dispose_inherited

    dispose_inherited()
    yield name
    _pg_exec(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def backends() -> list[Any]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql"),
    ]


@pytest.fixture(params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 sqlite_template: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "taskq.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    admin = _pg_admin_url()
    if not admin:
        if os.environ.get("CI"):
            pytest.fail("CI must run PostgreSQL: set TASKQ_TEST_DATABASE_URL")
        pytest.skip("PostgreSQL: set TASKQ_TEST_DATABASE_URL to run these")
    template = request.getfixturevalue("pg_template")
    name = f"taskq_t_{uuid.uuid4().hex[:12]}"
    _pg_exec(admin, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield _with_db(admin, name)
    from taskq.store.engine import _engines

    for key in [k for k in _engines if k[1].endswith(f"/{name}")]:
        _engines.pop(key).dispose()
    _pg_exec(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- taskq configured against them -------------------------------------------------------


@pytest.fixture
def settings(redis_url: str, database_url: str, r: redis.Redis, tmp_path: Path) -> Any:
    from taskq.settings import configure

    marks = tmp_path / "marks"
    marks.mkdir()
    s = configure(redis_url=redis_url, database_url=database_url, home=tmp_path / ".taskq",
                  imports=["workers.examples"], claim_idle_ms=1500, evaluator_block_ms=500,
                  evaluator_slice_seconds=5.0, reconcile_grace_seconds=0.5,
                  relay_grace_seconds=0.5, reconcile_every=1.0, relay_every=1.0,
                  keepalive_every=1.0, namespaces=["default", "team-a", "team-b"])
    os.environ["TASKQ_EXAMPLE_MARKS"] = str(marks)
    import workers.examples  # noqa: F401  - registers the example jobs in this process
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates

    sync_job_templates(get_runtime())
    return s


@pytest.fixture
def chaining_jobs(settings: Any) -> Iterator[None]:
    """workers/chaining.py's jobs (training, data, prediction, report, dataflow, deploy) in
    this process for one test only: their declared triggers must not be stored by the
    job sync of other tests."""
    import importlib

    from taskq.celery import jobs
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates

    module = importlib.import_module("workers.chaining")
    defs = [obj.taskq_job for obj in vars(module).values() if hasattr(obj, "taskq_job")]
    for jd in defs:
        jobs.registry.add(jd)
    sync_job_templates(get_runtime())
    try:
        yield
    finally:
        for jd in defs:
            jobs.registry.remove(jd.name)


def env_for(settings: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    env.update({
        "TASKQ_REDIS_URL": settings.redis_url,
        "TASKQ_DATABASE_URL": settings.database_url,
        "TASKQ_HOME": str(settings.home),
        "TASKQ_IMPORTS": ",".join(settings.imports),
        "TASKQ_CLAIM_IDLE_MS": str(settings.claim_idle_ms),
        "TASKQ_EVALUATOR_BLOCK_MS": str(settings.evaluator_block_ms),
        "TASKQ_EVALUATOR_SLICE_SECONDS": str(settings.evaluator_slice_seconds),
        "TASKQ_RECONCILE_GRACE_SECONDS": str(settings.reconcile_grace_seconds),
        "TASKQ_RELAY_GRACE_SECONDS": str(settings.relay_grace_seconds),
        "TASKQ_RECONCILE_EVERY": str(settings.reconcile_every),
        "TASKQ_RELAY_EVERY": str(settings.relay_every),
        "TASKQ_KEEPALIVE_EVERY": str(settings.keepalive_every),
        "TASKQ_REDELIVER_AFTER_SECONDS": str(settings.redeliver_after_seconds),
        "TASKQ_REDELIVER_EVERY": str(settings.redeliver_every),
        "TASKQ_WORKER_LOST_AFTER_SECONDS": str(settings.worker_lost_after_seconds),
        "TASKQ_UNSCHEDULABLE_AFTER_SECONDS": str(settings.unschedulable_after_seconds),
        "TASKQ_NAMESPACES": ",".join(settings.namespaces),
        "TASKQ_EXAMPLE_MARKS": os.environ["TASKQ_EXAMPLE_MARKS"],
        "PYTHONPATH": str(ROOT),
    })
    if settings.broker:
        env["TASKQ_BROKER"] = settings.broker
    env.update(extra)
    return env


class Stack:
    """Real Celery processes for one test; everything is stopped (and logs kept) at the end."""

    def __init__(self, settings: Any, logdir: Path) -> None:
        self.settings = settings
        self.logdir = logdir
        self.procs: list[Any] = []

    def worker(self, name: str, queues: list[str], *, concurrency: int = 1,
               wait: bool = True, pool: str = "prefork", extra_args: tuple[str, ...] = (),
               **env: str) -> Any:
        from taskq.dev import processes

        proc = processes.start_worker(name, queues, env=env_for(self.settings, **env),
                                      logdir=self.logdir, concurrency=concurrency, pool=pool,
                                      extra_args=extra_args)
        self.procs.append(proc)
        if wait:
            proc.wait_ready(90)
        return proc

    def evaluator(self, name: str = "evaluator", *, wait: bool = True, **env: str) -> Any:
        from taskq.constants import TRIGGERS_QUEUE

        return self.worker(name, [TRIGGERS_QUEUE], concurrency=2, wait=wait, **env)

    def beat(self) -> Any:
        from taskq.dev import processes

        proc = processes.start_beat(env=env_for(self.settings), logdir=self.logdir,
                                    home=self.settings.home)
        self.procs.append(proc)
        proc.wait_ready(60)
        return proc

    def standard(self) -> None:
        """Evaluator + a train worker + a viz worker, started in parallel."""
        self.evaluator(wait=False)
        self.worker("train", ["train"], wait=False)
        self.worker("viz", ["viz", "default"], concurrency=2, wait=False)
        for p in self.procs:
            p.wait_ready(90)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


def running_stack(settings: Any, tmp_path: Path, request: pytest.FixtureRequest
                  ) -> Iterator[Stack]:
    """A stack for one test, stopped after it; a failed test prints each process's log."""
    s = Stack(settings, tmp_path / "logs")
    yield s
    s.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for p in s.procs:
            print(f"\n===== {p.name} log (tail) =====\n{p.output()[-3000:]}")


@pytest.fixture
def stack(settings: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    yield from running_stack(settings, tmp_path, request)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def race(call: Callable[[], Any], threads: int = 6) -> list[Any]:
    """``call`` from ``threads`` threads at once: what each returned, or the
    ``taskq.ValidationError`` it raised (the losers of a race a user may start twice)."""
    from taskq.errors import ValidationError

    results: list[Any] = []

    def one() -> None:
        try:
            results.append(call())
        except ValidationError as exc:
            results.append(exc)

    started = [threading.Thread(target=one) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    return results


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def marks(kind: str) -> list[str]:
    d = Path(os.environ["TASKQ_EXAMPLE_MARKS"])
    return sorted(p.name.split(".", 1)[1] for p in d.glob(f"{kind}.*"))


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("taskq") or str(Path(os.sys.executable).parent / "taskq")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=str(ROOT), stdin=subprocess.DEVNULL)
