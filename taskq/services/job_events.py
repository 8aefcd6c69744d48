"""What a running job says about itself beside its status: an alert, a new artifact.

Each is a run event (``alert_<level>``, ``run_new_artifacts``) carrying the run's summary,
so triggers on ``runs.<uuid>`` and on ``jobs.<name>`` see it, as they see its statuses. It
is committed before it is appended to the stream, so one that Redis missed is re-emitted by
the reconciler. A bad argument is refused in the job, naming it, where the job can handle it.
"""

from __future__ import annotations

from typing import Any

from taskq.core.events import Event
from taskq.errors import EventInputError
from taskq.ports import Context
from taskq.services.custom_events import check
from taskq.services.recording import append_quietly

ALERT_LEVELS = ("info", "warning", "critical")
#: The longest alert message, artifact name or URI kept.
MAX_TEXT = 2000


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}: must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{what}: {len(value)} characters, more than {MAX_TEXT}")
    return value


def _emit(rt: Context, run_uuid: str, kind: str, fields: dict[str, Any]) -> Event:
    event = rt.store.record_run_event(run_uuid, kind, fields)
    if event is None:
        raise ValueError(f"run {run_uuid!r} does not exist")
    append_quietly(rt.bus, event)
    return event


def alert(rt: Context, run_uuid: str, level: Any, message: Any,
          fields: dict[str, Any]) -> Event:
    if level not in ALERT_LEVELS:
        raise ValueError(f"alert: level {level!r} is not one of {', '.join(ALERT_LEVELS)}")
    text = _text(message, "alert: message")
    try:
        extra = check("alert", fields)
    except EventInputError as exc:
        raise ValueError(f"alert: {exc}") from None
    return _emit(rt, run_uuid, f"alert_{level}",
                 {"level": level, "message": text, "fields": extra})


def artifact(rt: Context, run_uuid: str, name: Any, uri: Any, kind: Any) -> Event:
    item = {"name": _text(name, "log_artifact: name"), "uri": _text(uri, "log_artifact: uri"),
            "kind": _text(kind, "log_artifact: kind")}
    return _emit(rt, run_uuid, "run_new_artifacts", {"artifacts": [item]})
