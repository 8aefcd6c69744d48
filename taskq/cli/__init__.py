"""``taskq``: a small click CLI. Errors are one line plus a hint, never a traceback."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from taskq.cli import explain as _explain  # noqa: F401  - adds `triggers explain/test`
from taskq.cli import triggers as _triggers
from taskq.cli.common import CliError, _client, _import_jobs, _kv, console, friendly
from taskq.cli.registry import commands as _registry_commands
from taskq.cli.status import status_cmd
from taskq.constants import MAX_LIST_LIMIT
from taskq.core.revisions import changes_by
from taskq.settings import get_settings


@click.group()
@click.version_option(package_name="taskq")
@click.option("--admin", is_flag=True, default=False,
              help="see and change every namespace (else only TASKQ_NAMESPACE's; "
                   "TASKQ_ADMIN=1 does the same)")
def main(admin: bool) -> None:
    """taskq: event-triggered job runs for Celery."""
    # Trigger revisions made by this command say so (until the command ends).
    click.get_current_context().with_resource(changes_by("cli"))


# -- db ----------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@friendly
def db_upgrade(revision: str) -> None:
    """Apply migrations (creates the SQLite file on the embedded default)."""
    from alembic.util import CommandError

    from taskq.store import migrate

    url = get_settings().resolved_database_url()
    try:
        migrate.upgrade(url, revision)
    except CommandError as exc:
        raise CliError(f"revision: {exc}", "use `head` (the default) or a migration's revision "
                       "id; `taskq db current` shows the database's") from None
    console.print(f"database at revision [bold]{migrate.current(url)}[/]")


@db.command("current")
@friendly
def db_current() -> None:
    from taskq.store import migrate

    console.print(migrate.current(get_settings().resolved_database_url()) or "(empty)")


# -- runs --------------------------------------------------------------------------------


@main.command("submit")
@click.argument("job")
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE (JSON values parsed)")
@click.option("--queue")
@click.option("--namespace")
@friendly
def submit_cmd(job: str, params: tuple[str, ...], queue: str | None,
               namespace: str | None) -> None:
    """Start a run of JOB by hand."""
    _import_jobs()
    run = _client().submit(job, params=_kv(params, "param"), queue=queue, namespace=namespace)
    console.print(f"run [bold]{run.uuid}[/] of {run.job} on queue {run.queue}: {run.status}")


@main.command("run")
@click.argument("job", required=False)
@click.option("-f", "--file", "path", type=click.Path(dir_okay=False),
              help="a pipeline YAML (kind: component, run: {kind: dag, ...})")
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE (JSON values parsed)")
@click.option("--trigger", "triggers", multiple=True,
              help="run as if triggered: JOB/RUN-UUID, an event name, or an event as JSON "
                   "'{\"name\": ..., \"fields\": {...}}' (repeatable)")
@click.option("--namespace")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="with -f: show the operations live until the pipeline ends")
@friendly
def run_cmd(job: str | None, path: str | None, params: tuple[str, ...],
            triggers: tuple[str, ...], namespace: str | None, follow: bool) -> None:
    """Run JOB here, in this process, as if triggered (for testing), or start the pipeline
    in FILE."""
    from taskq.api.local_run import run_locally
    from taskq.cli.pipelines import run_file
    from taskq.worker.local import execute

    _import_jobs()
    if path:
        if job or triggers:
            raise CliError("give either JOB (with --trigger) or -f FILE, not both",
                           "`taskq run --help` shows both forms")

        run_file(path, _kv(params, "param"), namespace, follow=follow)
        return
    if not job:
        raise CliError("nothing to run", "give a JOB, or -f PIPELINE.yaml")

    run = run_locally(_client(), job, params=_kv(params, "param"), triggers=list(triggers),
                      namespace=namespace, execute=execute)
    console.print(f"run [bold]{run.uuid}[/] of {run.job}: {run.status}"
                  + (f" ({run.reason})" if run.reason else ""), highlight=False)
    if run.status.value != "succeeded":
        sys.exit(1)


@main.group()
def runs() -> None:
    """Inspect runs."""


def _runs_table(rows: list[Any]) -> Table:
    table = Table("uuid", "job", "status", "queue", "trigger", "created", "reason")
    for r in rows:
        table.add_row(r.uuid, r.job, r.status.value, r.queue, r.trigger_name or "",
                      (r.created_at or "")[:19], (r.reason or "")[:60])
    return table


@runs.command("list")
@click.option("--job")
@click.option("--status")
@click.option("--trigger")
@click.option("--namespace")
@click.option("--limit", default=20, show_default=True,
              type=click.IntRange(1, MAX_LIST_LIMIT))
@friendly
def runs_list(job: str | None, status: str | None, trigger: str | None,
              namespace: str | None, limit: int) -> None:
    rows = _client().list_runs(job=job, status=status, trigger=trigger, namespace=namespace,
                               limit=limit)
    console.print(_runs_table(rows))


@runs.command("show")
@click.argument("uuid")
@friendly
def runs_show(uuid: str) -> None:
    client = _client()
    run = client.get_run(uuid)
    if run is None:
        raise CliError(f"no run {uuid!r}", "list runs with `taskq runs list`")
    data = run.model_dump(mode="json")
    data["transitions"] = client.rt.store.run_events(uuid)
    # What every trigger and hook did about this run: fired, skipped (and why), error (and why).
    data["firings"] = client.rt.store.firings_for_run(uuid)
    if run.kind == "pipeline" or run.pipeline_uuid:
        from taskq.services.pipelines import descriptions

        said = descriptions(client.rt, run.pipeline_uuid or uuid)
        data["description"] = said.get(run.op_name)
    if run.kind == "pipeline":
        data["operations"] = [{**{k: op[k] for k in ("op", "uuid", "job", "status", "reason",
                                                     "queue", "tags", "started_at",
                                                     "finished_at")},
                               "description": said.get(op["op"])}
                              for op in client.rt.store.pipeline_ops(uuid)]
    console.print_json(json.dumps(data))


@runs.command("stop")
@click.argument("uuid")
@friendly
def runs_stop(uuid: str) -> None:
    stopped = _client().stop_run(uuid)
    console.print("stopped" if stopped else "already finished")


@runs.command("resume")
@click.argument("uuid")
@friendly
def runs_resume(uuid: str) -> None:
    """Run a stopped or failed run again (resuming, then queued as a new incarnation)."""
    resumed = _client().resume_run(uuid)
    console.print("resumed" if resumed else "already resumed")


@runs.command("approve")
@click.argument("uuid")
@click.option("--actor", help="who approves (default: your user name)")
@friendly
def runs_approve(uuid: str, actor: str | None) -> None:
    """Queue a run that waits for approval (approval=True on its job or trigger)."""
    approved = _client().approve_run(uuid, actor=actor)
    console.print("approved: queued" if approved else "already approved")


@runs.command("invalidate")
@click.argument("uuid")
@click.option("--reason", default="invalidated by user", show_default=True)
@click.option("--actor", help="who decides (default: your user name)")
@friendly
def runs_invalidate(uuid: str, reason: str, actor: str | None) -> None:
    """End a run that waits for approval without running it (skipped)."""
    invalidated = _client().invalidate_run(uuid, reason=reason, actor=actor)
    console.print("invalidated: skipped" if invalidated else "already invalidated")


# -- triggers ----------------------------------------------------------------------------


@main.command("reconcile")
@friendly
def reconcile_cmd() -> None:
    """One reconciler pass (beat runs this every few seconds)."""
    from taskq.services.reconciler import reconcile

    res = reconcile(_client().rt)
    console.print(res if res else "another reconciler holds the lock")


@main.command("dev")
@click.option("--seconds", default=60.0, show_default=True,
              help="stop after this long once the scenario is done (0: at once)")
@click.option("--scenario/--no-scenario", default=True, show_default=True)
@friendly
def dev_cmd(seconds: float, scenario: bool) -> None:
    """Everything in one command: embedded Redis, database, evaluator, workers, beat, and
    the train -> tensorboard-on-running scenario with live output."""
    from taskq.dev.run import run_dev

    sys.exit(run_dev(linger=seconds, scenario_enabled=scenario))






main.add_command(_triggers.triggers)
main.add_command(_triggers.apply_cmd)
main.add_command(_triggers.events)
main.add_command(status_cmd)

for _command in _registry_commands():
    main.add_command(_command)
