"""ClearML's ``Task``, ``Model`` and ``Dataset`` as far as a ``schedule_function`` uses
them: looking up the object a trigger fired for by its id (``Model(model_id=...)``,
``Dataset.get(dataset_id=...)``, ``Task.get_task(task_id=...)``) and reading it.

So ClearML's trigger example runs with its import line changed. They read taskq's
registries and runs; everything else of ClearML's SDK (creating tasks, uploading) is not
here.
"""

from __future__ import annotations

from typing import Any

from taskq.api.client import Client
from taskq.api.records import RunRecord
from taskq.api.registries import EntityRecord
from taskq.errors import NotFound


class _Entity:
    """A registered model or dataset: ClearML's attribute names over taskq's record."""

    def __init__(self, record: EntityRecord) -> None:
        self.record = record
        self.id = record.id
        self.name = record.name
        self.project = record.project
        self.tags = list(record.tags)
        self.published = record.published
        self.archived = record.archived
        self.url = record.uri

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} id={self.id}>"


class Model(_Entity):
    """``Model(model_id=...)``: a registered model."""

    def __init__(self, model_id: str, *, client: Client | None = None) -> None:
        found = (client or Client()).models.get(model_id)
        if found is None:
            raise NotFound(f"model_id: no model {model_id!r}")
        super().__init__(found)


class Dataset(_Entity):
    """``Dataset.get(dataset_id=...)``: a registered dataset."""

    @classmethod
    def get(cls, dataset_id: str | None = None, *, client: Client | None = None,
            **ignored: Any) -> Dataset:
        if not dataset_id:
            raise NotFound("dataset_id: taskq looks datasets up by id")
        found = (client or Client()).datasets.get(dataset_id)
        if found is None:
            raise NotFound(f"dataset_id: no dataset {dataset_id!r}")
        return cls(found)


class Task:
    """``Task.get_task(task_id=...)``: a taskq run, under ClearML's names (``id``,
    ``name`` (the job), ``project``, ``status``, ``get_parameters()``)."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.id = run.uuid
        self.name = run.job
        self.project = run.project
        self.status = run.status.value

    @classmethod
    def get_task(cls, task_id: str | None = None, *, client: Client | None = None,
                 **ignored: Any) -> Task:
        run = (client or Client()).get_run(task_id) if task_id else None
        if run is None:
            raise NotFound(f"task_id: no run {task_id!r}")
        return cls(run)

    def get_parameters(self) -> dict[str, Any]:
        return {f"Args/{k}": v for k, v in self.run.params.items()}

    def __repr__(self) -> str:
        return f"<Task {self.name!r} id={self.id}>"
