"""Runs that wait for a person: ``approval=True`` on a job or a trigger keeps each run
``created``, its outbox row held, until someone approves it (then it is queued, exactly
once) or invalidates it (then it is skipped and never runs).

The decision and its events commit in one transaction (``Store.decide_approval``); the
send comes after it through the outbox, so a crash between the two is sent by the relay,
and of two decisions racing one applies (a compare-and-set on the run still waiting).
"""

from __future__ import annotations

import logging

from taskq.ports import Context
from taskq.services.outbox import publish
from taskq.services.recording import REASON_CHARS, append_quietly

log = logging.getLogger(__name__)

#: The longest actor name kept in the event (a user name or a credential's name).
ACTOR_CHARS = 200


def decide(rt: Context, run_uuid: str, *, approve: bool, actor: str,
           reason: str | None = None) -> bool:
    """Approve (then send) or invalidate a waiting run; False if it was not waiting any
    more: another decision got there first, or it was stopped meanwhile."""
    decided = rt.store.decide_approval(run_uuid, approve=approve, actor=actor[:ACTOR_CHARS],
                                       reason=reason[:REASON_CHARS] if reason else None)
    if decided is None:
        return False
    events, item = decided
    append_quietly(rt.bus, events)
    if item is not None:
        publish(rt, item)
    return True
