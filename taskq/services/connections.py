"""A connection's webhook, received: verified by its provider's scheme, turned into events,
committed once per delivery id and appended to the stream.

The same path as published events (commit, then append; the reconciler covers Redis being
away), and the same delivery memory: a delivery seen within the window is answered as a
duplicate from Redis; past it, the event ids (derived from the connection and the
delivery id) make the store keep one copy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from taskq.core import connections as conns
from taskq.core import webhooks
from taskq.core.events import now
from taskq.errors import EventInputError, ValidationError
from taskq.ports import Context
from taskq.services.custom_events import (
    check,
    remember_delivery,
    seen_delivery,
    stored_id,
)
from taskq.services.recording import append_quietly


def sources(rt: Context, environ: Mapping[str, str] = os.environ
            ) -> dict[str, tuple[conns.Source, bytes | None]]:
    """Every source connection with its secret, read once when the server starts; a
    missing secret or an unknown namespace stops the server naming the variable."""
    out: dict[str, tuple[conns.Source, bytes | None]] = {}
    settings = rt.settings
    for name, conf in settings.connections.items():
        src = conns.source(name, conf, settings.namespace)
        if src is None:
            continue
        if src.namespace not in settings.namespaces:
            raise ValidationError(f"connection {name!r}: namespace {src.namespace!r} is not "
                                  f"configured (TASKQ_NAMESPACES lists "
                                  f"{', '.join(settings.namespaces)})")
        secret = environ.get(src.secret_env) if src.secret_env else None
        if src.secret_env and not secret:
            raise ValidationError(f"connection {name!r}: environment variable "
                                  f"{src.secret_env!r} with its secret is not set")
        out[name] = (src, secret.encode() if secret else None)
    return out


def receive(rt: Context, src: conns.Source, headers: Mapping[str, str],
            body: dict[str, Any], raw: bytes, *, ttl_seconds: int) -> dict[str, Any]:
    """Publish what a verified delivery says; the response body (event ids, duplicate)."""
    delivery = webhooks.parse(src, headers, body, raw)
    answer: dict[str, Any] = {"connection": src.name, "delivery": delivery.id,
                              "namespace": src.namespace}
    if not delivery.payloads:
        return {**answer, "events": [], "duplicate": False, "ignored": delivery.ignored}
    key = f"connections.{src.name}:{delivery.id}"
    seen = seen_delivery(rt, src.namespace, key)
    if seen is not None:
        return {**answer, "events": json.loads(seen), "duplicate": True}
    ids = [stored_id(src.namespace, f"{key}:{i}") for i in range(len(delivery.payloads))]
    try:
        made = webhooks.events(src, delivery, ids=ids, at=now())
        for event in made:
            check("connection", event.payload)  # size, depth, JSON: as for any event
    except (ValueError, EventInputError) as exc:
        raise EventInputError(str(exc)) from None
    created = [rt.store.record_event(event) for event in made]
    for event, new in zip(made, created, strict=True):
        if new:
            append_quietly(rt.bus, event)
    remember_delivery(rt, src.namespace, key, json.dumps(ids), ttl_seconds)
    return {**answer, "events": ids, "duplicate": not any(created)}
