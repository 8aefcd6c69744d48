"""The evaluator as a long-lived loop beside a worker's pool: slices back to back while it
holds one of ``settings.evaluators`` slots, standing by while all are taken."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from taskq.services.evaluator import Evaluator
from taskq.services.health import describe

log = logging.getLogger(__name__)

#: A loop that found every slot taken looks again this often (a slot left on a warm
#: shutdown is taken over within about this long).
STANDBY_SECONDS = 1.0
#: A loop whose slice raised an error that is not an outage starts again after this long.
RETRY_SECONDS = 2.0


def stale_after(ev: Evaluator) -> float:
    """How long a loop's heartbeat lasts: three blocking reads."""
    return max(5.0, 3 * ev.rt.settings.evaluator_block_ms / 1000)


def try_join(ev: Evaluator) -> bool:
    """Claim a slot among ``settings.evaluators`` live loops; False if all are taken."""
    coord = ev.rt.coord
    coord.prune_members(time.time() - stale_after(ev))
    if coord.is_member(ev.consumer):
        return True
    if coord.member_count() >= ev.rt.settings.evaluators:
        return False
    ev.heartbeat()
    return True


def leave(ev: Evaluator) -> None:
    try:
        ev.rt.coord.leave(ev.consumer)
    except Exception as exc:  # Redis away: the heartbeat goes stale by itself
        log.warning("taskq: leaving the evaluator set failed: %s", describe(exc))


def _pause(seconds: float, stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not stop() and time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


def serve(ev: Evaluator, *, slice_seconds: float, stop: Callable[[], bool],
          ready: Callable[[], None] = lambda: None) -> None:
    """Evaluate until ``stop()``: slices back to back while this loop holds one of the
    ``settings.evaluators`` slots, standing by while all are taken. ``ready()`` is called
    once, when the loop has first joined or found every slot taken. The slot is left on the
    way out, so a standing-by loop (in this worker or another) takes over within
    STANDBY_SECONDS; a loop killed without leaving frees it when its heartbeat goes stale.
    """
    told = False
    try:
        while not stop():
            try:
                try:
                    joined = try_join(ev)
                finally:  # up, even if Redis is not: nobody should wait on a retry loop
                    if not told:
                        told = True
                        ready()
                if not joined:
                    _pause(STANDBY_SECONDS, stop)
                    continue
                ev.run(slice_seconds, stop)
            except Exception as exc:  # Redis or the database away: entries stay pending
                ev.stats.errors += 1
                ev.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("taskq: the evaluator loop failed; again in %ss", RETRY_SECONDS)
                _pause(RETRY_SECONDS, stop)
    finally:
        try:
            ev.flush_marks()
            leave(ev)
        except Exception:  # the relay covers unmarked rows; a stale slot frees itself
            log.exception("taskq: leaving the evaluator slot failed")
