"""The evaluator's health: ok, or degraded (an outage holds it), where ``taskq status`` and
an operator's log can see it.

While degraded an evaluator holds the entries it could not evaluate, retries them with
backoff and reads nothing new; each retry refreshes its entry in the
``EVALUATORS_HEALTH`` hash (member -> JSON). An entry not refreshed for ``FRESH_SECONDS``
is stale (its loop handed over or died) and is not shown. Redis may itself be what is
down: then the log line is all there is, and ``taskq status`` says Redis is unreachable.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from taskq.ports import Context

log = logging.getLogger(__name__)

#: A degraded report older than this is ignored (its evaluator is gone or recovered).
FRESH_SECONDS = 60.0
#: While it stays degraded, an evaluator logs again this often.
REMIND_SECONDS = 30.0


def describe(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def fresh_reports(rt: Context, now: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for member, raw in rt.coord.health().items():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict) and now - float(value.get("at", 0)) <= FRESH_SECONDS:
            out[member] = value
    return out


class EvaluatorHealth:
    def __init__(self, rt: Context, member: str) -> None:
        self.rt = rt
        self.member = member
        self.since: float | None = None
        self._logged = 0.0

    @property
    def degraded(self) -> bool:
        return self.since is not None

    def outage(self, exc: BaseException, held: int) -> None:
        """An outage stopped evaluation: say so (once, then every REMIND_SECONDS)."""
        now = time.time()
        reason = describe(exc)
        if self.since is None:
            self.since = self._inherited(now)
            self._logged = now
            # An outage another loop (an earlier slice) already reported is said once.
            level = logging.WARNING if self.since == now else logging.INFO
            log.log(level, "taskq: evaluator %s degraded%s: %s; holding %d entr%s and "
                    "retrying with backoff (an outage dead-letters nothing)", self.member,
                    "" if self.since == now else f" for {now - self.since:.0f}s", reason,
                    held, "y" if held == 1 else "ies")
        elif now - self._logged >= REMIND_SECONDS:
            self._logged = now
            log.warning("taskq: evaluator %s still degraded after %.0fs: %s", self.member,
                        now - self.since, reason)
        self._publish({"state": "degraded", "since": self.since, "reason": reason,
                       "held": held, "at": now})

    def recovered(self) -> None:
        if self.since is None:
            return
        log.warning("taskq: evaluator %s recovered after %.1fs of outage; catching up",
                    self.member, time.time() - self.since)
        self.since = None
        try:
            self.rt.coord.clear_health()
        except Exception as exc:  # Redis away again: the report goes stale by itself
            log.debug("taskq: clearing the health report failed: %s", exc)

    def _inherited(self, now: float) -> float:
        """The outage's start as another loop (an earlier slice) reported it."""
        try:
            reports = fresh_reports(self.rt, now)
        except Exception:
            return now
        starts = [float(v["since"]) for v in reports.values()
                  if v.get("state") == "degraded" and "since" in v]
        return min([now, *starts])

    def _publish(self, value: dict[str, Any]) -> None:
        try:
            self.rt.coord.set_health(self.member, json.dumps(value))
        except Exception as exc:  # Redis is what is down: the log line says it
            log.debug("taskq: writing the health report failed: %s", exc)


def gather(rt: Context) -> dict[str, Any]:
    """What ``taskq status`` shows: evaluators (live, degraded), the stream (length,
    pending, dead letters), the outbox. A part that cannot be read says why instead."""
    now = time.time()
    out: dict[str, Any] = {"configured_evaluators": rt.settings.evaluators}
    try:
        # Live as the evaluators themselves count it (serving.stale_after).
        stale = max(5.0, 3 * rt.settings.evaluator_block_ms / 1000)
        live = {m: at for m, at in rt.coord.members().items() if now - at <= stale}
        out["evaluators"] = sorted(live)
        out["degraded"] = {m: v for m, v in fresh_reports(rt, now).items()
                           if v.get("state") == "degraded"}
        out["stream"] = rt.bus.counts()
    except Exception as exc:
        out["redis_error"] = describe(exc)
    try:
        out["outbox_unpublished"] = rt.store.count("outbox_pending")
    except Exception as exc:
        out["database_error"] = describe(exc)
    return out
