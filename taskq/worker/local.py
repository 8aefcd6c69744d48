"""Running a job's task in this process (``taskq run JOB --trigger``), signals included."""

from __future__ import annotations

from typing import Any

from taskq.celery.app import get_app
from taskq.worker import signals  # noqa: F401  - the handlers record the run's statuses


def execute(task_name: str, kwargs: dict[str, Any], run_uuid: str) -> None:
    get_app().tasks[task_name].apply(kwargs=kwargs, task_id=run_uuid)
