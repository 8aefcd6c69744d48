"""Publishing external events: one checked path for Python, the CLI and the HTTP endpoint.

The event is committed to the event log before it is appended to the stream, so a publish
that returned survives Redis being briefly away (the reconciler re-emits it). A caller that
retries with the same ``event_id`` (a Git host redelivering a webhook) publishes once.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from taskq.core import names
from taskq.core.events import CUSTOM_EVENT_KIND, Event, custom_event
from taskq.errors import EventError, EventInputError
from taskq.ports import Context
from taskq.services.recording import append_quietly

_IDS = uuid.UUID("6f1d2c1e-8a4b-4c3e-9b1a-5d7e2f0a9c41")
#: Largest payload accepted, serialised (the HTTP endpoint applies the same bound).
MAX_PAYLOAD_BYTES = 64 * 1024




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
    try:
        size = len(json.dumps(fields, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise EventInputError(f"fields: must be JSON (str, number, bool, null, list, "
                              f"mapping): {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise EventInputError(f"fields: {size} bytes, more than {MAX_PAYLOAD_BYTES}")
    if event_id is not None and (not isinstance(event_id, str)
                                 or not names.EVENT_ID.match(event_id)):
        raise EventInputError(f"id: {event_id!r} is not an event id (letters, digits, "
                              "'_', '.', ':', '-'; at most 128)")
    return fields


def publish(rt: Context, name: str, payload: dict[str, Any] | None = None, *,
            namespace: str, event_id: str | None = None, source: str | None = None) -> Event:
    """Commit, then append. Returns the event (the first one, for a repeated ``event_id``)."""
    fields = check(name, payload, event_id)
    # The caller's id names the event in its namespace; a uuid derived from it fits the
    # event log's key and makes a repeat collide with the first.
    stored_id = str(uuid.uuid5(_IDS, f"{namespace}:{event_id}")) if event_id else None
    try:
        event = custom_event(name, fields, namespace=namespace, event_id=stored_id,
                             source=source)
    except EventError as exc:
        raise EventInputError(str(exc)) from None
    if rt.store.record_event(event):
        append_quietly(rt.bus, event)
    return event


def is_external(event: Event) -> bool:
    return event.kind == CUSTOM_EVENT_KIND
