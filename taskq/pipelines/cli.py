"""``taskq run -f pipeline.yaml``."""

from __future__ import annotations

from typing import Any


def run_file(path: str, params: dict[str, Any], namespace: str | None) -> None:
    """Start the pipeline described in ``path`` and show its operations live."""
    raise NotImplementedError("pipelines are not built yet")
