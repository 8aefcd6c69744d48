"""Frozen views the API returns, so callers get attributes and types instead of raw rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from taskq.lifecycle import FINAL, Status
from taskq.lineage import Data, Trigger


class RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    uuid: str
    job: str
    project: str | None
    namespace: str
    status: Status
    reason: str | None
    queue: str
    params: dict[str, Any]
    outputs: dict[str, Any]
    metrics: list[dict[str, Any]]
    tags: list[str]
    celery_task_id: str | None
    #: The trigger or hook that created this run (None for a run started by hand).
    trigger_name: str | None
    trigger_id: int | None
    firing_id: int | None
    event_ids: list[str]
    trigger_context: dict[str, Any] | None
    attempts: int
    #: Times a reuse_task trigger re-enqueued this run (0: never).
    incarnation: int = 0
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    #: "job", or "pipeline" for a DAG run; an operation of one names it and its op.
    kind: str = "job"
    pipeline_uuid: str | None = None
    op_name: str | None = None

    _load_run: Callable[[str], RunRecord | None] | None = PrivateAttr(default=None)

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def name(self) -> str:
        return self.job

    @property
    def trigger(self) -> Trigger | None:
        """What started this run, like ``taskq.current.trigger`` inside it; chains walk:
        ``run.trigger.run.trigger.run``."""
        if not self.trigger_context:
            return None
        return Trigger(self.trigger_context, self._loader())

    @property
    def data(self) -> Data:
        """This run's outputs as attributes (``run.data.model``)."""
        outputs = self.outputs
        return Data(self.uuid, lambda: outputs)

    def _loader(self) -> Callable[[str], RunRecord | None]:
        if self._load_run is not None:
            return self._load_run
        from taskq.runtime import get_runtime

        store = get_runtime().store
        return loader(store.get_run)


def loader(get_row: Callable[[str], dict[str, Any] | None]
           ) -> Callable[[str], RunRecord | None]:
    """Loads runs through ``get_row`` and hands the same loader to each, so a chain of
    triggers is walked with the store (and settings) it started from."""

    def load(uuid: str) -> RunRecord | None:
        return run_record(get_row(uuid), load)

    return load


def run_record(row: dict[str, Any] | None,
               load: Callable[[str], RunRecord | None] | None = None) -> RunRecord | None:
    if row is None:
        return None
    record = RunRecord.model_validate(row)
    record._load_run = load
    return record
