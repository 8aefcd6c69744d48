"""One way to turn a pydantic error into the one line taskq shows: ``field.loc: reason``."""

from __future__ import annotations


def first_error(exc: Exception, field: str = "") -> str:
    """The first error only: one clear line beats a list the user has to read through."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(p for p in (field, *(str(x) for x in first["loc"])) if p)
        msg = str(first["msg"]).removeprefix("Value error, ")
        return f"{loc}: {msg}" if loc else msg
    return f"{field}: {exc}" if field else str(exc)
