"""taskq: start the right Celery job the moment something happens, exactly once."""

from __future__ import annotations

from typing import Any

from taskq.client import Client, ValidationError
from taskq.context import current
from taskq.entities import Family
from taskq.events import Event
from taskq.hooks import Hook
from taskq.jobs import job
from taskq.lifecycle import Status
from taskq.records import RunRecord
from taskq.registry import DefaultRegistry
from taskq.rules import EventTrigger
from taskq.scheduler import TriggerScheduler
from taskq.settings import Settings

#: The model and dataset registries on the default client: ``taskq.models.publish(id)``.
models = DefaultRegistry(Family.MODELS)
datasets = DefaultRegistry(Family.DATASETS)

__all__ = [
    "Client", "Event", "EventTrigger", "Hook", "RunRecord", "Settings", "Status",
    "TriggerScheduler", "ValidationError", "add_event_trigger", "add_finish_trigger",
    "add_hook", "add_trigger", "current", "datasets", "get_run", "job", "list_runs",
    "list_triggers", "models", "publish_event", "submit", "tag_run",
]


def _client() -> Client:
    return Client()


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
                  namespace: str | None = None, event_id: str | None = None) -> str:
    """Publish an external event (``trigger_on=[name]`` jobs start); returns its id."""
    return _client().publish_event(name, payload, namespace=namespace, event_id=event_id)


def tag_run(run_uuid: str, add: list[str] | tuple[str, ...] = (),
            remove: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Add / remove a run's tags (run triggers on tags fire); returns its tags."""
    return _client().tag_run(run_uuid, add, remove)


def run_pipeline(spec: Any, params: dict[str, Any] | None = None,
                 namespace: str | None = None) -> RunRecord:
    """Start a DAG pipeline (mapping, YAML text or path); returns the pipeline's run."""
    return _client().run_pipeline(spec, params=params, namespace=namespace)
