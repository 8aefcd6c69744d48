"""The event log's retention (TASKQ_EVENT_RETENTION_DAYS, 30 by default): the reconciler's
pass deletes decided events older than it, in bounded batches, with the join arms done
with them; an event no evaluator has decided is kept whatever its age. Real database."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

import taskq
from taskq.core.times import utcnow
from taskq.services import reconciler

pytestmark = pytest.mark.integration


def test_decided_events_past_retention_are_pruned_undecided_ones_kept(settings) -> None:
    store = taskq.Client().rt.store
    ids = [taskq.publish_event("old", {"i": i}) for i in range(5)]
    later = utcnow() + timedelta(seconds=1)
    assert store.prune_events(before=later, limit=100) == 0  # none decided yet
    store.mark_done(evaluated=ids[:3])
    assert store.prune_events(before=later, limit=2) == 2  # bounded
    assert store.prune_events(before=later, limit=100) == 1
    kept = {e.id for _, e, _ in store.stored_events(namespaces=["default"], limit=100)}
    assert kept == set(ids[3:])

    store.mark_done(evaluated=ids[3:])
    keep_all = SimpleNamespace(store=store, settings=settings.model_copy(
        update={"event_retention_days": 0.0}))
    assert reconciler.prune_events(keep_all) == 0  # 0: kept for ever
    default = SimpleNamespace(store=store, settings=settings)
    assert reconciler.prune_events(default) == 0  # younger than 30 days
    time.sleep(0.2)
    short = SimpleNamespace(store=store, settings=settings.model_copy(
        update={"event_retention_days": 0.1 / 86400}))
    assert reconciler.prune_events(short) == 2
    assert store.stored_events(namespaces=["default"], limit=100) == []
