"""Jobs and a schedule_function for the entity-trigger tests (imported by the workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import taskq
from taskq import current


def _marks() -> Path:
    return Path(os.environ["TASKQ_EXAMPLE_MARKS"])


@taskq.job(queue="viz", inputs={"uuid": {"type": "str", "default": ""},
                                "seconds": {"type": "float", "default": 0.0}})
def entity_consumer(uuid: str = "", seconds: float = 0.0) -> None:
    """What triggers launch: appends one line per execution (a re-enqueued run twice)."""
    with (_marks() / f"consumer.{current.run.uuid}").open("a") as fh:
        fh.write(f"{uuid}\n")
    time.sleep(float(seconds))
    current.set_output("uuid", uuid)


@taskq.job(queue="train", inputs={"values": {"type": "list", "default": []},
                                  "pause": {"type": "float", "default": 1.1},
                                  "fail": {"type": "bool", "default": False}})
def metric_curve(values: list[Any], pause: float = 1.1, fail: bool = False) -> None:
    """Logs ``loss/val`` once per pause, so each value is its own flush (its own change)."""
    for step, value in enumerate(values):
        time.sleep(float(pause))
        current.log_scalar("loss", "val", float(value), step=step)
    if fail:
        raise RuntimeError("failed on purpose")


def record(entity_id: str) -> str:
    """A schedule_function: one mark per call; sleeps TASKQ_TEST_FN_SECONDS."""
    (_marks() / f"function.{entity_id}.{time.time_ns()}").write_text(entity_id)
    time.sleep(float(os.environ.get("TASKQ_TEST_FN_SECONDS", "0")))
    return entity_id


@taskq.job(queue="default")
def add_task_id_here() -> None:
    """The task ClearML's trigger example schedules (its placeholder id, here a job's
    name): a run that ends with a high accuracy, for the example's task trigger."""
    current.log_scalar("epoch_accuracy", "epoch_accuracy", 0.995, step=1)
