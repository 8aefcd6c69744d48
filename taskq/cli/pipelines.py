"""``taskq run -f pipeline.yaml``: start a pipeline and show its operations live."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from taskq.cli.common import _client
from taskq.core.statuses import FINAL, Status

console = Console()


def table(client: Any, pipeline_uuid: str) -> Table:
    run = client.get_run(pipeline_uuid)
    title = f"pipeline {run.job} {run.uuid[:8]}: {run.status.value}"
    if run.reason and run.done:
        title += f" ({run.reason})"
    t = Table("operation", "job", "status", "queue", "reason", title=title)
    for op in client.rt.store.pipeline_ops(pipeline_uuid):
        t.add_row(op["op"], op["job"], op["status"], op["queue"], (op["reason"] or "")[:70])
    return t


def run_file(path: str, params: dict[str, Any], namespace: str | None,
             follow: bool = True, timeout: float = 3600.0) -> None:
    """Start the pipeline in ``path``; follow it until it ends (Ctrl-C stops watching, not
    the pipeline). Exits 1 if the pipeline does not succeed."""
    client = _client()
    run = client.run_pipeline(path, params=params, namespace=namespace)
    console.print(f"pipeline [bold]{run.uuid}[/] ({run.job}) started", highlight=False)
    if not follow:
        return
    deadline = time.monotonic() + timeout
    try:
        with Live(table(client, run.uuid), console=console, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                current = client.get_run(run.uuid)
                live.update(table(client, run.uuid))
                if current is not None and current.status in FINAL:
                    break
                time.sleep(0.25)
    except KeyboardInterrupt:
        console.print(f"still running; follow it with `taskq runs show {run.uuid}`")
        return
    final = client.get_run(run.uuid)
    if final is None or final.status != Status.SUCCEEDED:
        sys.exit(1)
