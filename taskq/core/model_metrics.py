"""Metrics logged on a registered model (``taskq.models.log_metric``) as stored and as
``model_version_new_metric`` events. Pure.

A model row keeps the latest value of each metric name (with its step, when, how many were
logged, the least and the greatest), not a history: the event log already has every value,
one event each, and a row read on every registry call should not grow with training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from taskq.core.events import Event, new_event_id
from taskq.errors import ValidationError

KIND = "model_version_new_metric"
MAX_NAME = 256
#: Metric names one model keeps (a runaway loop logging f"loss_{i}" is refused, not stored).
MAX_NAMES = 1000


def check(name: Any, value: Any, step: Any) -> tuple[str, float, int | None]:
    """The arguments of ``log_metric``; a bad one raises ValidationError naming it."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ValidationError(f"name: must be a non-empty string of at most {MAX_NAME} "
                              f"characters, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"value: must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"value: must be finite, got {value!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValidationError(f"step: must be a non-negative integer or None, got {step!r}")
    return name, number, step


def updated(metrics: Mapping[str, Any] | None, name: str, value: float, step: int | None,
            at: datetime) -> dict[str, Any]:
    """The model's metrics map with one more value of ``name``."""
    out = dict(metrics or {})
    if name not in out and len(out) >= MAX_NAMES:
        raise ValidationError(f"name: the model has {MAX_NAMES} metric names already; "
                              f"{name!r} would be one more")
    prev = out.get(name)
    out[name] = {"value": value, "step": step, "at": at.isoformat(timespec="microseconds"),
                 "n": (prev["n"] if prev else 0) + 1,
                 "min": min(prev["min"], value) if prev else value,
                 "max": max(prev["max"], value) if prev else value}
    return out


def event(entity: Mapping[str, Any], name: str, value: float, step: int | None,
          previous: Mapping[str, Any] | None, at: datetime) -> Event:
    """``previous`` is the metric's entry before this value (None for its first): a
    trigger's condition can compare ``payload.value`` with ``payload.previous_value``."""
    ref = f"models.{entity['id']}"
    return Event(id=new_event_id(), kind=KIND, ref=ref, namespace=entity["namespace"],
                 project=entity.get("project"), timestamp=at,
                 payload={"id": entity["id"], "family": "models", "name": entity["name"],
                          "project": entity.get("project"), "version": entity.get("version"),
                          "metric": name, "value": value, "step": step,
                          "previous_value": previous["value"] if previous else None,
                          "entity": dict(entity), "source": "api"})
