"""Frozen views the API returns, so callers get attributes and types instead of raw rows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from taskq.lifecycle import FINAL, Status


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
    trigger: str | None
    trigger_id: int | None
    firing_id: int | None
    event_ids: list[str]
    trigger_context: dict[str, Any] | None
    attempts: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def name(self) -> str:
        return self.job


def run_record(row: dict[str, Any] | None) -> RunRecord | None:
    return RunRecord.model_validate(row) if row is not None else None
