"""Bad events apart from a broken infrastructure: a database that refuses writes holds the
evaluator (degraded) instead of dead-lettering good events; poison text is stored escaped and
a final status always lands; undecodable entries are dead-lettered with their own reason;
dead letters can be replayed, once each."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from typing import Any

import pytest

import taskq
from taskq import constants
from taskq.core.events import custom_event
from taskq.core.statuses import Status
from tests.conftest import _pg_admin_url, _pg_exec, _with_db, env_for, run_cli, wait_for
from tests.integration.test_exactly_once import drained

pytestmark = pytest.mark.integration

PROBE = "poison-probe"


def add_probe_trigger(name: str = "on-probe") -> dict[str, Any]:
    return taskq.add_trigger(name=name, job="noop",
                             event=taskq.EventTrigger(ref=f"events.{PROBE}",
                                                      kinds=["custom_event"]))


def fired_event_ids(trigger: dict[str, Any]) -> list[str]:
    rows = taskq.Client().rt.store.firings(trigger["id"], limit=10_000)
    return sorted(f["event_id"] for f in rows if f["outcome"] == "fired")


def health(r) -> dict[str, dict[str, Any]]:
    raw = r.hgetall(constants.EVALUATORS_HEALTH)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


@pytest.fixture
def app_settings(settings, database_url: str) -> Any:
    """On PostgreSQL, taskq connects as an ordinary role (a superuser ignores privileges),
    so the test can take INSERT on ``firings`` away from it."""
    from taskq.settings import configure

    if not database_url.startswith("postgresql"):
        yield settings
        return
    admin, db = _pg_admin_url(), database_url.rpartition("/")[2]
    assert admin is not None
    role = f"taskq_app_{uuid.uuid4().hex[:10]}"
    _pg_exec(admin, f"CREATE ROLE {role} LOGIN")
    _pg_exec(database_url, f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; "
                           f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    base = admin.rpartition("@")[2].rpartition("/")[0]
    yield configure(settings, database_url=f"postgresql://{role}@{base}/{db}")
    configure(settings)
    from taskq.store.engine import _engines

    for key in [k for k in _engines if role in k[1]]:
        _engines.pop(key).dispose()
    _pg_exec(database_url, f"DROP OWNED BY {role}")
    _pg_exec(_with_db(admin, "postgres"),
             f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
    _pg_exec(admin, f"DROP ROLE IF EXISTS {role}")


class Outage:
    """Writes to ``firings`` refused: INSERT revoked on PostgreSQL; on SQLite another
    connection holds the write lock longer than taskq's busy timeout."""

    def __init__(self, settings: Any, admin_db_url: str) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.admin_db_url = admin_db_url
        self.role = self.url.split("://", 1)[1].split("@", 1)[0]
        self.lock: sqlite3.Connection | None = None

    @property
    def evaluator_env(self) -> dict[str, str]:
        # A short busy timeout, so a held lock is an error within the test's time.
        return {"TASKQ_DATABASE_URL": f"{self.url}?timeout=0.05"} if self.sqlite else {}

    @property
    def sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def begin(self) -> None:
        if self.sqlite:
            self.lock = sqlite3.connect(self.url.split("///", 1)[1], timeout=30,
                                        isolation_level=None)
            self.lock.execute("BEGIN EXCLUSIVE")
        else:
            _pg_exec(self.admin_db_url, f"REVOKE INSERT ON firings FROM {self.role}")

    def end(self) -> None:
        if self.lock is not None:
            self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock = None
        elif not self.sqlite:
            _pg_exec(self.admin_db_url, f"GRANT INSERT ON firings TO {self.role}")


def test_a_database_outage_dead_letters_nothing_and_every_event_fires_once(
        app_settings, database_url, stack, r) -> None:
    """Failure: with writes to firings refused for longer than the delivery budget, every
    event was dead-lettered ("last error: None") and never fired once the database was
    back. Now the evaluator holds them, says it is degraded, and catches up."""
    outage = Outage(app_settings, database_url)
    stack.settings = app_settings
    trigger = add_probe_trigger()
    stack.evaluator(**outage.evaluator_env)
    count = 30 if outage.sqlite else 100
    bus = taskq.Client().rt.bus
    outage.begin()
    try:
        events = [custom_event(PROBE, {"i": i}) for i in range(count)]
        bus.append_many(events)
        wait_for(lambda: any(h["state"] == "degraded" for h in health(r).values()), 60,
                 message="the evaluator reporting itself degraded")
        status = run_cli("status", env=env_for(app_settings))
        assert status.returncode == 0, status.stderr
        assert "degraded" in status.stdout, status.stdout
        # Longer than max_deliveries reclaims (claim_idle_ms is 1.5 s in the tests).
        time.sleep(25)
        assert bus.dead_letters() == []
    finally:
        outage.end()
    wait_for(lambda: len(fired_event_ids(trigger)) == count, 120,
             message=f"all {count} events fired")
    wait_for(lambda: drained(r), 60, message="stream drained")
    assert fired_event_ids(trigger) == sorted(e.id for e in events)
    assert bus.dead_letters() == []
    wait_for(lambda: all(h["state"] == "ok" for h in health(r).values()), 30,
             message="the evaluator healthy again")


@pytest.fixture
def poison_settings(settings) -> Any:
    from taskq.runtime import get_runtime
    from taskq.services.trigger_admin import sync_job_templates
    from taskq.settings import configure

    s = configure(settings, imports=["workers.examples", "tests.integration.poison_jobs"])
    import tests.integration.poison_jobs  # noqa: F401

    sync_job_templates(get_runtime())
    return s


def test_a_nul_byte_in_a_failure_message_still_fails_the_run_and_fires(
        poison_settings, stack, r) -> None:
    """Failure: on PostgreSQL the run stayed `running` for ever and no trigger on failure
    fired. The reason and outputs are stored escaped; the final status lands."""
    from tests.integration.poison_jobs import POISON, poison_fail

    stack.settings = poison_settings
    stack.evaluator(wait=False)
    stack.worker("train", ["train"], wait=False)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_trigger(name="on-poison-failed", job="noop",
                      event=taskq.EventTrigger(ref="jobs.poison_fail",
                                               kinds=["run_status_failed"]))
    runs = [taskq.submit(poison_fail) for _ in range(3)]
    for run in runs:
        done = wait_for(lambda run=run: (x := taskq.get_run(run.uuid)).done and x, 60,
                        message=f"run {run.uuid} final")
        assert done.status == Status.FAILED
        assert done.reason == "ValueError: bad byte \\x00 and \\udcff in the message"
        assert done.outputs["note"] == "bad byte \\x00 and \\udcff in the message"
        assert POISON not in done.reason
    clones = wait_for(lambda: len(c := taskq.list_runs(trigger="on-poison-failed"))
                      == len(runs) and c, 30, message="one clone per failed run")
    sources = sorted(c.trigger_context["run"]["uuid"] for c in clones)
    assert sources == sorted(run.uuid for run in runs)


def test_a_deeply_nested_entry_is_dead_lettered_with_its_own_reason(stack, settings,
                                                                    r) -> None:
    """Failure: a payload 100,000 levels deep raised RecursionError (not an EventError)
    before the delivery check, so it stayed pending for ever."""
    trigger = add_probe_trigger()
    stack.evaluator()
    depth = 100_000
    deep = '{"id": "deep", "kind": "custom_event", "ref": "events.x", "payload": ' + (
        '{"a": ' * depth) + "1" + "}" * depth + "}"
    r.xadd(constants.EVENTS_STREAM, {"event": deep})
    good = custom_event(PROBE, {"i": 1})
    taskq.Client().rt.bus.append(good)
    dead = wait_for(lambda: taskq.Client().rt.bus.dead_letters(), 120,
                    message="the deep entry dead-lettered")
    assert len(dead) == 1
    assert "RecursionError" in dead[0]["reason"], dead[0]["reason"]
    assert "delivered 6 times" in dead[0]["reason"], dead[0]["reason"]
    wait_for(lambda: drained(r), 30, message="stream drained")
    assert fired_event_ids(trigger) == [good.id]


def test_every_column_stores_poison_text(database_url: str) -> None:
    """NUL and a lone surrogate in a reason, outputs, params, an event's id and payload and
    a model's version: stored escaped on SQLite and PostgreSQL alike, found again by id."""
    from taskq.core.watched import Family
    from taskq.store.manager import Store

    store = Store(database_url)
    poison = "x\x00y\udcff"
    run = str(uuid.uuid4())
    store.create_run(uuid=run, job="train", namespace="default", project=None, queue="train",
                     agent="default", task_name="taskq.job.train", params={"p": poison})
    assert store.transition(run, Status.RUNNING, attempt=1)
    assert store.transition(run, Status.FAILED, attempt=1, reason=poison,
                            outputs={poison: poison})
    stored = store.get_run(run)
    assert stored is not None
    escaped = "x\\x00y\\udcff"
    assert (stored.status, stored.reason) == ("failed", escaped)
    assert stored.params == {"p": escaped} and stored.outputs == {escaped: escaped}
    event = custom_event(PROBE, {"f": poison}, event_id="id-x\x00y")  # str ids refuse surrogates
    assert store.record_event(event) and not store.record_event(event)
    entity, _ = store.register_entity(Family.MODELS, namespace="default", name="m",
                                      project=None, version=poison, tags=[poison], uri=poison,
                                      metadata={poison: poison}, published=False)
    assert entity["version"] == escaped and entity["uri"] == escaped
    store.engine.dispose()
