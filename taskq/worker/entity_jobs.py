"""Celery side of entity triggers: beat's poll task (queue ``taskq.triggers``) and two
built-in jobs on the ``services`` queue: ``taskq.function`` calls a ``schedule_function``
with the entity id (in a worker, as a run of its own, never inside the poller), and
``taskq.trigger-scheduler`` is the loop ``TriggerScheduler.start_remotely`` starts.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from taskq import constants
from taskq.api.current import current
from taskq.celery.app import get_app
from taskq.celery.jobs import builtin
from taskq.core.run_context import active
from taskq.runtime import get_runtime
from taskq.services import poller as polling
from taskq.worker.scheduler_script import run_script

app = get_app()


@app.task(name=constants.POLL_TASK, ignore_result=True)
def poll_task() -> list[dict[str, Any]] | None:
    results = polling.poll_due(get_runtime())
    return None if results is None else [r.__dict__ for r in results]


def import_callable(path: str) -> Any:
    """``"pkg.mod:fn"`` (or ``"pkg.mod:Class.method"``) -> the callable."""
    module, sep, qualname = path.partition(":")
    if not sep or not module or not qualname:
        raise ValueError(f"function {path!r}: expected 'package.module:function'")
    try:
        target: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"function {path!r}: module {module!r} cannot be imported on this "
                         f"worker: {exc}") from None
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"function {path!r}: {module!r} has no {qualname!r}")
    if not callable(target):
        raise ValueError(f"function {path!r} is not callable")
    return target


@builtin(constants.FUNCTION_JOB)
def call_function(function: str, entity_id: str, family: str | None = None) -> Any:
    """Call ``function(entity_id)`` (ClearML's schedule_function interface)."""
    result = import_callable(function)(entity_id)
    try:
        json.dumps(result, allow_nan=False)
        current.set_output("result", result)
    except (TypeError, ValueError):
        current.set_output("result", repr(result)[:2000])
    return None


# Runs until stopped: never redelivered after the visibility timeout.
@builtin(constants.SCHEDULER_JOB, acks_late=False)
def scheduler_loop(seconds: float = 0.0, script: str | None = None,
                   script_name: str | None = None) -> None:
    """Poll models, datasets and runs as they come due (``taskq runs stop`` ends it); with
    the scheduler's ``script``, run that script here, whose functions it then calls."""
    if script is None:
        polling.loop(get_runtime(), float(seconds) or None)
        return
    ctx = active()
    assert ctx is not None  # a taskq job always runs with its context
    run_script(script, script_name or "scheduler.py", run_uuid=ctx.uuid,
               namespace=ctx.namespace, seconds=float(seconds) or None)
