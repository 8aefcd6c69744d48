"""``taskq.TriggerScheduler``: ClearML's TriggerScheduler API over taskq's stored triggers.

The parameter names and meanings are ClearML's (docs/entity-triggers.md has the table and
the differences). Unlike ClearML, a trigger is stored when it is added, evaluated on every
change as it happens (the poller is only the safety net), and ``start()`` is not needed for
anything to fire: Celery beat polls, evaluator workers fire. ``start()`` and
``start_remotely()`` run the poll loop themselves, for deployments without beat; both call
the schedule_functions defined in the script itself, in the script's process, as ClearML
does: ``start_remotely()`` has a worker re-run the script for that (``Task``, ``Model`` and
``Dataset`` are here for the functions to look objects up).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskq import constants
from taskq.api.client import Client
from taskq.api.compat.clearml_objects import Dataset, Model, Task
from taskq.api.records import RunRecord
from taskq.errors import ValidationError
from taskq.services import poller as polling
from taskq.services import scheduler_calls
from taskq.services.entity_admin import add_entity_trigger

__all__ = ["Dataset", "Model", "Task", "TriggerScheduler"]

log = logging.getLogger(__name__)
#: How often start() looks for due polls and for calls of this script's functions.
_TICK = 1.0

ENTITY_KINDS = ("model", "dataset", "run")


class TriggerScheduler:
    """Trigger job runs (or functions) when models, datasets or runs change.

    ``pooling_frequency_minutes`` is how often the tables are polled for changes made by
    other writers (stored in the database: beat applies it at its next tick, no restart).
    ``sync_frequency_minutes`` is accepted for compatibility and has nothing to do: trigger
    changes take effect in running evaluators at once.
    """

    def __init__(self, pooling_frequency_minutes: float = 3.0,
                 sync_frequency_minutes: float = 15, force_create_task_name: str | None = None,
                 force_create_task_project: str | None = None, *,
                 client: Client | None = None, namespace: str | None = None) -> None:
        # A scheduler of a namespace talks through a client bound to it.
        self.client = client or Client(namespace=namespace)
        self.namespace = self.client.scope.one(self.client.rt, namespace)
        self.pooling_frequency_minutes = pooling_frequency_minutes
        #: Trigger name -> a schedule_function of the scheduler script (``__main__``).
        self._functions: dict[str, Callable[[str], Any]] = {}
        self.sync_frequency_minutes = sync_frequency_minutes
        try:
            polling.set_frequency(self.client.rt.store, pooling_frequency_minutes)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def _add(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        args.pop("self")
        fn = args.get("schedule_function")
        row = add_entity_trigger(self.client.rt, kind, namespace=self.namespace, **args)
        path = row.spec.get("function") or ""
        if path.startswith(constants.IN_PROCESS_PREFIX):
            # Defined in this script: start() calls it here, as ClearML does.
            self._functions[row.name] = fn if callable(fn) else _from_main(path)
        return row.as_dict()

    def add_model_trigger(
        self, schedule_task_id: Any = None, schedule_queue: str | None = None,
        schedule_function: Any = None, trigger_project: str | None = None,
        trigger_name: str | None = None, trigger_on_publish: bool | None = None,
        trigger_on_tags: list[str] | None = None, trigger_on_archive: bool | None = None,
        trigger_required_tags: list[str] | None = None, name: str | None = None,
        target_project: str | None = None, add_tag: bool | str = True,
        single_instance: bool = False, reuse_task: bool = False,
        task_parameters: dict[str, Any] | None = None,
        task_overrides: dict[str, Any] | None = None, *,
        trigger_on_metric: str | None = None, trigger_on_threshold: float | None = None,
        trigger_on_sign: str | None = None,
        payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Launch on changes of models; returns the stored trigger. taskq adds a metric
        threshold (not in ClearML's signature): a value logged with
        ``taskq.models.log_metric`` crossing it fires, as a run metric trigger does; and
        ``payload``, a payload filter on the change event (docs/payload-filters.md)."""
        args = dict(locals())
        metric = {"metric": args.pop("trigger_on_metric"),
                  "threshold": args.pop("trigger_on_threshold"),
                  "sign": args.pop("trigger_on_sign")}
        return self._entity("model", {**args, **metric})

    def add_dataset_trigger(
        self, schedule_task_id: Any = None, schedule_queue: str | None = None,
        schedule_function: Any = None, trigger_project: str | None = None,
        trigger_name: str | None = None, trigger_on_publish: bool | None = None,
        trigger_on_tags: list[str] | None = None, trigger_on_archive: bool | None = None,
        trigger_required_tags: list[str] | None = None, name: str | None = None,
        target_project: str | None = None, add_tag: bool | str = True,
        single_instance: bool = False, reuse_task: bool = False,
        task_parameters: dict[str, Any] | None = None,
        task_overrides: dict[str, Any] | None = None, *,
        payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Launch on changes of datasets; returns the stored trigger (``payload``: as for
        models)."""
        return self._entity("dataset", locals())

    def _entity(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        filters = {"name_pattern": args.pop("trigger_name"),
                   "on_publish": args.pop("trigger_on_publish") or False,
                   "on_archive": args.pop("trigger_on_archive") or False,
                   "on_tags": args.pop("trigger_on_tags"),
                   "required_tags": args.pop("trigger_required_tags"),
                   "payload": args.pop("payload")}
        return self._add(kind, {**args, **filters})

    def add_task_trigger(
        self, schedule_task_id: Any = None, schedule_queue: str | None = None,
        schedule_function: Any = None, trigger_project: str | None = None,
        trigger_name: str | None = None, trigger_on_tags: list[str] | None = None,
        trigger_on_status: list[str] | None = None,
        trigger_exclude_dev_tasks: bool | None = None, trigger_on_metric: str | None = None,
        trigger_on_variant: str | None = None, trigger_on_threshold: float | None = None,
        trigger_on_sign: str | None = None, trigger_required_tags: list[str] | None = None,
        name: str | None = None, target_project: str | None = None,
        add_tag: bool | str = True, single_instance: bool = False, reuse_task: bool = False,
        task_parameters: dict[str, Any] | None = None,
        task_overrides: dict[str, Any] | None = None, *,
        trigger_on_metric_value: str = "last",
        payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Launch on changes of runs: a status reached, tags gained, a metric crossing its
        threshold (``trigger_on_metric_value="extreme"`` judges the min/max so far, as
        ClearML does silently), or, with none of those, a run created."""
        if trigger_on_metric_value not in ("last", "extreme"):
            raise ValidationError(f"trigger_on_metric_value: {trigger_on_metric_value!r} is "
                                  "not 'last' or 'extreme'")
        args = dict(locals())
        filters = {"name_pattern": args.pop("trigger_name"),
                   "on_tags": args.pop("trigger_on_tags"),
                   "required_tags": args.pop("trigger_required_tags"),
                   "on_status": args.pop("trigger_on_status") or (),
                   "exclude_dev": bool(args.pop("trigger_exclude_dev_tasks")),
                   "metric": args.pop("trigger_on_metric"),
                   "variant": args.pop("trigger_on_variant"),
                   "threshold": args.pop("trigger_on_threshold"),
                   "sign": args.pop("trigger_on_sign"),
                   "judge": args.pop("trigger_on_metric_value"),
                   "payload": args.pop("payload")}
        return self._add("run", {**args, **filters})

    #: taskq calls them runs.
    add_run_trigger = add_task_trigger

    def get_triggers(self) -> list[dict[str, Any]]:
        """Every model, dataset and run trigger of this namespace."""
        return [t for t in self.client.list_triggers(self.namespace)
                if t["kind"] in ENTITY_KINDS]

    def start(self, run_for: float | None = None) -> None:
        """Poll in the foreground and call this script's schedule_functions here, in this
        process, each in a thread, as ClearML does (does not return unless ``run_for``
        seconds are given). Safe beside beat: one poller at a time holds the lock; two
        schedulers never make the same call (it is claimed)."""
        rt = self.client.rt
        deadline = None if run_for is None else time.monotonic() + run_for
        threads: list[threading.Thread] = []
        while deadline is None or time.monotonic() < deadline:
            try:
                polling.poll_due(rt)
                threads = [t for t in threads if t.is_alive()]
                threads += scheduler_calls.call_due(rt, self._functions, self.namespace)
            except Exception:  # the database or Redis is away: try again next tick
                log.exception("taskq: the scheduler loop failed; retrying")
            time.sleep(_TICK)
        for t in threads:
            t.join(timeout=max(0.0, (deadline or 0) - time.monotonic()) + 5)

    def start_remotely(self, queue: str = constants.SERVICES_QUEUE) -> RunRecord | None:
        """Run the scheduler as a run of ``taskq.trigger-scheduler`` on ``queue`` (stop it
        with ``taskq runs stop UUID``); returns that run. When this script defines
        schedule_functions, the worker re-runs the whole script, as ClearML's agent does, and
        there this call is ``start()``: the functions are called in that program."""
        if os.environ.get(constants.SCHEDULER_RUN_ENV):
            self.start()  # this script, re-run by the scheduler's run: the loop is here
            return None
        params: dict[str, Any] = {}
        if self._functions:
            params = _this_script(next(iter(self._functions.items())))
        return self.client.submit(constants.SCHEDULER_JOB, params=params, queue=queue,
                                  namespace=self.namespace)


def _this_script(example: tuple[str, Callable[[str], Any]]) -> dict[str, str]:
    """The source of the script that defines the schedule_functions, for a worker to run."""
    main = sys.modules["__main__"]
    file = getattr(main, "__file__", None)
    try:
        if not file:
            raise OSError("no script file")
        source = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        trigger, fn = example
        raise ValidationError(
            f"start_remotely: schedule_function {getattr(fn, '__name__', fn)!r} of trigger "
            f"{trigger!r} is defined in __main__, and this session has no script a worker "
            f"could re-run ({exc}); call start() to run the scheduler here, or pass "
            "'package.module:function'") from None
    return {"script": source, "script_name": Path(file).name}


def _from_main(path: str) -> Callable[[str], Any]:
    """``"__main__:fn"`` given as a string: the function of this process's script."""
    target: Any = sys.modules["__main__"]
    for part in path[len(constants.IN_PROCESS_PREFIX):].split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise ValidationError(f"schedule_function: {path!r} is not a function of this "
                              "script")
    return target  # type: ignore[no-any-return]
