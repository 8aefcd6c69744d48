"""Run status transitions: the table the database compare-and-set is built from."""

from __future__ import annotations

from collections import deque

import pytest

from taskq.core.statuses import (
    FINAL,
    STARTABLE,
    Status,
    allowed_from,
    can_transition,
    check_transition,
    is_final,
)
from taskq.errors import InvalidTransition


def test_final_set_is_exactly_the_terminal_statuses() -> None:
    """Which statuses count as final decides when ``run_status_done`` fires."""
    assert {
        Status.SUCCEEDED, Status.FAILED, Status.STOPPED, Status.SKIPPED, Status.UPSTREAM_FAILED
    } == FINAL
    for status in Status:
        assert is_final(status) is (status in FINAL)


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_every_status_has_a_transition_entry(status: Status) -> None:
    """A status missing from the table would raise KeyError inside the store's CAS."""
    predecessors = allowed_from(status)
    assert isinstance(predecessors, frozenset)
    assert predecessors <= set(Status)


@pytest.mark.parametrize("final", sorted(FINAL), ids=lambda s: s.value)
def test_final_statuses_are_terminal(final: Status) -> None:
    """A late or duplicated signal must never resurrect a finished run."""
    for new in Status:
        assert not can_transition(final, new), f"{final} -> {new} must be refused"
        with pytest.raises(InvalidTransition):
            check_transition(final, new)


@pytest.mark.parametrize("start", [Status.CREATED, Status.QUEUED, Status.RETRYING])
def test_running_reachable_from_pending_and_retrying(start: Status) -> None:
    """A worker claims a run from these statuses; refusing them would strand runs."""
    assert can_transition(start, Status.RUNNING)
    check_transition(start, Status.RUNNING)  # does not raise
    assert start in STARTABLE


def test_running_cannot_be_restarted_or_requeued() -> None:
    """A redelivered message must not restart a run that is already executing."""
    assert not can_transition(Status.RUNNING, Status.RUNNING)
    assert not can_transition(Status.RUNNING, Status.QUEUED)
    assert not can_transition(Status.RUNNING, Status.CREATED)


def test_nothing_transitions_into_created() -> None:
    """``created`` is only ever the initial status of a row."""
    assert allowed_from(Status.CREATED) == frozenset()


def test_invalid_transition_message_names_both_statuses() -> None:
    """The message is recorded and shown to users: it must say from what to what."""
    with pytest.raises(InvalidTransition) as info:
        check_transition(Status.SUCCEEDED, Status.RUNNING)
    message = str(info.value)
    assert "'succeeded'" in message
    assert "'running'" in message
    assert message.index("succeeded") < message.index("running")
    assert info.value.current is Status.SUCCEEDED
    assert info.value.new is Status.RUNNING
    assert isinstance(info.value, ValueError)


def test_every_status_is_reachable_from_created() -> None:
    """A status that can never be reached is dead weight or a typo in the table."""
    seen = {Status.CREATED}
    queue = deque([Status.CREATED])
    while queue:
        current = queue.popleft()
        for new in Status:
            if new not in seen and can_transition(current, new):
                seen.add(new)
                queue.append(new)
    assert seen == set(Status)


@pytest.mark.parametrize("status", sorted(set(Status) - FINAL), ids=lambda s: s.value)
def test_every_non_final_status_can_still_finish(status: Status) -> None:
    """No dead ends: from any non-final status some final status is reachable directly."""
    assert any(can_transition(status, final) for final in FINAL)
