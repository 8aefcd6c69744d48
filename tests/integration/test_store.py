"""The store on both databases: migrations match the models, and the compare-and-set
transitions and unique firings hold under concurrent writers."""

from __future__ import annotations

import threading
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from taskq.core.events import Event
from taskq.core.planning import Delivery, NewRun
from taskq.core.statuses import Status
from taskq.core.stored import TriggerRef
from taskq.store.manager import Store
from taskq.store.models import Base

pytestmark = pytest.mark.integration


def test_migrations_match_the_models(database_url: str) -> None:
    store = Store(database_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def new_run(store: Store) -> str:
    run = str(uuid.uuid4())
    store.create_run(uuid=run, job="train", namespace="default", project=None, queue="train",
                     agent="default", task_name="taskq.job.train", params={})
    return run


def test_one_claim_wins_among_concurrent_workers(database_url: str) -> None:
    """Eight threads claim the same attempt at once: exactly one starts the run."""
    store = Store(database_url)
    run = new_run(store)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(store.transition(run, Status.RUNNING, attempt=1, via=(
            Status.STARTING, Status.INITIALIZING)) is not None)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert [e["status"] for e in store.run_events(run)] == [
        "compiled", "queued", "starting", "initializing", "running"]


def test_one_firing_wins_among_concurrent_evaluators(database_url: str) -> None:
    store = Store(database_url)
    trig = store.add_trigger(name="t", namespace="default", kind="event",
                             spec={"ref": "jobs.train", "kinds": ["run_status_running"]},
                             job="tensorboard", params={}, queue=None)
    upstream = new_run(store)
    transition = store.transition(upstream, Status.RUNNING, attempt=1)
    assert transition is not None
    event: Event = transition.event
    created: list[bool] = []
    barrier = threading.Barrier(6)

    def fire() -> None:
        barrier.wait()
        clone = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{trig.id}:{upstream}"))
        rec = store.record_firing(
            trigger=TriggerRef(trig.id, "t"), dedup_key=f"runs.{upstream}:running",
            event=event, run=NewRun(uuid=clone, job="tensorboard", namespace="default",
                                    project=None, queue="viz", params={}),
            outbox=Delivery("taskq.job.tensorboard", "viz", "default"))
        created.append(rec.created)

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(created) == [False] * 5 + [True]
    assert store.count("firings") == 1 and store.count("outbox_pending") == 2  # + upstream's


def test_event_names_are_kept_apart_from_the_log_and_filled_on_upgrade(
        database_url: str) -> None:
    """Registering a trigger asks which event names exist: a short table, written with each
    published event and filled from the log by the migration, not a scan of every event."""
    from sqlalchemy import insert

    from taskq.core.events import custom_event
    from taskq.store import migrate
    from taskq.store.base import RUN_EVENTS

    store = Store(database_url)
    store.record_events([custom_event("nightly", {}, namespace="team-a"),
                         custom_event("nightly", {}, namespace="team-a"),
                         custom_event("deploy", {})])
    store.record_event(custom_event("deploy", {}))
    assert store.known_names("team-a").events == {"nightly"}
    assert store.known_names("default").events == {"deploy"}

    migrate.downgrade(database_url, "0012")
    old = custom_event("from-before", {}, namespace="team-a")
    with store.engine.begin() as conn:  # an event stored before the table existed
        conn.execute(insert(RUN_EVENTS), store._event_row(old, None))
    migrate.upgrade(database_url)
    assert store.known_names("team-a").events == {"nightly", "from-before"}
    assert store.known_names("default").events == {"deploy"}
