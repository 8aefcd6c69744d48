"""``taskq``: a small click CLI. Errors are one line plus a hint, never a traceback."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from taskq.settings import get_settings

console = Console()
err = Console(stderr=True, soft_wrap=True)


class CliError(click.ClickException):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]error:[/] {self.message}", highlight=False)
        if self.hint:
            err.print(f"[dim]hint:[/] {self.hint}", highlight=False)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn taskq's validation and connection errors into one line plus a hint."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import kombu.exceptions
        import pydantic
        import redis
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        from taskq.client import ValidationError
        from taskq.embedded import EmbeddedRedisError
        from taskq.store.manager import NotFound

        ctx = click.get_current_context(silent=True)
        where = ctx.command_path if ctx else "taskq"
        try:
            return fn(*args, **kwargs)
        except CliError:
            raise
        except (ValidationError, NotFound) as exc:
            raise CliError(str(exc), f"fix the named field; `{where} --help` lists the options"
                           ) from None
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise CliError(f"configuration: {field}: {first['msg']}",
                           "check the TASKQ_* environment variables and TASKQ_CONFIG") from None
        except redis.RedisError as exc:
            hint = "check TASKQ_REDIS_URL, or unset it to use the embedded server"
            raise CliError(f"Redis: {exc}", hint) from None
        except EmbeddedRedisError as exc:
            raise CliError(str(exc), "set TASKQ_REDIS_URL to use a Redis server") from None
        except kombu.exceptions.OperationalError as exc:
            raise CliError(f"broker: {exc}", "check TASKQ_REDIS_URL and that Redis is up"
                           ) from None
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else None
            msg = (str(orig) if orig else str(exc)).strip().splitlines()[0]
            raise CliError(f"database: {msg}",
                           "run `taskq db upgrade` and check TASKQ_DATABASE_URL "
                           "(postgresql://user:pass@host/db or sqlite:///path)") from None
        except ValueError as exc:  # settings and other bad values
            raise CliError(str(exc).splitlines()[0],
                           f"check TASKQ_* settings; `{where} --help` lists the options"
                           ) from None

    return wrapper


def _import_jobs() -> None:
    for mod in get_settings().imports:
        try:
            importlib.import_module(mod)
        except Exception as exc:  # a user module: ImportError, SyntaxError, JobError, ...
            raise CliError(f"cannot import {mod!r} from TASKQ_IMPORTS: "
                           f"{type(exc).__name__}: {exc}",
                           "fix the module or TASKQ_IMPORTS") from None


def _client() -> Any:
    from taskq.client import Client

    return Client()


def _kv(pairs: tuple[str, ...], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{what}: {pair!r} is not KEY=VALUE", f"e.g. --{what} epochs=10")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@click.group()
@click.version_option(package_name="taskq")
def main() -> None:
    """taskq: event-triggered job runs for Celery."""


# -- db ----------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@friendly
def db_upgrade(revision: str) -> None:
    """Apply migrations (creates the SQLite file on the embedded default)."""
    from taskq.store import migrate

    url = get_settings().resolved_database_url()
    migrate.upgrade(url, revision)
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
    _import_jobs()
    if path:
        if job or triggers:
            raise CliError("give either JOB (with --trigger) or -f FILE, not both",
                           "`taskq run --help` shows both forms")
        from taskq.pipelines.cli import run_file

        run_file(path, _kv(params, "param"), namespace, follow=follow)
        return
    if not job:
        raise CliError("nothing to run", "give a JOB, or -f PIPELINE.yaml")
    from taskq.local import run_locally

    run = run_locally(_client(), job, params=_kv(params, "param"), triggers=list(triggers),
                      namespace=namespace)
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
@click.option("--limit", default=20, show_default=True)
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
    if run.kind == "pipeline":
        data["operations"] = [{k: op[k] for k in ("op", "uuid", "job", "status", "reason",
                                                  "queue", "started_at", "finished_at")}
                              for op in client.rt.store.pipeline_ops(uuid)]
    console.print_json(json.dumps(data))


@runs.command("stop")
@click.argument("uuid")
@friendly
def runs_stop(uuid: str) -> None:
    stopped = _client().stop_run(uuid)
    console.print("stopped" if stopped else "already finished")


# -- triggers ----------------------------------------------------------------------------


@main.group()
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
@friendly
def triggers_add(name: str, ref: str, kinds: tuple[str, ...], job: str,
                 params: tuple[str, ...], queue: str | None, namespace: str | None) -> None:
    _import_jobs()
    row = _client().add_trigger(name=name, event={"ref": ref, "kinds": list(kinds)}, job=job,
                                params=_kv(params, "param"), queue=queue, namespace=namespace)
    console.print(f"trigger [bold]{row['name']}[/] added (id {row['id']})")


@triggers.command("list")
@click.option("--namespace")
@friendly
def triggers_list(namespace: str | None) -> None:
    table = Table("name", "namespace", "on", "job", "queue", "enabled", "version")
    for t in _client().list_triggers(namespace):
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
        table.add_row(t["name"], t["namespace"], on, t["job"], t["queue"] or "",
                      "yes" if t["enabled"] else "no", str(t["version"]))
    console.print(table)


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


@main.command("apply")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False),
              help="YAML with `hooks:` and/or `triggers:` lists")
@friendly
def apply_cmd(path: str) -> None:
    """Register hooks and triggers from YAML (created, or updated in place by name)."""
    from taskq.apply import apply_file

    _import_jobs()
    for line in apply_file(_client(), path):
        console.print(line, highlight=False)


# -- events ------------------------------------------------------------------------------


@main.group()
def events() -> None:
    """Watch the event stream."""


@events.command("tail")
@click.option("--count", default=0, help="stop after N events (0: follow forever)")
@click.option("--from-start", is_flag=True)
@friendly
def events_tail(count: int, from_start: bool) -> None:
    bus = _client().rt.bus
    last, seen = ("0" if from_start else "$"), 0
    while True:
        for sid, event in bus.tail(last):
            last = sid
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
@friendly
def events_publish(name: str, fields: tuple[str, ...], namespace: str | None,
                   event_id: str | None) -> None:
    """Publish event NAME: jobs with trigger_on=[NAME] start."""
    event = _client().publish_event(name, _kv(fields, "field"), namespace=namespace,
                                    event_id=event_id)
    console.print(f"published [bold]{name}[/] ({event})", highlight=False)


@events.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8085, show_default=True, type=int)
@friendly
def events_serve(host: str, port: int) -> None:
    """HTTP endpoint for outside systems: POST /events or /events/NAME (authenticated)."""
    from taskq.server import AuthConfig, serve

    settings = get_settings()
    token, secret = settings.events_token, settings.events_hmac_secret
    try:
        auth = AuthConfig(token.get_secret_value() if token else None,
                          secret.get_secret_value() if secret else None)
    except ValueError as exc:
        raise CliError(str(exc), "export TASKQ_EVENTS_TOKEN=<a long random string>") from None
    client = _client()
    client.rt.store  # noqa: B018  - fail here, not on the first request, if the DB is wrong
    console.print(f"taskq events: listening on http://{host}:{port} (POST /events, "
                  "/events/<name>; GET /openapi.json)", highlight=False)
    serve(client, auth, host, port)


@events.command("dead")
@friendly
def events_dead() -> None:
    """Entries moved aside (malformed, or failing too often), with the reason."""
    for row in _client().rt.bus.dead_letters():
        console.print(f"{row['id']} [red]{row.get('reason')}[/]", highlight=False)


# -- maintenance -------------------------------------------------------------------------


@main.command("reconcile")
@friendly
def reconcile_cmd() -> None:
    """One reconciler pass (beat runs this every few seconds)."""
    from taskq.reconcile import reconcile

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
    from taskq.dev import run_dev

    sys.exit(run_dev(linger=seconds, scenario_enabled=scenario))





from taskq.registry_cli import commands as _registry_commands  # noqa: E402

for _command in _registry_commands():
    main.add_command(_command)
