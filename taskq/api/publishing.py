"""Publishing events from the Python API: one, or many in one call.

A facet of :class:`taskq.Client` (through :class:`~taskq.api.triggers.TriggersFacet`); the
checks are the service's, so the CLI, HTTP and Python refuse the same input the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskq.api.scope import Scope
from taskq.errors import EventInputError, ValidationError
from taskq.runtime import Runtime
from taskq.services import custom_events as external


class PublishingFacet:
    rt: Runtime
    scope: Scope

    def publish_event(self, name: str, payload: dict[str, Any] | None = None,
                      namespace: str | None = None, event_id: str | None = None,
                      scope: str = "event", project: str | None = None) -> str:
        """Publish an external event; returns its id. With ``event_id`` a retried publish
        is the same event, evaluated once. ``scope="project", project=...`` sends it to
        ``projects.<project>`` (``project_custom_event``), ``scope="org"`` to ``org``
        (``org_custom_event``): triggers there hear every such event, whatever its name."""
        ns = self.scope.one(self.rt, namespace)
        try:
            return external.publish(self.rt, name, payload, namespace=ns, event_id=event_id,
                                    source="python", scope=scope, project=project).id
        except EventInputError as exc:
            raise ValidationError(str(exc)) from None

    def publish_events(self, events: Sequence[Mapping[str, Any]],
                       namespace: str | None = None) -> list[str]:
        """Publish many events at once, each ``{"name": ..., "payload": {...},
        "event_id": ...}`` (payload and event_id optional): one transaction and one round
        trip for all; the same checks and ``event_id`` idempotency as :meth:`publish_event`.
        Returns their ids, in order; a bad one is refused naming its index, and then none
        is published."""
        ns = self.scope.one(self.rt, namespace)
        items = []
        for i, item in enumerate(events):
            if not isinstance(item, Mapping) or set(item) - {"name", "payload", "event_id"}:
                raise ValidationError(f"events[{i}]: must be a mapping with 'name' and "
                                      "optional 'payload' and 'event_id'")
            items.append((item.get("name"), item.get("payload"), item.get("event_id")))
        try:
            published = external.publish_many(self.rt, items, namespace=ns, source="python")
        except EventInputError as exc:
            raise ValidationError(str(exc)) from None
        return [event.id for event, _ in published]
