"""UTC instants, the one way taskq reads and normalises them.

Everything taskq stores is UTC; SQLite hands back naive datetimes, so each reader makes
them aware here rather than each in its own way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``7d``, ``2w`` (or plain seconds): how far back to look."""
    value = str(text).strip().lower()
    unit = value[-1:] if value[-1:] in _UNITS else "s"
    number = value[:-1] if value[-1:] in _UNITS else value
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 1h, 7d") from None
    if amount < 0:
        raise ValueError(f"{text!r}: a duration is not negative")
    return timedelta(seconds=amount * _UNITS[unit])
