"""The poller: Celery beat's safety net for models, datasets and runs changed by writers
other than taskq's API (plain SQL, another service).

Every change taskq makes is an event at once; the poller only finds the rest. Each family
keeps a watermark ``(updated_at, id)`` in the ``cursors`` table and reads the rows after it
through an index, so a poll reads about as many rows as changed, not the table. A row is
compared with the state last emitted for it (``entity_states``; for a run's status, its
last status event) and emitted only if it differs, so a change the API already emitted is
never emitted again, and a restart neither loses nor replays anything.

The watermark only moves past rows older than ``SETTLE_SECONDS``: a writer's transaction
that stamped ``updated_at`` a moment before committing is still read on the next poll.
Rows newer than that are compared anyway (and re-read next time, which emits nothing).

Poll frequencies live in the database (``TriggerScheduler(pooling_frequency_minutes=...)``
writes them), so beat picks up a change at its next tick without a restart; a Redis lock
makes sure two beats (or a beat and ``TriggerScheduler.start()``) never poll at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from taskq import constants
from taskq.core import watched as entities
from taskq.core.events import Event
from taskq.core.stored import Watermark
from taskq.core.times import aware as _aware
from taskq.core.times import utcnow
from taskq.core.watched import Family
from taskq.ports import Context, Store
from taskq.services.recording import append_quietly

log = logging.getLogger(__name__)

FAMILIES = (Family.MODELS, Family.DATASETS, Family.RUNS)
#: ClearML's default: check for changes every three minutes.
DEFAULT_EVERY_SECONDS = 180.0
SETTLE_SECONDS = 5.0
BATCH = 500
LOCK_TIMEOUT = 300


def _key(what: str, family: Family) -> str:
    return f"poll.{what}.{family.value}"


@dataclass(frozen=True)
class PollResult:
    family: str
    rows_read: int
    emitted: int
    watermark: str


def set_frequency(store: Store, minutes: float,
                  families: tuple[Family, ...] = FAMILIES) -> None:
    if not isinstance(minutes, int | float) or isinstance(minutes, bool) or minutes <= 0:
        raise ValueError(f"pooling_frequency_minutes: must be a positive number, got "
                         f"{minutes!r}")
    for family in families:
        store.set_cursor(_key("every", family), repr(float(minutes) * 60))


def frequency(store: Store, family: Family) -> float:
    """Seconds between polls of ``family``."""
    raw = store.get_cursor(_key("every", family))
    try:
        return float(raw) if raw else DEFAULT_EVERY_SECONDS
    except ValueError:
        return DEFAULT_EVERY_SECONDS


def poll_due(rt: Context, *, force: bool = False) -> list[PollResult] | None:
    """Poll each family whose frequency says it is due; None if another poller holds the
    lock."""
    with rt.coord.single_runner(constants.POLL_LOCK, timeout=LOCK_TIMEOUT) as mine:
        if not mine:
            return None
        out = []
        for family in FAMILIES:
            now = utcnow()
            raw = rt.store.get_cursor(_key("last", family))
            last = _aware(datetime.fromisoformat(raw)) if raw else None
            due = (force or last is None
                   or now - last >= timedelta(seconds=frequency(rt.store, family)))
            if due:
                out.append(poll_family(rt, family))
                rt.store.set_cursor(_key("last", family), now.isoformat())
        return out


def poll_family(rt: Context, family: Family, *, batch: int = BATCH,
                settle: float = SETTLE_SECONDS) -> PollResult:
    store = rt.store
    reads_before = store.poll_rows_read
    mark = Watermark.load(store.get_cursor(_key("watermark", family)))
    settled_before = utcnow() - timedelta(seconds=settle)
    position, new_mark, emitted = mark, mark, 0
    while True:
        rows = store.changed_since(family, position, batch)
        if not rows:
            break
        checked = _check_runs(store, rows) if family == Family.RUNS else _check_registry(
            store, family, rows)
        for event in checked:
            append_quietly(rt.bus, event)
            emitted += 1
        for row in rows:
            at = _aware(row["updated_at"])
            assert at is not None
            if at >= settled_before:
                break  # rows are in order: all later ones are recent too
            new_mark = Watermark(at, str(row["id"]))
        last = rows[-1]
        position = Watermark(_aware(last["updated_at"]) or mark.at, str(last["id"]))
        if len(rows) < batch:
            break
    if new_mark != mark:
        store.set_cursor(_key("watermark", family), new_mark.dump())
    return PollResult(family.value, store.poll_rows_read - reads_before, emitted,
                      new_mark.dump())


def _check_registry(store: Store, family: Family, rows: list[dict[str, Any]]
                    ) -> list[Event]:
    states = store.emitted_states(family, [r["id"] for r in rows])
    out = []
    for row in rows:
        if entities.snapshot(row) != states.get(row["id"]):
            event = store.sync_entity(family, row["id"])
            if event is not None:
                out.append(event)
    return out


def _check_runs(store: Store, rows: list[dict[str, Any]]) -> list[Event]:
    uuids = [r["uuid"] for r in rows]
    statuses = store.emitted_statuses(uuids)
    states = store.emitted_states(Family.RUNS, uuids)
    out: list[Event] = []
    for row in rows:
        status, tags = statuses.get(row["uuid"], (None, None))
        emitted = states.get(row["uuid"]) or entities.run_state(
            tags if tags is not None else row["tags"], [])
        if status != row["status"] or entities.run_state(row["tags"],
                                                         row["metrics"]) != emitted:
            out.extend(store.sync_run(row["uuid"]))
    return out


def loop(rt: Context, seconds: float | None = None,
         tick: float = constants.POLL_TICK_SECONDS) -> None:
    """What ``TriggerScheduler.start()`` runs: poll whatever is due, every tick."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        try:
            poll_due(rt)
        except Exception:  # the database or Redis is away: try again next tick
            log.exception("taskq: polling failed; retrying in %.0fs", tick)
        time.sleep(tick)
