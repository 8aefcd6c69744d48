"""``taskq status``: is evaluation keeping up, and if not, why (degraded, dead letters)."""

from __future__ import annotations

import json
import time

import click

from taskq.cli.common import _client, console, friendly


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="print the figures as JSON")
@friendly
def status_cmd(as_json: bool) -> None:
    """Evaluators (live, degraded and why), the event stream and the outbox."""
    from taskq.services.health import gather

    data = gather(_client().rt)
    if as_json:
        console.print_json(json.dumps(data))
        return
    if "redis_error" in data:
        console.print(f"redis: [red]unreachable[/] ({data['redis_error']})", highlight=False)
    else:
        live, degraded = data["evaluators"], data["degraded"]
        state = "[red]degraded[/]" if degraded else "ok" if live else "[yellow]none running[/]"
        console.print(f"evaluators: {state} ({len(live)} live of "
                      f"{data['configured_evaluators']} configured)", highlight=False)
        for member, report in sorted(degraded.items()):
            since = time.strftime("%H:%M:%S", time.localtime(report.get("since", 0)))
            console.print(f"  {member}: [red]degraded[/] since {since}, holding "
                          f"{report.get('held', 0)} entries: {report.get('reason')}",
                          highlight=False)
        s = data["stream"]
        console.print(f"stream: {s['length']} entries, {s['pending']} pending, "
                      f"{s['dead']} dead letters", highlight=False)
    if "database_error" in data:
        console.print(f"database: [red]unreachable[/] ({data['database_error']})",
                      highlight=False)
    else:
        console.print(f"outbox: {data['outbox_unpublished']} unpublished", highlight=False)
