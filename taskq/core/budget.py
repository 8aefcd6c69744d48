"""Budgets: how long one trigger's check of an event may take, and what one firing's
templates may spend. Pure: the clock is passed in; the only signal is SIGALRM in the main
thread (where the evaluator runs), which interrupts a check that overruns.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from taskq.errors import Overrun

Clock = Callable[[], float]


@dataclass(frozen=True)
class RenderLimits:
    """The bounds of one firing's templates and conditions together (settings:
    ``TASKQ_TEMPLATE_SECONDS``, ``TASKQ_TEMPLATE_MAX_VALUE_CHARS``,
    ``TASKQ_TEMPLATE_MAX_FIRING_CHARS``)."""

    seconds: float = 1.0
    #: The largest value one operation may build, and the largest rendered param.
    value_chars: int = 65_536
    #: Everything built together (a list item counts as one character); bounds memory.
    firing_chars: int = 1_048_576


_watched: RuleBudget | None = None


def _on_alarm(signum: int, frame: Any) -> None:
    if _watched is not None:
        _watched.alarm()


@contextmanager
def rule_alarm() -> Iterator[None]:
    """Keep the alarm's handler installed for a loop's whole life, so that each event only
    sets the timer (installing a handler costs more than checking a rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)


class RuleBudget:
    """Each trigger's check of one event gets ``seconds``.

    Used around the checks of one event: the timer is set once (when the first check
    starts), and each check only notes when it started, so the hot path costs two clock
    reads per rule. When the alarm fires during a check that has run its allowance, it
    raises Overrun inside it; during a younger check, or between checks, it sets the timer
    for the rest. Off the main thread nothing can interrupt a check, and ``over()`` still
    tells that it took too long.
    """

    def __init__(self, seconds: float, clock: Clock) -> None:
        self.seconds = seconds
        self.clock = clock
        self._started = 0.0
        self._running = False
        self._armed = False
        self._previous: Any = None
        self._installed = False

    def start(self) -> None:
        self._started = self.clock()
        self._running = True
        if not self._armed:
            self._arm()

    def stop(self) -> None:
        self._running = False

    def over(self) -> bool:
        """The check just stopped took longer than its allowance."""
        return self.clock() - self._started > self.seconds

    def _arm(self) -> None:
        global _watched
        if threading.current_thread() is not threading.main_thread():
            return
        _watched = self
        if signal.getsignal(signal.SIGALRM) is not _on_alarm:  # outside rule_alarm()
            self._previous = signal.signal(signal.SIGALRM, _on_alarm)
            self._installed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self._armed = True

    def alarm(self) -> None:
        if self._running:
            elapsed = self.clock() - self._started
            if elapsed >= self.seconds:
                self._running = False
                raise Overrun
            signal.setitimer(signal.ITIMER_REAL, max(self.seconds - elapsed, 0.001))
            return
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __enter__(self) -> RuleBudget:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        global _watched
        self._running = False
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _watched = None
            self._armed = False
        if self._installed:
            signal.signal(signal.SIGALRM, self._previous)
            self._installed = False
