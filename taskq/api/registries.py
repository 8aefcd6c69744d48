"""The model and dataset registries as a Python API (``client.models``, ``taskq.models``).

Each call commits the change and its event together, then appends the event, so a trigger
fires within milliseconds; a change that alters nothing watched (tagging with a tag the
entity has, archiving an archived one) emits nothing. Publishing again is a change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from taskq.api.scope import Scope
from taskq.core import model_metrics
from taskq.core import watched as entities
from taskq.core.times import utcnow
from taskq.core.watched import Family, check_tags
from taskq.errors import NotFound, ValidationError
from taskq.runtime import Runtime, get_runtime
from taskq.services.recording import append_quietly

MAX_METADATA_BYTES = 64 * 1024


class EntityRecord(BaseModel):
    """A model or dataset as stored."""

    model_config = ConfigDict(frozen=True)

    id: str
    namespace: str
    name: str
    project: str | None
    version: str | None
    tags: list[str]
    uri: str | None
    metadata: dict[str, Any]
    published: bool
    published_at: str | None
    archived: bool
    created_at: str | None
    updated_at: str | None
    #: A model's logged metrics: name -> latest value, step, at, n, min, max.
    metrics: dict[str, Any] = {}


def _text(value: Any, field: str, limit: int, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValidationError(f"{field}: must be a non-empty string of at most {limit} "
                              "characters")
    return value


class Registry:
    """``client.models`` / ``client.datasets``."""

    def __init__(self, rt: Runtime, family: Family, scope: Scope | None = None) -> None:
        self._rt = rt
        self.family = family
        self.word = entities.SINGULAR[family]
        self._scope = scope

    @property
    def rt(self) -> Runtime:
        return self._rt

    def _ns(self, namespace: str | None) -> str:
        """Its client's namespace, or another one only for an admin client."""
        scope = self._scope or Scope.of(self.rt)
        return scope.one(self.rt, namespace)

    def _emit(self, result: tuple[dict[str, Any], Any]) -> EntityRecord:
        view, event = result
        if event is not None:
            append_quietly(self.rt.bus, event)
        return EntityRecord.model_validate(view)

    def register(self, name: str, *, project: str | None = None, version: str | None = None,
                 tags: Iterable[str] = (), uri: str | None = None,
                 metadata: dict[str, Any] | None = None, published: bool = False,
                 namespace: str | None = None) -> EntityRecord:
        """A new entry (its own id; names need not be unique: versions share one)."""
        ns = self._ns(namespace)
        meta = metadata or {}
        try:
            size = len(json.dumps(meta, allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"metadata: must be JSON: {exc}") from None
        if not isinstance(meta, dict) or size > MAX_METADATA_BYTES:
            raise ValidationError(f"metadata: a mapping of at most {MAX_METADATA_BYTES} bytes")
        return self._emit(self.rt.store.register_entity(
            self.family, namespace=ns, name=str(_text(name, "name", 256, required=True)),
            project=_text(project, "project", 128), version=_text(version, "version", 64),
            tags=check_tags(list(tags)), uri=_text(uri, "uri", 4096), metadata=meta,
            published=bool(published)))

    def _change(self, entity_id: str, values: Any, namespace: str | None) -> EntityRecord:
        ns = self._ns(namespace)
        try:
            return self._emit(self.rt.store.change_entity(
                self.family, str(entity_id), ns, values))
        except NotFound as exc:
            raise ValidationError(str(exc)) from None

    def publish(self, entity_id: str, namespace: str | None = None) -> EntityRecord:
        """Publish (again): every publish is a change that triggers on publish see."""
        return self._change(entity_id, lambda row: {"published": True,
                                                    "published_at": utcnow()}, namespace)

    def archive(self, entity_id: str, namespace: str | None = None) -> EntityRecord:
        return self._change(entity_id, lambda row: {} if row["archived"] else {
            "archived": True}, namespace)

    def unarchive(self, entity_id: str, namespace: str | None = None) -> EntityRecord:
        return self._change(entity_id, lambda row: {"archived": False} if row["archived"]
                            else {}, namespace)

    def add_tags(self, entity_id: str, tags: Iterable[str],
                 namespace: str | None = None) -> EntityRecord:
        wanted = check_tags(list(tags) if not isinstance(tags, str) else tags)

        def change(row: dict[str, Any]) -> dict[str, Any]:
            merged = entities.clean_tags([*(row["tags"] or []), *wanted])
            return {"tags": merged} if merged != entities.clean_tags(row["tags"]) else {}

        return self._change(entity_id, change, namespace)

    def remove_tags(self, entity_id: str, tags: Iterable[str],
                    namespace: str | None = None) -> EntityRecord:
        unwanted = set(check_tags(list(tags) if not isinstance(tags, str) else tags))

        def change(row: dict[str, Any]) -> dict[str, Any]:
            kept = [t for t in entities.clean_tags(row["tags"]) if t not in unwanted]
            return {"tags": kept} if kept != entities.clean_tags(row["tags"]) else {}

        return self._change(entity_id, change, namespace)

    def log_metric(self, entity_id: str, name: str, value: float, step: int | None = None,
                   namespace: str | None = None) -> EntityRecord:
        """Log a metric of a model version (an evaluation after training, a score in
        production): a ``model_version_new_metric`` event on ``models.<id>`` per call, with
        ``metric``, ``value``, ``step`` and the model's ``name``, ``project``, ``version``."""
        if self.family != Family.MODELS:
            raise ValidationError(f"log_metric: only models have metrics, not {self.word}s")
        checked = model_metrics.check(name, value, step)
        ns = self._ns(namespace)
        try:
            view, event = self.rt.store.log_model_metric(str(entity_id), ns, *checked)
        except NotFound as exc:
            raise ValidationError(str(exc)) from None
        return self._emit((view, event))

    def get(self, entity_id: str, namespace: str | None = None) -> EntityRecord | None:
        row = self.rt.store.get_entity(self.family, str(entity_id),
                                       self._ns(namespace))
        return EntityRecord.model_validate(row) if row else None

    def list(self, *, project: str | None = None, name: str | None = None,
             published: bool | None = None, archived: bool | None = False,
             namespace: str | None = None, limit: int = 100) -> list[EntityRecord]:
        """Newest change first; archived entries only with ``archived=True`` (or None)."""
        rows = self.rt.store.list_entities(
            self.family, namespace=self._ns(namespace), project=project,
            name=name, published=published, archived=archived, limit=limit)
        return [EntityRecord.model_validate(r) for r in rows]


class DefaultRegistry(Registry):
    """``taskq.models`` / ``taskq.datasets``: the same API on the default client, built
    from the environment when a call is made (``taskq.Client(settings).models`` takes
    explicit configuration).

        m = taskq.models.register("model-a", project="vision", version="1")
        taskq.models.publish(m.id)          # triggers with trigger_on_publish fire at once
    """

    def __init__(self, family: Family) -> None:  # no runtime yet: nothing at import time
        self.family = family
        self.word = entities.SINGULAR[family]
        self._scope = None  # bound like the default client: TASKQ_NAMESPACE, TASKQ_ADMIN

    @property
    def rt(self) -> Runtime:  # type: ignore[override]
        return get_runtime()


def tag_run(rt: Runtime, run_uuid: str, add: Iterable[str] = (),
            remove: Iterable[str] = ()) -> list[str]:
    """Add and remove tags of a run (a ``run_tagged`` / ``run_untagged`` event); returns
    the run's tags."""
    added, removed = check_tags(list(add), "add"), check_tags(list(remove), "remove")
    if rt.store.get_run(str(run_uuid)) is None:
        raise ValidationError(f"uuid: no run {run_uuid!r}")
    event = rt.store.tag_run(str(run_uuid), add=added, remove=removed)
    if event is not None:
        append_quietly(rt.bus, event)
    run = rt.store.get_run(str(run_uuid))
    return list(run.tags) if run else []
