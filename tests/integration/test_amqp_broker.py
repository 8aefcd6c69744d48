"""RabbitMQ as the job broker (``TASKQ_BROKER=amqp://...``), Redis still the event stream:
the seed scenario and a whole worker SIGKILLed. Runs when ``TASKQ_TEST_AMQP_URL`` is set
(CI sets it) and fails, not skips, when that broker does not answer.

On AMQP a dead consumer's unacknowledged messages go back to their queue at once: the
prefetched run is delivered to another worker straight away, and the running one is failed
"worker lost" by the worker that is handed its message again (the start claim refuses to run
it twice), or by the heartbeat sweep, whichever comes first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import taskq
from tests.conftest import Stack, running_stack
from tests.integration import test_seed_scenario as seed
from tests.integration.test_worker_death import kill_whole_worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("TASKQ_TEST_AMQP_URL")
    if not url:
        pytest.skip("RabbitMQ: set TASKQ_TEST_AMQP_URL to run these")
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:
        pytest.fail(f"TASKQ_TEST_AMQP_URL={url} does not answer: {exc}")
    return url


@pytest.fixture
def rabbit(settings: Any, amqp_url: str, tmp_path: Path,
           request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack whose job broker is RabbitMQ, its queues emptied of earlier tests' messages."""
    from taskq.settings import configure

    s = configure(settings, broker=amqp_url, worker_lost_after_seconds=20.0)
    taskq.Client().rt.publisher.app.control.purge()
    yield from running_stack(s, tmp_path, request)


def test_seed_scenario_on_rabbitmq(rabbit: Stack) -> None:
    assert taskq.Client().rt.publisher.app.conf.broker_url.startswith("amqp")
    seed.test_tensorboard_starts_while_train_runs(rabbit, rabbit.settings)


def reserved_anywhere(uuid: str) -> bool:
    replies = taskq.Client().rt.publisher.app.control.inspect(timeout=2.0).reserved() or {}
    return any(task.get("id") == uuid for tasks in replies.values() for task in tasks or [])


def test_whole_worker_killed_on_rabbitmq(rabbit: Stack, tmp_path: Path) -> None:
    kill_whole_worker(rabbit, tmp_path, reserved_anywhere, republished=False)
