"""taskq: start the right Celery job the moment something happens, exactly once.

``import taskq`` does no I/O and imports nothing heavy: each public name is loaded on first
use (PEP 562), so a worker, the CLI and a test of the pure core pay only for what they use.
``__all__`` is pinned by a test.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskq.api.client import Client
    from taskq.api.current import current
    from taskq.api.records import RunRecord
    from taskq.api.registries import DefaultRegistry
    from taskq.celery.jobs import job

#: Public name -> the module that defines it.
_EXPORTS = {
    "Alert": "taskq.core.alerts",
    "Client": "taskq.api.client",
    "Event": "taskq.core.events",
    "EventTrigger": "taskq.core.matching",
    "Hook": "taskq.core.triggers.hook",
    "RunRecord": "taskq.api.records",
    "Settings": "taskq.settings",
    "Status": "taskq.core.statuses",
    "TaskqError": "taskq.errors",
    "TriggerScheduler": "taskq.api.compat.clearml",
    "ValidationError": "taskq.errors",
    "current": "taskq.api.current",
    "job": "taskq.celery.jobs",
}

__all__ = [
    "Alert", "Client", "Event", "EventTrigger", "Hook", "RunRecord", "Settings", "Status",
    "TaskqError", "TriggerScheduler", "ValidationError", "add_event_trigger", "add_finish_trigger",
    "add_hook", "add_trigger", "current", "datasets", "get_run", "job", "list_runs",
    "list_triggers", "models", "publish_event", "publish_events", "run_pipeline", "submit",
    "tag_run",
]

_registries: dict[str, DefaultRegistry] = {}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in ("models", "datasets"):
        #: The registries on the default client: ``taskq.models.publish(id)``.
        registries = importlib.import_module("taskq.api.registries")
        watched = importlib.import_module("taskq.core.watched")
        value = registries.DefaultRegistry(watched.Family(name))
        globals()[name] = value
        return value
    raise AttributeError(f"module 'taskq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _client() -> Client:
    client_module = importlib.import_module("taskq.api.client")
    return client_module.Client()  # type: ignore[no-any-return]


def submit(job: Any, params: dict[str, Any] | None = None, queue: str | None = None,
           **kwargs: Any) -> RunRecord:
    return _client().submit(job, params=params, queue=queue, **kwargs)


def get_run(run_uuid: str) -> RunRecord | None:
    return _client().get_run(run_uuid)


def list_runs(**kwargs: Any) -> list[RunRecord]:
    return _client().list_runs(**kwargs)


def add_trigger(**kwargs: Any) -> dict[str, Any]:
    return _client().add_trigger(**kwargs)


def add_hook(**kwargs: Any) -> dict[str, Any]:
    return _client().add_hook(**kwargs)


def list_triggers(namespace: str | None = None) -> list[dict[str, Any]]:
    return _client().list_triggers(namespace)


def add_finish_trigger(**kwargs: Any) -> dict[str, Any]:
    return _client().add_finish_trigger(**kwargs)


def add_event_trigger(**kwargs: Any) -> dict[str, Any]:
    return _client().add_event_trigger(**kwargs)


def publish_event(name: str, payload: dict[str, Any] | None = None,
                  namespace: str | None = None, event_id: str | None = None,
                  scope: str = "event", project: str | None = None) -> str:
    """Publish an external event (``trigger_on=[name]`` jobs start); returns its id."""
    return _client().publish_event(name, payload, namespace=namespace, event_id=event_id,
                                   scope=scope, project=project)


def publish_events(events: Sequence[Mapping[str, Any]], namespace: str | None = None
                   ) -> list[str]:
    """Publish many events in one call (``{"name", "payload", "event_id"}`` each)."""
    return _client().publish_events(events, namespace=namespace)


def tag_run(run_uuid: str, add: list[str] | tuple[str, ...] = (),
            remove: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Add / remove a run's tags (run triggers on tags fire); returns its tags."""
    return _client().tag_run(run_uuid, add, remove)


def run_pipeline(spec: Any, params: dict[str, Any] | None = None,
                 namespace: str | None = None) -> RunRecord:
    """Start a DAG pipeline (mapping, YAML text or path); returns the pipeline's run."""
    return _client().run_pipeline(spec, params=params, namespace=namespace)
