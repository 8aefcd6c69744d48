"""UTC instants, the one way taskq reads and normalises them.

Everything taskq stores is UTC; SQLite hands back naive datetimes, so each reader makes
them aware here rather than each in its own way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None
