"""``taskq triggers``, ``taskq apply`` and ``taskq events``: click only, the API does the work."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import click
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from taskq.cli.common import CliError, _client, _import_jobs, _kv, console, friendly
from taskq.settings import get_settings


@click.group()
def triggers() -> None:
    """Manage triggers."""


@triggers.command("add")
@click.argument("name")
@click.option("--ref", required=True, help="jobs.<name> or runs.<uuid>")
@click.option("--kind", "kinds", multiple=True, required=True, help="e.g. run_status_running")
@click.option("--job", required=True, help="job to run when it fires")
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE; values may template")
@click.option("--queue")
@click.option("--namespace")
@click.option("--approval", is_flag=True, default=False,
              help="each run it fires waits for `taskq runs approve`")
@friendly
def triggers_add(name: str, ref: str, kinds: tuple[str, ...], job: str,
                 params: tuple[str, ...], queue: str | None, namespace: str | None,
                 approval: bool) -> None:
    _import_jobs()
    row = _client().add_trigger(name=name, event={"ref": ref, "kinds": list(kinds)}, job=job,
                                params=_kv(params, "param"), queue=queue, namespace=namespace,
                                approval=approval)
    console.print(f"trigger [bold]{row['name']}[/] added (id {row['id']})")


@triggers.command("list")
@click.option("--namespace")
@friendly
def triggers_list(namespace: str | None) -> None:
    table = Table("name", "namespace", "on", "job", "queue", "enabled", "version")
    client = _client()
    waiting = client.unmatched_names(namespace)
    set_aside: list[dict[str, Any]] = []
    for t in client.list_triggers(namespace):
        spec = t["spec"]
        if t["kind"] == "hook":
            on = f"{spec.get('ref')} {spec.get('hook', {}).get('trigger')} (hook)"
        elif t["kind"] in ("model", "dataset", "run"):
            on = f"{spec.get('family')} ({t['kind']} trigger)"
        elif "inputs" in spec:
            joiner = " and " if spec.get("mode") == "all" else " or "
            on = joiner.join(i["ref"] if i["namespace"] == t["namespace"]
                             else f"{i['namespace']}/{i['ref']}" for i in spec["inputs"])
            on += f" ({t['kind']})"
        else:
            on = f"{spec.get('ref')} {','.join(spec.get('kinds', []))}"
        mark = " (!)" if (t["namespace"], t["name"]) in waiting else ""
        if t["quarantined"]:
            set_aside.append(t)
        state = ("quarantined" if t["quarantined"] else "yes" if t["enabled"] else "no")
        table.add_row(t["name"] + mark, t["namespace"], on, t["job"], t["queue"] or "",
                      state, str(t["version"]))
    console.print(table)
    for (ns, name), what in sorted(waiting.items()):
        console.print(f"(!) {ns}/{name} waits for {'; '.join(what)}: nothing matches yet",
                      highlight=False, soft_wrap=True)
    for t in set_aside:
        console.print(f"(q) {t['namespace']}/{t['name']} quarantined: "
                      f"{t['quarantined']['reason']} (`taskq triggers enable {t['name']}` "
                      "releases it)", highlight=False, soft_wrap=True, markup=False)


@triggers.command("show")
@click.argument("name")
@click.option("--namespace")
@friendly
def triggers_show(name: str, namespace: str | None) -> None:
    client = _client()
    trig = client.get_trigger(name, namespace)
    if trig is None:
        raise CliError(f"no trigger named {name!r}", "list them with `taskq triggers list`")
    trig["firings"] = client.firings(name, namespace)
    console.print_json(json.dumps(trig))


def _toggle(action: str) -> Callable[..., None]:
    @click.argument("name")
    @click.option("--namespace")
    @friendly
    def cmd(name: str, namespace: str | None) -> None:
        getattr(_client(), f"{action}_trigger")(name, namespace)
        console.print(f"trigger {name}: {action}d")

    cmd.__doc__ = f"{action.capitalize()} a trigger (takes effect without restarts)."
    return cmd


for _action in ("enable", "disable", "delete"):
    triggers.command(_action)(_toggle(_action))


@click.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False),
              help="YAML with `hooks:` and/or `triggers:` lists")
@friendly
def apply_cmd(path: str) -> None:
    """Register hooks and triggers from YAML (created, or updated in place by name)."""
    from taskq.api.compat.polyaxon_files import apply_file

    _import_jobs()
    for line in apply_file(_client(), path):
        console.print(line, highlight=False)


# -- events ------------------------------------------------------------------------------


@click.group()
def events() -> None:
    """Watch the event stream."""


@events.command("tail")
@click.option("--count", default=0, help="stop after N events (0: follow forever)")
@click.option("--from-start", is_flag=True)
@friendly
def events_tail(count: int, from_start: bool) -> None:
    client = _client()
    bus = client.rt.bus
    last, seen = ("0" if from_start else "$"), 0
    while True:
        for sid, event in bus.tail(last):
            last = sid
            if event is not None and not client.scope.sees(event.namespace):
                continue  # another namespace's event: only an admin sees it
            seen += 1
            if event is None:
                console.print(f"{sid} [red]malformed entry[/]")
            else:
                console.print(f"{sid} {event.timestamp:%H:%M:%S.%f} [bold]{event.kind}[/] "
                              f"{event.ref} ns={event.namespace}", highlight=False)
            if count and seen >= count:
                return


@events.command("publish")
@click.argument("name")
@click.option("--field", "-f", "fields", multiple=True, help="KEY=VALUE (JSON values parsed)")
@click.option("--namespace")
@click.option("--id", "event_id", help="an id of yours: publishing it again is one event")
@click.option("--scope", type=click.Choice(["event", "project", "org"]), default="event",
              help="send it to events.NAME (default), projects.<--project> or org")
@click.option("--project", help="the project, with --scope project")
@friendly
def events_publish(name: str, fields: tuple[str, ...], namespace: str | None,
                   event_id: str | None, scope: str, project: str | None) -> None:
    """Publish event NAME: jobs with trigger_on=[NAME] start."""
    event = _client().publish_event(name, _kv(fields, "field"), namespace=namespace,
                                    event_id=event_id, scope=scope, project=project)
    console.print(f"published [bold]{name}[/] ({event})", highlight=False)


@events.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8085, show_default=True, type=int)
@friendly
def events_serve(host: str, port: int) -> None:
    """HTTP endpoint for outside systems: POST /events or /events/NAME (authenticated)."""
    from taskq.http.server import Credentials, serve

    auth = Credentials.from_settings(get_settings(), os.environ)
    client = _client()
    client.rt.store  # noqa: B018  - fail here, not on the first request, if the DB is wrong
    console.print(f"taskq events: listening on http://{host}:{port} (POST /events, "
                  "/events/<name>; GET /openapi.json)", highlight=False)
    serve(client, auth, host, port)


@events.command("dead")
@click.argument("dead_id", required=False)
@click.option("--replay", is_flag=True,
              help="put DEAD_ID (or, with --all, every dead letter) back in the stream")
@click.option("--all", "replay_all", is_flag=True, help="with --replay: every dead letter")
@friendly
def events_dead(dead_id: str | None, replay: bool, replay_all: bool) -> None:
    """Entries moved aside (malformed, or failing too often), with the reason; --replay
    evaluates them again (once each; an event that already fired does not fire twice).
    Admin only: an entry may belong to any namespace, or to none it could be read for."""
    client = _client()
    if not client.admin:
        raise CliError("events dead: the dead letters may hold every namespace's events",
                       "run it as an admin: `taskq --admin events dead` or TASKQ_ADMIN=1")
    if not replay:
        if dead_id or replay_all:
            raise CliError("DEAD_ID and --all go with --replay",
                           "taskq events dead --replay DEAD_ID, or --replay --all")
        for row in client.dead_letters():
            console.print(f"{row['id']} [red]{row.get('reason')}[/]", highlight=False)
        return
    if bool(dead_id) == replay_all:
        raise CliError("--replay needs one DEAD_ID or --all",
                       "list dead letters with `taskq events dead`")
    moved = client.replay_dead_letters(None if replay_all else [str(dead_id)])
    if dead_id and not moved:
        raise CliError(f"no dead letter {dead_id!r} (already replayed?)",
                       "list dead letters with `taskq events dead`")
    for dead, new in moved:
        console.print(f"{dead} -> stream entry {new}", highlight=False)
    console.print(f"{len(moved)} dead letter(s) replayed", highlight=False)


# -- maintenance -------------------------------------------------------------------------


@events.command("replay")
@click.option("--since", required=True, help="how far back: 90s, 15m, 2h, 7d")
@click.option("--until", help="up to how long ago (default: now)")
@click.option("--trigger", help="only this trigger")
@click.option("--namespace")
@click.option("--dry-run", is_flag=True, help="say what would fire; write nothing")
@click.option("--json", "as_json", is_flag=True)
@friendly
def events_replay(since: str, until: str | None, trigger: str | None,
                  namespace: str | None, dry_run: bool, as_json: bool) -> None:
    """Evaluate stored events again through the triggers as they are now: what fired
    before fires nothing again, what newly matches fires once."""
    _import_jobs()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                  TextColumn("{task.completed} events"), console=console,
                  transient=True, disable=as_json) as bar:
        task = bar.add_task("replaying" if not dry_run else "matching (dry run)", total=None)
        done = _client().replay_events(since, until=until, trigger=trigger, dry_run=dry_run,
                                       namespace=namespace,
                                       progress=lambda n: bar.advance(task, n))
    if as_json:
        console.print_json(json.dumps(done))
        return
    table = Table("events", "matched", "fired before", "new" if dry_run else "fired now",
                  "errors")
    table.add_row(str(done["events"]), str(done["matched"]), str(done["already"]),
                  str(len(done["new"]) if dry_run else done["fired"]), str(done["errors"]))
    console.print(table)
    for event_id, kind, name in done["new"][:20]:
        console.print(f"{'would fire' if dry_run else 'fired'} {name} for {kind} {event_id}",
                      highlight=False)
    if len(done["new"]) > 20:
        console.print(f"... and {len(done['new']) - 20} more (--json lists them all)")
