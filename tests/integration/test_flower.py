"""Flower, configured as docker-compose.yml configures it (basic auth), lists each cloned
run with its queue, and refuses unauthenticated API calls."""

from __future__ import annotations

import socket

import httpx
import pytest

import taskq
from taskq.dev import processes
from tests.conftest import env_for, wait_for
from tests.integration.test_seed_scenario import add_seed_trigger, clones_of
from workers import examples

pytestmark = pytest.mark.integration
AUTH = ("admin", "s3cret-for-tests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_flower_lists_cloned_runs_with_their_queue(stack, settings, tmp_path) -> None:
    port = free_port()
    flower = processes.start_flower(env=env_for(settings), logdir=tmp_path / "logs", port=port,
                                    basic_auth=":".join(AUTH))
    stack.procs.append(flower)
    flower.wait_ready(60)
    stack.standard()
    add_seed_trigger()
    train = taskq.submit(examples.train, params={"seconds": 0.3, "epochs": 1})
    board = wait_for(lambda: next(iter(clones_of(train.uuid)), None), 20)
    wait_for(lambda: taskq.get_run(board.uuid).done, 20)

    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/api/tasks", timeout=10).status_code == 401

    def seen() -> dict | None:
        tasks = httpx.get(f"{base}/api/tasks", auth=AUTH, timeout=10).json()
        info = tasks.get(board.uuid)
        return info if info and info.get("state") == "SUCCESS" else None

    info = wait_for(seen, 30, interval=0.5, message="Flower to show the cloned run")
    assert info["name"] == "taskq.job.tensorboard"
    assert info["routing_key"] == "viz"
    workers = httpx.get(f"{base}/api/workers", auth=AUTH, timeout=10,
                        params={"refresh": "true"}).json()
    assert any("viz" in {q["name"] for q in w.get("active_queues", [])}
               for w in workers.values())
