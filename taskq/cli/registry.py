"""``taskq models ...`` and ``taskq datasets ...``: list, show, publish, archive (and a
model's ``log-metric``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from rich.table import Table

from taskq.cli.common import CliError, _client, console, friendly
from taskq.constants import MAX_LIST_LIMIT
from taskq.core.watched import Family

if TYPE_CHECKING:
    from taskq.api.registries import Registry


def _group(family: str) -> click.Group:
    word = family[:-1]

    def registry() -> Registry:
        client = _client()
        return client.models if family == Family.MODELS else client.datasets

    @click.group(name=family, help=f"The {word} registry (changes fire {word} triggers).")
    def group() -> None:
        pass

    @group.command("list")
    @click.option("--project")
    @click.option("--name")
    @click.option("--published/--any-state", default=None, help="only published ones")
    @click.option("--archived", is_flag=True, help="archived ones instead")
    @click.option("--namespace")
    @click.option("--limit", default=50, show_default=True,
                  type=click.IntRange(1, MAX_LIST_LIMIT))
    @friendly
    def list_cmd(project: str | None, name: str | None, published: bool | None,
                 archived: bool, namespace: str | None, limit: int) -> None:
        table = Table("id", "name", "project", "version", "tags", "published", "updated")
        for e in registry().list(project=project, name=name, published=published,
                                 archived=archived, namespace=namespace, limit=limit):
            table.add_row(e.id, e.name, e.project or "", e.version or "", ",".join(e.tags),
                          "yes" if e.published else "no", (e.updated_at or "")[:19])
        console.print(table)

    @group.command("show")
    @click.argument("entity_id")
    @click.option("--namespace")
    @friendly
    def show_cmd(entity_id: str, namespace: str | None) -> None:
        found = registry().get(entity_id, namespace)
        if found is None:
            raise CliError(f"no {word} {entity_id!r}", f"list them with `taskq {family} list`")
        console.print_json(json.dumps(found.model_dump(mode="json")))

    @group.command("publish")
    @click.argument("entity_id")
    @click.option("--namespace")
    @friendly
    def publish_cmd(entity_id: str, namespace: str | None) -> None:
        """Publish (again): triggers on publish fire."""
        e = registry().publish(entity_id, namespace)
        console.print(f"{word} {e.id} published at {e.published_at}", highlight=False)

    @group.command("archive")
    @click.argument("entity_id")
    @click.option("--undo", is_flag=True, help="unarchive")
    @click.option("--namespace")
    @friendly
    def archive_cmd(entity_id: str, undo: bool, namespace: str | None) -> None:
        reg = registry()
        e = reg.unarchive(entity_id, namespace) if undo else reg.archive(entity_id, namespace)
        console.print(f"{word} {e.id}: {'archived' if e.archived else 'not archived'}",
                      highlight=False)

    if family == Family.MODELS:
        @group.command("log-metric")
        @click.argument("entity_id")
        @click.argument("name")
        @click.argument("value", type=float)
        @click.option("--step", type=click.IntRange(min=0), default=None)
        @click.option("--namespace")
        @friendly
        def log_metric_cmd(entity_id: str, name: str, value: float, step: int | None,
                           namespace: str | None) -> None:
            """Log a metric of a model version (a model_version_new_metric event)."""
            e = registry().log_metric(entity_id, name, value, step=step, namespace=namespace)
            console.print(f"model {e.id}: {name} = {e.metrics[name]['value']:g}"
                          + (f" (step {step})" if step is not None else ""), highlight=False)

    return group


def commands() -> list[click.Command]:
    return [_group("models"), _group("datasets")]
