"""What the store holds about triggers' decisions, as explain reads it: the firings and
join arms recorded for a page of events, indexed once so each event's look-up is a dict
hit. Pure values; :mod:`taskq.core.explaining` decides with them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from taskq.core.events import Event


@dataclass(frozen=True)
class FiringFact:
    """A firings row, with its run's status and queue when it has one."""

    id: int
    trigger_id: int
    dedup_key: str
    event_id: str
    outcome: str
    reason: str | None = None
    run_uuid: str | None = None
    version: int | None = None
    run_status: str | None = None
    run_queue: str | None = None


@dataclass(frozen=True)
class ArmFact:
    """A join_arms row: one event an AND join saw, armed, consumed or expired."""

    trigger_id: int
    input_key: str
    dedup_key: str
    event_id: str
    state: str
    firing_id: int | None = None
    at: datetime | None = None
    event: Event | None = None


@dataclass(frozen=True)
class Recorded:
    """What the store holds about the triggers' decisions, read once for many events.

    Looked up once per event, so indexed when made: a page of explain is thousands of
    events against thousands of records. Each lookup answers as a scan in record order
    would (the first record that fits)."""

    firings: Sequence[FiringFact] = ()
    arms: Sequence[ArmFact] = ()
    _by_key: dict[tuple[int, str], FiringFact] = field(init=False, repr=False, compare=False)
    _by_id: dict[int, FiringFact] = field(init=False, repr=False, compare=False)
    _arm_of: dict[tuple[int, str], ArmFact] = field(init=False, repr=False, compare=False)
    _armed: dict[int, list[ArmFact]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[tuple[int, str], FiringFact] = {}
        by_id: dict[int, FiringFact] = {}
        for f in self.firings:
            by_key.setdefault((f.trigger_id, f.dedup_key), f)
            by_id.setdefault(f.id, f)
        arm_of: dict[tuple[int, str], ArmFact] = {}
        armed: dict[int, list[ArmFact]] = {}
        for a in self.arms:
            arm_of.setdefault((a.trigger_id, a.event_id), a)
            if a.state == "armed":
                armed.setdefault(a.trigger_id, []).append(a)
        for name, value in (("_by_key", by_key), ("_by_id", by_id), ("_arm_of", arm_of),
                            ("_armed", armed)):
            object.__setattr__(self, name, value)

    def firing(self, trigger_id: int, key: str) -> FiringFact | None:
        return self._by_key.get((trigger_id, key))

    def firing_by_id(self, firing_id: int) -> FiringFact | None:
        return self._by_id.get(firing_id)

    def arm(self, trigger_id: int, event_id: str) -> ArmFact | None:
        return self._arm_of.get((trigger_id, event_id))

    def armed(self, trigger_id: int) -> list[ArmFact]:
        return list(self._armed.get(trigger_id, ()))
