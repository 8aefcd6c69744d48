"""Agents: a run routed to ``agent/queue`` is published through that agent's broker (here a
second Redis database) and run by the agent's worker, while its events still reach taskq."""

from __future__ import annotations

import json
import re

import pytest
import redis

import taskq
from taskq import ValidationError
from taskq.core.statuses import Status
from taskq.settings import configure
from tests.conftest import wait_for
from tests.integration.test_seed_scenario import clones_of
from workers import examples

pytestmark = pytest.mark.integration


def other_database(url: str) -> str:
    """The same server, database 12 (the tests use 11)."""
    if "db=" in url:
        return re.sub(r"db=\d+", "db=12", url)
    return re.sub(r"/\d+$", "/12", url)


def test_hook_and_trigger_route_through_another_agents_broker(stack, settings) -> None:
    agent_broker = other_database(settings.redis_url)
    other = redis.Redis.from_url(agent_broker)
    other.flushdb()
    agents = {"gpu-cluster": {"broker_url": agent_broker, "queues": ["gpu"]}}
    configure(settings, agents=agents)
    stack.evaluator(wait=False, TASKQ_AGENTS=json.dumps(agents))
    stack.worker("train", ["train"], wait=False)
    # The agent's worker consumes from the agent's broker, and reports to taskq's Redis.
    stack.worker("gpu", ["gpu"], wait=False, TASKQ_BROKER=agent_broker)
    for p in stack.procs:
        p.wait_ready(90)
    taskq.add_trigger(name="tb-on-gpu", job="tensorboard", queue="gpu-cluster/gpu",
                      event=taskq.EventTrigger(ref="jobs.train", kinds=["run_status_running"]),
                      params={"uuid": "{{ trigger.run.uuid }}"})
    train = taskq.submit(examples.train, params={"seconds": 0.3, "epochs": 1})
    board = wait_for(lambda: next(iter(clones_of(train.uuid, "tb-on-gpu")), None), 20)
    board = wait_for(lambda: (b := taskq.get_run(board.uuid)) and b.done and b, 30)
    assert board.status == Status.SUCCEEDED and board.queue == "gpu"
    # Nothing was left on taskq's own broker under that queue name.
    assert redis.Redis.from_url(settings.redis_url).llen("gpu") == 0
    other.flushdb()


@pytest.mark.parametrize(("queue", "message"), [
    ("gpu-cluster/train", "agent 'gpu-cluster' does not allow queue 'train'"),
    ("elsewhere/gpu", "unknown agent 'elsewhere'"),
    ("gpu-cluster/gpu/x", "more than two parts"),
])
def test_bad_agent_routes_are_refused(settings, queue, message) -> None:
    configure(settings, agents={"gpu-cluster": {"broker_url": "redis://127.0.0.1:6379/12",
                                                "queues": ["gpu"]}})
    with pytest.raises(ValidationError, match=re.escape(message)):
        taskq.add_trigger(name="t", job="tensorboard", queue=queue,
                          event={"ref": "jobs.train", "kinds": ["run_status_running"]})
    with pytest.raises(ValidationError, match=re.escape(message)):
        taskq.add_hook(job="train", hook={"hubRef": "evaluate", "queue": queue})
