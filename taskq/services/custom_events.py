"""Publishing external events: one checked path for Python, the CLI and the HTTP endpoint.

The event is committed to the event log before it is appended to the stream, so a publish
that returned survives Redis being briefly away (the reconciler re-emits it). A caller that
retries with the same ``event_id`` (a Git host redelivering a webhook) publishes once.
Everything the store or the stream could not keep (a payload nested past what the event's
serialiser walks, a lone surrogate no UTF-8 encoder writes) is refused here as input, so
it never becomes a "retry later" or an event committed but never evaluated.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from taskq import constants
from taskq.core import names
from taskq.core.events import CUSTOM_EVENT_KIND, Event, custom_event
from taskq.errors import EventError, EventInputError
from taskq.ports import Context
from taskq.services.recording import append_quietly

log = logging.getLogger(__name__)
_IDS = uuid.UUID("6f1d2c1e-8a4b-4c3e-9b1a-5d7e2f0a9c41")
#: Largest payload accepted, serialised (the HTTP endpoint applies the same bound).
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_FIELDS_DEPTH = constants.MAX_FIELDS_DEPTH
#: Most events one ``publish_events`` call takes (one transaction holds them all).
MAX_BATCH = 10_000


def _too_deep(value: Any, limit: int) -> bool:
    """Walked with a stack, not recursion: the input may be deeper than Python's stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def check(name: Any, payload: Any, event_id: Any = None) -> dict[str, Any]:
    if not isinstance(name, str) or not names.NAME.match(name):
        raise EventInputError(f"name: {name!r} is not an event name (letters, digits, '_', "
                              "'.', '-'; at most 128)")
    fields = {} if payload is None else payload
    if not isinstance(fields, dict):
        raise EventInputError(f"fields: must be a mapping of field names to values, got "
                              f"{type(fields).__name__}")
    for key in fields:
        if not isinstance(key, str) or not names.FIELD.match(key):
            raise EventInputError(f"fields.{key}: not a field name (letters, digits, '_', "
                                  "'.', '-')")
    if _too_deep(fields, MAX_FIELDS_DEPTH):
        raise EventInputError(f"fields: nested deeper than {MAX_FIELDS_DEPTH} levels")
    try:
        size = len(json.dumps(fields, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise EventInputError(f"fields: must be JSON (str, number, bool, null, list, "
                              f"mapping): {exc}") from None
    try:
        json.dumps(fields, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise EventInputError(f"fields: text must be valid Unicode, found a lone surrogate "
                              f"{exc.object[exc.start:exc.end]!r}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise EventInputError(f"fields: {size} bytes, more than {MAX_PAYLOAD_BYTES}")
    if event_id is not None and (not isinstance(event_id, str)
                                 or not names.EVENT_ID.match(event_id)):
        raise EventInputError(f"id: {event_id!r} is not an event id (letters, digits, "
                              "'_', '.', ':', '-'; at most 128)")
    return fields


def publish(rt: Context, name: str, payload: dict[str, Any] | None = None, *,
            namespace: str, event_id: str | None = None, source: str | None = None,
            scope: str = "event", project: str | None = None) -> Event:
    """Commit, then append. Returns the event (the first one, for a repeated ``event_id``)."""
    return publish_once(rt, name, payload, namespace=namespace, event_id=event_id,
                        source=source, scope=scope, project=project)[0]


def stored_id(namespace: str, event_id: str) -> str:
    """The caller's id names the event in its namespace; a uuid derived from it fits the
    event log's key and makes a repeat collide with the first."""
    return str(uuid.uuid5(_IDS, f"{namespace}:{event_id}"))


def publish_once(rt: Context, name: str, payload: dict[str, Any] | None = None, *,
                 namespace: str, event_id: str | None = None,
                 source: str | None = None, scope: str = "event",
                 project: str | None = None) -> tuple[Event, bool]:
    """:func:`publish`, also saying whether this call recorded the event (False: a repeat
    of ``event_id``, already recorded). ``scope`` ``project`` (with ``project``) or ``org``
    sends it to ``projects.<project>`` or ``org`` instead of ``events.<name>``."""
    fields = check(name, payload, event_id)
    check_scope(scope, project)
    try:
        event = custom_event(name, fields, namespace=namespace,
                             event_id=stored_id(namespace, event_id) if event_id else None,
                             source=source, project=project if scope == "project" else None,
                             org=scope == "org")
    except EventError as exc:
        raise EventInputError(str(exc)) from None
    created = rt.store.record_event(event)
    if created:
        append_quietly(rt.bus, event)
    return event, created


SCOPES = ("event", "project", "org")


def check_scope(scope: Any, project: Any) -> None:
    if scope not in SCOPES:
        raise EventInputError(f"scope: {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "project" and (not isinstance(project, str) or not names.NAME.match(project)):
        raise EventInputError(f"project: {project!r} is not a project name (scope 'project' "
                              "needs one)")
    if scope != "project" and project is not None:
        raise EventInputError(f"project: only with scope 'project' (got scope {scope!r})")


def publish_many(rt: Context, items: Sequence[tuple[Any, Any, Any]], *, namespace: str,
                 source: str | None = None) -> list[tuple[Event, bool]]:
    """Many ``(name, payload, event_id)`` at once: each checked as :func:`publish` checks
    one (an error names its index, and nothing is published), all committed in one
    transaction and appended in one round trip. A repeated ``event_id``, in the batch or
    before it, is the first event (its flag False)."""
    if len(items) > MAX_BATCH:
        raise EventInputError(f"events: {len(items)} in one call, more than {MAX_BATCH}")
    events: list[Event] = []
    for i, (name, payload, event_id) in enumerate(items):
        try:
            fields = check(name, payload, event_id)
            events.append(custom_event(
                name, fields, namespace=namespace, source=source,
                event_id=stored_id(namespace, event_id) if event_id else None))
        except (EventInputError, EventError) as exc:
            raise EventInputError(f"events[{i}].{exc}") from None
    created = rt.store.record_events(events) if events else []
    append_quietly(rt.bus, [e for e, new in zip(events, created, strict=True) if new])
    return list(zip(events, created, strict=True))


def ingest(rt: Context, name: str, payload: dict[str, Any] | None, *, namespace: str,
           event_id: str, delivery: str, ttl_seconds: int,
           source: str | None = None) -> tuple[str, bool]:
    """A signed delivery, published once: ``(stored id, duplicate)``.

    ``delivery`` is what the signature covers (taskq's delivery id, or a digest of a Git
    host's signed body). A delivery seen within ``ttl_seconds`` is answered as a duplicate
    from Redis without touching the database. It is remembered only once the event is
    committed, so a publish that failed is not mistaken for a duplicate on the sender's
    retry; two replays racing past the check still make one event, because ``event_id``
    is derived from the signed content and the store keeps one event per id.
    """
    seen = seen_delivery(rt, namespace, delivery)
    if seen is not None:
        return seen, True
    event, created = publish_once(rt, name, payload, namespace=namespace, event_id=event_id,
                                  source=source)
    remember_delivery(rt, namespace, delivery, event.id, ttl_seconds)
    return event.id, not created


def seen_delivery(rt: Context, namespace: str, delivery: str) -> str | None:
    """What a delivery seen before published (None: not seen, or Redis cannot say; the
    store's one event per id still holds then)."""
    try:
        return rt.coord.get_value(f"{constants.INGEST_SEEN_PREFIX}:{namespace}:{delivery}")
    except Exception as exc:
        log.warning("taskq: delivery memory unreadable, deduping in the store: %s", exc)
        return None


def remember_delivery(rt: Context, namespace: str, delivery: str, value: str,
                      ttl_seconds: int) -> None:
    """Called once the delivery's events are committed, never before."""
    try:
        rt.coord.remember(f"{constants.INGEST_SEEN_PREFIX}:{namespace}:{delivery}", value,
                          ttl_seconds=ttl_seconds)
    except Exception as exc:
        log.warning("taskq: delivery %s not remembered: %s", delivery, exc)


def is_external(event: Event) -> bool:
    return event.kind == CUSTOM_EVENT_KIND
