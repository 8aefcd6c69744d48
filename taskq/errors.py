"""Every error taskq raises on purpose, under one base, and the one way to word them.

One base (``TaskqError``) lets a caller catch "taskq refused this" apart from a bug; each
class also keeps the builtin it always was (``ValueError``, ``LookupError``,
``RuntimeError``), so code written against those keeps working. They live here, at the
bottom of the house, because every layer raises them and none should import another layer
just to name an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TaskqError(Exception):
    """Base of every error taskq raises on purpose."""


class ValidationError(TaskqError, ValueError):
    """Bad input from the caller; the message names the field and the reason."""


class FieldError(TaskqError, ValueError):
    """A value refused at a path inside a field (a payload filter's ``metric.accuracy[0]``):
    :func:`first_error` appends ``where`` to the field pydantic names."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where, self.reason = where, reason


class EventError(TaskqError, ValueError):
    """An event, kind or ref that taskq cannot accept; the message names the field."""


class EventInputError(TaskqError, ValueError):
    """A publish refused; the message names the field and the reason."""


class JobError(TaskqError, ValueError):
    """A job declaration or a run's params that do not fit the job."""


class RoutingError(TaskqError, ValueError):
    """A queue or agent that cannot be routed to."""


class TemplateFailure(TaskqError, ValueError):
    """A template or condition that cannot be parsed, rendered or evaluated in bounds."""


class Overrun(TaskqError, RuntimeError):
    """A bounded step (one trigger's check of an event, a firing's templates) ran past its
    time budget; raised by the alarm that interrupts it, turned into a recorded reason."""


class SpecError(TaskqError, ValueError):
    """A pipeline spec refused before anything runs."""


class InvalidTransition(TaskqError, ValueError):
    """A run status change the lifecycle does not allow."""

    def __init__(self, current: object, new: object) -> None:
        cur = getattr(current, "value", current)
        nxt = getattr(new, "value", new)
        super().__init__(f"run status cannot change from {cur!r} to {nxt!r}")
        self.current = current
        self.new = new


class NotFound(TaskqError, LookupError):
    """Something asked for by name or id does not exist."""


class AlreadyExists(TaskqError, ValueError):
    """A name that must be unique is taken."""


class EmbeddedRedisError(TaskqError, RuntimeError):
    """The bundled redis-server could not be started."""


class NotifyError(TaskqError, RuntimeError):
    """A notification could not be delivered (the notifier job retries)."""


class UserError(TaskqError):
    """Something the user can fix, said as one line plus a hint (the CLI prints both)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigFileMissing(UserError, FileNotFoundError):
    """TASKQ_CONFIG names a file that is not there (said in one line, not a traceback)."""


class OutOfNamespace(UserError, ValidationError):
    """A client bound to one namespace asked to read or change another; one line plus a
    hint (a client of that namespace, or an admin client)."""


class NotInAJob(TaskqError, RuntimeError):
    """``taskq.current`` used outside a running job."""


class UnmatchedName(TaskqError, UserWarning):
    """A warning, not an error: a trigger names something that matches nothing yet. It is
    stored, and matches once the name appears."""


def first_error(exc: Exception, field: str = "", *,
                locate: Callable[[list[Any]], str] | None = None) -> str:
    """``field.loc: reason`` of the first error only: one clear line beats a list the user
    has to read through. ``locate`` spells the location the user's way (ClearML's argument
    names, a pipeline operation's name instead of its index)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = locate(list(first["loc"])) if locate else ".".join(str(x) for x in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        inner = (first.get("ctx") or {}).get("error")
        if isinstance(inner, FieldError):
            where = ".".join(p for p in (where, inner.where) if p)
            msg = inner.reason
        loc = ".".join(p for p in (field, where) if p)
        return f"{loc}: {msg}" if loc else msg
    if isinstance(exc, FieldError):
        loc = ".".join(p for p in (field, exc.where) if p)
        return f"{loc}: {exc.reason}" if loc else exc.reason
    return f"{field}: {exc}" if field else str(exc)
