"""Example ML jobs: ``train`` (queue ``train``), ``evaluate`` and ``tensorboard`` (``viz``).

They sleep instead of training so the demo and the tests are quick, but they use taskq the
way a real job does: params in (declared by the signature, as Celery users write them),
metrics and outputs out, ``current.trigger`` for lineage.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import taskq
from taskq import current

MARKS = os.environ.get("TASKQ_EXAMPLE_MARKS")
#: The longest a held ``train`` waits for its release file.
HOLD_MAX_SECONDS = 300.0


def _mark(name: str) -> None:
    """Benchmarks and tests read these timestamps (first line of a job, in ns)."""
    if MARKS:
        path = Path(MARKS) / f"{name}.{current.run.uuid}"
        path.write_text(str(time.time_ns()))


@taskq.job(queue="train", outputs=["loss"])
def train(learning_rate: float = 0.01, epochs: int = 3, seconds: float = 1.0,
          fail: bool = False, hold: str = "") -> dict[str, Any]:
    """Pretend to train: logs a falling loss per epoch. With ``hold`` (a file path) it stays
    running until that file exists (at most HOLD_MAX_SECONDS), so a test can decide when
    training ends instead of guessing how long it takes."""
    _mark("train")
    if fail:
        raise RuntimeError("training diverged (fail=True)")
    deadline = time.monotonic() + HOLD_MAX_SECONDS
    while hold and not Path(hold).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    loss = 1.0
    for epoch in range(int(epochs)):
        time.sleep(float(seconds) / max(1, int(epochs)))
        loss *= 1.0 - min(0.9, float(learning_rate) * 10)
        current.log_metric("loss", loss, step=epoch)
    current.set_output("loss", loss)
    return {"loss": loss}


@taskq.job(queue="viz")
def tensorboard(uuid: str = "", seconds: float = 0.2) -> str:
    """Pretend to serve a Tensorboard for the training run ``uuid``."""
    _mark("tensorboard")
    trig = current.trigger
    source = trig.run.uuid if trig and trig.run else uuid
    time.sleep(float(seconds))
    current.set_output("url", f"http://tensorboard.local/{source}")
    return source


@taskq.job(queue="viz")
def evaluate(uuid: str = "") -> float:
    """Pretend to evaluate the model of run ``uuid``; records what it was told (hook context)."""
    _mark("evaluate")
    current.set_output("accuracy", 0.93)
    current.set_output("context", current.context)
    return 0.93


@taskq.job(queue="train", approval=True)
def gated(label: str = "") -> str:
    """A run someone must approve first (``taskq runs approve``): records that it ran."""
    _mark("gated")
    return label


@taskq.job(queue="viz")
def noop() -> None:
    """The benchmark's downstream job: records its first line and returns."""
    _mark("noop")


@taskq.job(queue="train", outputs=["seen"])
def train_on_commit(commit: str = "", seconds: float = 0.1) -> dict[str, Any]:
    """Train on a new git commit (the seed's own example): records what it read of the push
    in ``current.trigger.event``, and ``commit``, which taskq maps from the same payload."""
    _mark("train_on_commit")
    trig = current.trigger
    event = trig.event if trig else None
    seen = {"kind": event.kind if event else None, "commit_param": commit,
            **(event.payload if event else {})}
    time.sleep(float(seconds))
    current.set_output("seen", seen)
    return seen


@taskq.job(queue="train")
def diverging(loss: float = 12.5) -> None:
    """A training run that writes a checkpoint, then finds its loss diverging: it says
    both while it runs (a ``run_new_artifacts`` event, an ``alert_critical`` one)."""
    _mark("diverging")
    current.log_artifact("checkpoint", f"file:///tmp/ckpt-{current.run.uuid}.pt", kind="model")
    current.alert("critical", "loss diverged", loss=loss, epoch=3)


@taskq.job(queue="train", alerts=[taskq.Alert(metric="loss", above=5.0, level="critical")])
def spiking(losses: str = "1") -> None:
    """Logs ``losses`` (comma-separated) in turn; the alert declared on it, not its code,
    says when the loss crosses above 5 (an ``alert_critical`` event)."""
    for step, loss in enumerate(losses.split(",")):
        current.log_metric("loss", float(loss), step=step)


@taskq.job(queue="train")
def phases(warn: str = "") -> str:
    """Says where it is, as a long job does: ``processing`` once set up, ``warning`` (with
    ``warn`` as the reason) when something is off but it goes on."""
    _mark("phases")
    current.set_status("processing")
    if warn:
        current.warn(warn)
    return "done"


@taskq.job(queue="viz")
def observe() -> None:
    """Records the event that started it, as the job reads it from ``current.trigger``
    (tests read ``observe.<uuid>``)."""
    trig = current.trigger
    event = trig.event if trig else None
    if MARKS and event is not None:
        seen = {"kind": event.kind, "id": event.id, "uuid": event.payload.get("uuid"),
                "status": event.payload.get("status"),
                "previous": event.payload.get("previous_status"),
                "reason": event.payload.get("reason"),
                "incarnation": event.payload.get("incarnation"),
                "message": event.payload.get("message"), "fields": event.payload.get("fields"),
                "artifacts": event.payload.get("artifacts"),
                "actor": event.payload.get("actor"), "payload": event.payload}
        # Written aside and renamed: a test reading marks never sees half a file.
        draft = Path(MARKS) / f".observe.{current.run.uuid}"
        draft.write_text(json.dumps(seen))
        draft.replace(Path(MARKS) / f"observe.{current.run.uuid}")
