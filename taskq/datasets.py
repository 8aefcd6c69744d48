"""``taskq.datasets``: the dataset registry with the default client (built from the environment);
``taskq.Client(settings).datasets`` is the same API with explicit configuration.

    import taskq
    m = taskq.datasets.register("dataset-a", project="vision", version="1", tags=["candidate"])
    taskq.datasets.publish(m.id)          # triggers with trigger_on_publish fire at once
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from taskq.registry import EntityRecord, Registry


def _registry() -> Registry:
    from taskq.client import Client

    return Client().datasets


def register(name: str, **kwargs: Any) -> EntityRecord:
    return _registry().register(name, **kwargs)


def publish(entity_id: str, namespace: str | None = None) -> EntityRecord:
    return _registry().publish(entity_id, namespace)


def archive(entity_id: str, namespace: str | None = None) -> EntityRecord:
    return _registry().archive(entity_id, namespace)


def unarchive(entity_id: str, namespace: str | None = None) -> EntityRecord:
    return _registry().unarchive(entity_id, namespace)


def add_tags(entity_id: str, tags: Iterable[str], namespace: str | None = None
             ) -> EntityRecord:
    return _registry().add_tags(entity_id, tags, namespace)


def remove_tags(entity_id: str, tags: Iterable[str], namespace: str | None = None
                ) -> EntityRecord:
    return _registry().remove_tags(entity_id, tags, namespace)


def get(entity_id: str, namespace: str | None = None) -> EntityRecord | None:
    return _registry().get(entity_id, namespace)


def list(**kwargs: Any) -> builtins.list[EntityRecord]:
    return _registry().list(**kwargs)
