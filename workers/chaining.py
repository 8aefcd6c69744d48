"""Chained example jobs (Metaflow's event-triggering examples, as taskq jobs).

``training`` saves a model; ``prediction`` runs when a training run succeeds and reads the
model through ``current.trigger.data``; ``report`` waits for a new ``training`` *and* a new
``data`` run; ``dataflow`` runs when both ``first`` and ``second`` are published, with the
payload field ``x`` as its param.
"""

from __future__ import annotations

from typing import Any

import taskq
from taskq import current


@taskq.job(queue="train")
def training(fail: bool = False) -> None:
    if fail:
        raise RuntimeError("training failed (fail=True)")
    current.set_output("model", {"x": 1})


@taskq.job(queue="train")
def data() -> None:
    current.set_output("rows", 1000)


def _seen() -> dict[str, Any]:
    trig = current.trigger
    if trig is None:
        return {"type": None}
    return {"type": trig.type, "events": [[e.name, e.type, e.timestamp.isoformat()]
                                          for e in trig.events]}


@taskq.job(queue="viz", trigger_on_finish="training")
def prediction() -> None:
    trig = current.trigger
    seen = _seen()
    if trig is not None and trig.run is not None and trig.data is not None:
        seen.update(run=trig.run.uuid, event=trig.event.name if trig.event else None,
                    model=trig.data.model)
    current.set_output("seen", seen)


@taskq.job(queue="viz", trigger_on_finish=["training", "data"])
def report() -> None:
    trig = current.trigger
    seen = _seen()
    if trig is not None:
        seen.update(training=trig["training"].uuid, data=trig["data"].uuid,
                    model=trig["training"].data.model, rows=trig["data"].data.rows,
                    run=trig.run.uuid if trig.run else None)
    current.set_output("seen", seen)


@taskq.job(queue="viz", trigger_on=["first", "second"])
def dataflow(x: int = 0) -> None:
    trig = current.trigger
    seen = _seen()
    if trig is not None:
        seen.update(first=trig["first"].timestamp.isoformat(),
                    second=trig["second"].timestamp.isoformat(), x=x)
    current.set_output("seen", seen)


@taskq.job(queue="viz")
def deploy(version: str) -> None:
    current.set_output("version", version)
