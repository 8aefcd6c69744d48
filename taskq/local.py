"""``taskq run JOB --trigger ...``: run a job in this process as if a trigger started it."""

from __future__ import annotations

from typing import Any

from taskq.records import RunRecord


def run_locally(client: Any, job: str, *, params: dict[str, Any], triggers: list[str],
                namespace: str | None) -> RunRecord:
    raise NotImplementedError
