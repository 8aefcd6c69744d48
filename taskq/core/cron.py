"""Cron strings for a join's ``reset`` window, without Celery: the pure core must not import
it, yet stored resets were checked by ``celery.schedules.crontab``, so this gives the same sets
for the same strings (the tests compare). Stricter only where Celery accepts by accident
(trailing junk, names in the wrong field, ``+5``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

Reset = float | str | None

_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
# Celery's table: February has 29 days, so "30 2" never occurs but "29 2" (leap days) does.
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TOKEN = r"[0-9]+|[A-Za-z]+"
_PART = re.compile(rf"(?:(?P<star>\*)|(?P<lo>{_TOKEN})(?:-(?P<hi>{_TOKEN}))?)"
                   r"(?:/(?P<step>[0-9]+))?")


@dataclass(frozen=True)
class Cron:
    """The values each field names. Attribute names and day numbering (0 is Sunday, 7 is
    refused) are Celery crontab's, so code written against one reads the other."""

    minute: frozenset[int]
    hour: frozenset[int]
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]
    day_of_week: frozenset[int]


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def number(self, token: str) -> int:
        if token.isdigit():
            value = int(token)
        else:
            # As in Celery "tue", "tues", "tuesday" are Tuesday; unlike it, "monkey" is no Monday.
            word = token.lower()
            found = [i for i, n in enumerate(self.names) if len(word) >= 3 and n.startswith(word)]
            if not found:
                raise ValueError(f"{self.label}: {token!r} is not a number"
                                 + (" or a name" if self.names else ""))
            value = self.low + found[0]
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.label}: {value} is out of range {self.low}-{self.high}")
        return value

    def parse(self, spec: str) -> frozenset[int]:
        out: set[int] = set()
        for part in spec.split(","):
            m = _PART.fullmatch(part)
            if m is None:
                raise ValueError(f"{self.label}: {part!r} is not '*', a number, a range "
                                 "or a step" if part else f"{self.label}: an empty list item")
            if m["star"]:
                values = list(range(self.low, self.high + 1))
            elif m["step"] and not m["hi"]:
                raise ValueError(f"{self.label}: {part!r}: a step needs a range or '*'")
            else:
                lo = self.number(m["lo"])
                hi = self.number(m["hi"]) if m["hi"] else lo
                # A backwards range wraps around, as in Celery: "22-2" is 22, 23, 0, 1, 2.
                values = (list(range(lo, hi + 1)) if lo <= hi else
                          [*range(lo, self.high + 1), *range(self.low, hi + 1)])
            step = int(m["step"] or 1)
            if step == 0:
                raise ValueError(f"{self.label}: {part!r}: a step of 0")
            out.update(values[::step])
        return frozenset(out)


_FIELDS = (_Field("minute", 0, 59), _Field("hour", 0, 23), _Field("day-of-month", 1, 31),
           _Field("month", 1, 12, _MONTHS), _Field("day-of-week", 0, 6, _DAYS))


def parse_cron(expr: str) -> Cron:
    """The error names the reset, since that is the only place users write cron strings."""
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"reset: {expr!r} is not a cron string (five fields: minute hour "
                         "day-of-month month day-of-week)")
    try:
        minute, hour, dom, month, dow = (f.parse(p) for f, p in zip(_FIELDS, parts, strict=True))
        # Refused rather than left to previous_tick, which would search five years for nothing.
        if not any(day <= _DAYS_IN_MONTH[m - 1] for m in month for day in dom):
            raise ValueError(f"day-of-month {parts[2]!r} never occurs in month {parts[3]!r}")
    except ValueError as exc:
        raise ValueError(f"reset: {expr!r} is not a valid cron string: {exc}") from None
    return Cron(minute, hour, dom, month, dow)


def check_reset(reset: Reset) -> None:
    """Refuse a bad reset when the trigger is declared, not when a join first fires."""
    if reset is None:
        return
    if isinstance(reset, bool) or not isinstance(reset, int | float | str):
        raise ValueError("reset: seconds (a number) or a cron string")
    if isinstance(reset, int | float):
        if reset <= 0:
            raise ValueError("reset: must be a positive number of seconds")
        return
    parse_cron(reset)


def reset_boundary(reset: Reset, at: datetime) -> datetime | None:
    """Events before this instant no longer count towards a join (None: no reset)."""
    if reset is None:
        return None
    if isinstance(reset, int | float):
        return at - timedelta(seconds=float(reset))
    return previous_tick(parse_cron(reset), at)


def drops_at(reset: Reset, armed_at: datetime) -> datetime | None:
    """When a join's window stops counting an input armed at ``armed_at`` (None: never).
    The evaluator drops it lazily, at the join's next event after this instant."""
    if reset is None:
        return None
    if isinstance(reset, int | float):
        return armed_at + timedelta(seconds=float(reset))
    return next_tick(parse_cron(reset), armed_at)


def next_tick(cron: Cron, at: datetime) -> datetime | None:
    """The earliest instant after ``at``'s minute the cron expression names: the next reset
    of a window (same day rules as :func:`previous_tick`; None beyond five years)."""
    day = at.replace(second=0, microsecond=0)
    for ahead in range(0, 366 * 5):
        d = day + timedelta(days=ahead)
        if (d.month not in cron.month_of_year or d.day not in cron.day_of_month
                or d.isoweekday() % 7 not in cron.day_of_week):
            continue
        for h in sorted(h for h in cron.hour if ahead or h >= at.hour):
            minutes = [m for m in sorted(cron.minute) if ahead or h > at.hour or m > at.minute]
            if minutes:
                return d.replace(hour=h, minute=minutes[0])
    return None


def previous_tick(cron: Cron, at: datetime) -> datetime | None:
    """The latest instant <= ``at`` (UTC, minute precision) the cron expression names.
    Day-of-month and day-of-week must both match, as in Celery's crontab (plain cron ORs
    them); None if nothing matches within five years, so a search always ends."""
    day = at.replace(second=0, microsecond=0)
    for back in range(0, 366 * 5):
        d = day - timedelta(days=back)
        if (d.month not in cron.month_of_year or d.day not in cron.day_of_month
                or d.isoweekday() % 7 not in cron.day_of_week):
            continue
        hours = [h for h in sorted(cron.hour, reverse=True) if back or h <= at.hour]
        for h in hours:
            minutes = [m for m in sorted(cron.minute, reverse=True)
                       if back or h < at.hour or m <= at.minute]
            if minutes:
                return d.replace(hour=h, minute=minutes[0])
    return None
