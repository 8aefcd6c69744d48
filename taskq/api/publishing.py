"""Events from the Python API: publishing one or many in one call, and replaying stored
ones through the triggers as they are now.

A facet of :class:`taskq.Client` (through :class:`~taskq.api.triggers.TriggersFacet`); the
checks are the service's, so the CLI, HTTP and Python refuse the same input the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from taskq.api.scope import Scope
from taskq.core.times import parse_age, utcnow
from taskq.errors import EventInputError, ValidationError
from taskq.runtime import Runtime
from taskq.services import custom_events as external
from taskq.services import replay as replaying


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

    def replay_events(self, since: str | float | timedelta, *,
                      until: str | float | timedelta | None = None,
                      trigger: str | None = None, dry_run: bool = False,
                      namespace: str | None = None,
                      progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Evaluate the stored events of the last ``since`` (up to ``until`` ago) again
        through the enabled triggers (or only ``trigger``), in the order of record: what
        fired before fires nothing again, what newly matches fires once. ``dry_run`` says
        what would fire and writes nothing. Ages: seconds, or ``"90s"``, ``"2h"``, ``"7d"``."""
        ns = self.scope.one(self.rt, namespace)
        now = utcnow()
        start, end = ago(since, "since", now), (
            None if until is None else ago(until, "until", now))
        if end is not None and end < start:
            raise ValidationError("until: must be later than since")
        done = replaying.replay(self.rt, self.rt.kinds, namespace=ns, since=start,
                                until=end, trigger=trigger, dry_run=dry_run,
                                progress=progress)
        return {**asdict(done), "dry_run": dry_run}


def ago(value: Any, what: str, now: datetime) -> datetime:
    try:
        age = (value if isinstance(value, timedelta) else
               timedelta(seconds=value) if isinstance(value, int | float)
               and not isinstance(value, bool) else parse_age(value))
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{what}: {exc}") from None
    return now - age
