"""``taskq triggers explain`` and ``taskq triggers test``: why a trigger fired for an
event or not, and what it (or a draft of it) would do with one. Click only; the API
decides (docs/explain.md)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from taskq.cli.common import CliError, _client, _import_jobs, console, friendly
from taskq.cli.triggers import triggers

#: How each outcome is coloured in the table.
_STYLE = {"fired": "green", "would_fire": "green", "duplicate": "cyan", "waiting": "yellow",
          "pending": "yellow", "skipped": "yellow", "error": "red", "quarantined": "red",
          "expired": "magenta", "disabled": "dim", "deleted": "dim", "not_yet": "dim",
          "not_matched": "dim"}


def _detail(d: dict[str, Any]) -> str:
    run = d.get("run")
    if d["outcome"] == "fired" and run:
        return f"run {run['uuid']} ({run['status']}, queue {run['queue']})"
    return str(d["reason"])


def _table(decisions: list[dict[str, Any]]) -> Table:
    table = Table("event", "at", "kind", "v", "decision")
    table.add_column("ref", max_width=20, no_wrap=True, overflow="ellipsis")
    table.add_column("why", ratio=1, min_width=20)
    for d in decisions:
        e = d["event"]
        style = _STYLE.get(d["outcome"], "")
        outcome = d["outcome"] + (f" ({d['part']})" if d.get("part") else "")
        table.add_row(e["id"][:8], e["at"][11:19], e["kind"], str(d["version"] or ""),
                      Text(outcome, style=style), Text(e["ref"]), Text(_detail(d)))
    return table


@triggers.command("explain")
@click.argument("name")
@click.option("--event", "event_id", help="one stored event, by id")
@click.option("--run", "run", help="the status events of one run, by uuid")
@click.option("--since", default=None, help="events since, e.g. 15m, 1h, 7d (default: 1h)")
@click.option("--limit", default=100, show_default=True,
              help="at most this many (newest), up to 10000 a page")
@click.option("--before", type=int, help="the older page: the cursor a page printed")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
@click.option("--namespace")
@friendly
def triggers_explain(name: str, event_id: str | None, run: str | None, since: str | None,
                     limit: int, before: int | None, as_json: bool,
                     namespace: str | None) -> None:
    """Why NAME fired for each recent event, or why not (by the revision of its time)."""
    if sum(x is not None for x in (event_id, run, since)) > 1 or (
            before is not None and (event_id or run)):
        raise CliError("--event, --run and --since (with --before) exclude each other",
                       "explain one event, the events of one run, or those of a window")
    window = since or "1h"
    if event_id or run:
        page: dict[str, Any] = {"decisions": _client().explain(
            name, event_id=event_id, run=run, limit=limit, namespace=namespace),
            "next": None}
    else:
        page = _client().explain_page(name, since=window, limit=limit, before=before,
                                      namespace=namespace)
    decisions = page["decisions"]
    older = (None if page["next"] is None else
             f"older events: taskq triggers explain {name} --since {window} --before "
             f"{page['next']}" + (f" --namespace {namespace}" if namespace else ""))
    if as_json:
        console.print_json(json.dumps(decisions))
        if older:
            click.echo(older, err=True)
        return
    if not decisions:
        console.print(f"no stored events in the window for {name}", highlight=False)
        return
    console.print(_table(decisions))
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d["outcome"]] = counts.get(d["outcome"], 0) + 1
    console.print(f"{len(decisions)} event(s): " + ", ".join(
        f"{n} {outcome}" for outcome, n in counts.items()), highlight=False)
    if older:
        console.print(older, highlight=False)


@triggers.command("test")
@click.argument("name")
@click.option("--event", "event", required=True,
              help="a stored event's id, or JSON: {\"name\": ..., \"fields\": {...}} or "
                   "{\"kind\": ..., \"ref\": ..., \"payload\": {...}}")
@click.option("-f", "--file", "path", type=click.Path(dir_okay=False),
              help="a draft: the trigger or hook NAME in a `taskq apply -f` file")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text")
@click.option("--namespace")
@friendly
def triggers_test(name: str, event: str, path: str | None, as_json: bool,
                  namespace: str | None) -> None:
    """Dry run: what NAME (or its draft) decides for one event; nothing is written."""
    _import_jobs()
    client = _client()
    given: str | dict[str, Any] = event
    if event.lstrip().startswith("{"):
        try:
            given = json.loads(event)
        except ValueError as exc:
            raise CliError(f"--event: not valid JSON: {exc}",
                           "e.g. --event '{\"name\": \"work\", \"fields\": {\"n\": 1}}'"
                           ) from None
    # Imported when a draft is given, as `taskq apply` does: `taskq --help` stays fast.
    from taskq.api.compat.polyaxon_files import draft as load_draft

    draft = load_draft(client, path, name) if path else None
    d = client.test_trigger(name, given, draft=draft, namespace=namespace)
    if as_json:
        console.print_json(json.dumps(d))
        return
    e = d["event"]
    lines = [f"trigger   {name}" + (f" (draft from {path})" if path else
                                    f" (version {d['version']})"),
             f"event     {e['id']} {e['kind']} {e['ref']}",
             f"decision  {d['outcome']}" + (f" ({d['part']})" if d.get("part") else ""),
             f"why       {d['reason']}"]
    if d.get("run"):
        lines.append(f"run       {d['run']['uuid']} on queue {d['run']['queue']}")
    if d.get("params") is not None:
        lines.append(f"params    {json.dumps(d['params'], sort_keys=True)}")
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


@triggers.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
@click.option("--namespace")
@friendly
def triggers_history(name: str, as_json: bool, namespace: str | None) -> None:
    """Every revision of NAME: what changed, when, and by whom."""
    revisions = _client().trigger_history(name, namespace)
    if as_json:
        console.print_json(json.dumps(revisions))
        return
    table = Table("v", "at", "action", "by", "enabled", "job", "params")
    for r in revisions:
        table.add_row(str(r["version"]), r["at"][:19].replace("T", " "), r["action"],
                      r["by"], "yes" if r["enabled"] else "no", r["job"],
                      Text(json.dumps(r["params"], sort_keys=True)))
    console.print(table)


@triggers.command("what-if")
@click.argument("name")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False),
              help="the draft: the trigger or hook NAME in a `taskq apply -f` file")
@click.option("--since", required=True, help="how far back: 90s, 15m, 2h, 7d")
@click.option("--until", help="up to how long ago (default: now)")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
@click.option("--namespace")
@friendly
def triggers_what_if(name: str, path: str, since: str, until: str | None, as_json: bool,
                     namespace: str | None) -> None:
    """What the draft of NAME would have done with past events, beside NAME as it is."""
    _import_jobs()
    client = _client()
    from taskq.api.compat.polyaxon_files import draft as load_draft  # as `taskq apply`

    draft = load_draft(client, path, name)
    with Progress(SpinnerColumn(), TextColumn("replaying through both"),
                  TextColumn("{task.completed} events"), console=console, transient=True,
                  disable=as_json) as bar:
        task = bar.add_task("what-if", total=None)
        d = client.what_if(name, draft, since, until=until, namespace=namespace,
                           progress=lambda n: bar.advance(task, n))
    if as_json:
        console.print_json(json.dumps(d))
        return
    console.print(f"{d['events']} events: as it is, {name} fired {d['current']}; the draft "
                  f"would have fired {d['draft']}", highlight=False)
    table = Table("event", "kind", "as it is", "draft", "draft's params")
    for row in d["differ"][:50]:
        table.add_row(row["event_id"], row["kind"], row["current"], row["draft"],
                      json.dumps(row["params"], sort_keys=True) if row["params"] else "")
    if d["differ"]:
        console.print(table)
    if len(d["differ"]) > 50:
        console.print(f"... and {len(d['differ']) - 50} more (--json lists them all)")
