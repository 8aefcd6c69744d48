"""The one event envelope that flows through the stream, and the names of event kinds.

An event's ``id`` is fixed when the change is committed to the database, so appending it twice
(a signal handler and the reconciler both got to it) still means one logical event: firings
are unique per (trigger, event id).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from taskq import constants
from taskq.core.names import validate_kind, validate_namespace, validate_ref
from taskq.core.statuses import DONE, FINAL, RUN_STATUS_PREFIX, Status, status_kind
from taskq.errors import EventError

#: An event published by user code, the CLI or the HTTP endpoint: ref ``events.<name>``,
#: payload ``{"name": ..., "fields": {...}}``.
CUSTOM_EVENT_KIND = "custom_event"
#: A published event addressed to a project (``projects.<name>``) or the organisation
#: (``org``) instead of by its own name (Polyaxon's custom event scopes).
PROJECT_CUSTOM_EVENT_KIND = "project_custom_event"
ORG_CUSTOM_EVENT_KIND = "org_custom_event"
CUSTOM_KINDS = frozenset({CUSTOM_EVENT_KIND, PROJECT_CUSTOM_EVENT_KIND, ORG_CUSTOM_EVENT_KIND})


class Event(BaseModel):
    """Frozen: an event is a fact, never edited after it is written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    kind: str
    ref: str
    namespace: str = constants.DEFAULT_NAMESPACE
    project: str | None = None
    timestamp: datetime
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        validate_kind(v)
        if v == status_kind(DONE):
            # "done" is a trigger-side pseudo-status; real events carry the final status.
            raise EventError("kind 'run_status_done' is only for triggers; events carry the "
                             "final status (run_status_succeeded, run_status_failed, ...)")
        return v

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        return validate_ref(v)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return validate_namespace(v)

    # -- matching keys --------------------------------------------------------------------

    def match_kinds(self) -> tuple[str, ...]:
        return match_kinds_of(self.kind)

    def match_refs(self) -> tuple[str, ...]:
        return match_refs_of(self.ref, self.payload.get("job"))

    # -- wire format ----------------------------------------------------------------------

    def to_fields(self) -> dict[str, str]:
        return {"event": self.model_dump_json()}

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> Event:
        """Decode a stream entry; raises EventError with the reason for a malformed one."""
        raw = fields.get(b"event", fields.get("event"))
        if raw is None:
            raise EventError("stream entry has no 'event' field")
        try:
            data = json.loads(raw)
        except (TypeError, ValueError) as exc:
            raise EventError(f"event is not valid JSON: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            raise EventError(f"event field {where!r}: {first['msg']}") from None


def new_event_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC)


def custom_event(name: str, fields: dict[str, Any] | None = None, *,
                 namespace: str = constants.DEFAULT_NAMESPACE, event_id: str | None = None,
                 source: str | None = None, project: str | None = None,
                 org: bool = False) -> Event:
    """An external event. ``fields`` is the payload users map onto job params. Sent to
    ``events.<name>``, or with ``project`` to ``projects.<project>``, or with ``org`` to
    ``org`` (the name is then in the payload)."""
    kind, ref = CUSTOM_EVENT_KIND, f"events.{name}"
    if project is not None:
        kind, ref = PROJECT_CUSTOM_EVENT_KIND, f"projects.{project}"
    elif org:
        kind, ref = ORG_CUSTOM_EVENT_KIND, "org"
    return Event(id=event_id or new_event_id(), kind=kind, ref=ref, namespace=namespace,
                 project=project, timestamp=now(),
                 payload={"name": name, "fields": dict(fields or {}), "source": source})


def run_status_event(
    *,
    event_id: str,
    run: dict[str, Any],
    status: Status,
    timestamp: datetime,
) -> Event:
    """The event for one committed status change; ``run`` is the run summary."""
    return Event(
        id=event_id,
        kind=status_kind(status),
        ref=f"runs.{run['uuid']}",
        namespace=run["namespace"],
        project=run.get("project"),
        timestamp=timestamp,
        payload=run,
    )


def run_event(*, event_id: str, kind: str, run: dict[str, Any], fields: dict[str, Any],
              timestamp: datetime) -> Event:
    """Something a running job said about itself (an alert, a new artifact): the run
    summary, so ``jobs.<name>`` triggers see it, with what it said beside it."""
    return Event(id=event_id, kind=kind, ref=f"runs.{run['uuid']}", namespace=run["namespace"],
                 project=run.get("project"), timestamp=timestamp, payload={**run, **fields})


def is_local(event: Event) -> bool:
    """A run event of a ``taskq run`` run (tagged ``local``): recorded, but it fires nothing,
    so trying a job here never starts production work."""
    return local_tagged(event.ref, event.payload.get("tags"))


# Of an event's fields alone, so a stored event can be judged before its body is decoded.

_FINAL_VALUES = frozenset(s.value for s in FINAL)


def match_kinds_of(kind: str) -> tuple[str, ...]:
    """A final run status also matches ``run_status_done``."""
    if kind.startswith(RUN_STATUS_PREFIX) and kind[len(RUN_STATUS_PREFIX):] in _FINAL_VALUES:
        return (kind, status_kind(DONE))
    return (kind,)


def match_refs_of(ref: str, job: Any) -> tuple[str, ...]:
    """A run event (its payload's ``job``) is addressed both as ``runs.<uuid>`` and
    ``jobs.<its job>``."""
    if ref.startswith("runs.") and isinstance(job, str) and job:
        return (ref, f"jobs.{job}")
    return (ref,)


def local_tagged(ref: str, tags: Any) -> bool:
    """:func:`is_local` of a ref and its payload's ``tags``."""
    return ref.startswith("runs.") and isinstance(tags, list) and constants.LOCAL_TAG in tags
