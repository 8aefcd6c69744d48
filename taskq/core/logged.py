"""A stored event as a pass over the event log reads it: the few fields matching looks at,
and its body still encoded.

What-if and replay walk every stored event of a range, and most of them no rule can
match; decoding each body into an :class:`~taskq.core.events.Event` (JSON, then pydantic)
cost more than everything else done with it. The index keys and the ``taskq run`` tag are
known from these fields alone (by the same functions the matcher uses on a decoded event),
so only the events some rule is indexed under are decoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from taskq.core.events import Event, local_tagged
from taskq.core.matching import KindRefKey, lookup_keys


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    #: The log's order of record (run_events.id): the keyset a page resumes after.
    seq: int
    namespace: str
    kind: str
    ref: str
    #: The event as stored, JSON.
    body: str
    #: A run event's payload ``job`` and ``tags`` (the only payload fields the index keys
    #: and the ``taskq run`` tag read); None for any other event.
    job: Any = None
    tags: Any = None

    @classmethod
    def of(cls, seq: int, namespace: str, kind: str, ref: str, body: str) -> LoggedEvent:
        """Only a run event's body is decoded here: no other ref reads its payload."""
        if not ref.startswith("runs."):
            return cls(seq, namespace, kind, ref, body)
        payload = json.loads(body).get("payload") or {}
        return cls(seq, namespace, kind, ref, body, payload.get("job"), payload.get("tags"))

    @property
    def local(self) -> bool:
        return local_tagged(self.ref, self.tags)

    def index_keys(self) -> list[KindRefKey]:
        return lookup_keys(self.namespace, self.kind, self.ref, self.job)

    def event(self) -> Event:
        return Event.model_validate_json(self.body)
