"""What every CLI command shares: the consoles, one-line errors with a hint, the client."""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from taskq.errors import (
    EmbeddedRedisError,
    NotFound,
    UnmatchedName,
    UserError,
    ValidationError,
    first_error,
)
from taskq.settings import get_settings

if TYPE_CHECKING:
    from taskq.api.client import Client

console = Console()
err = Console(stderr=True, soft_wrap=True)


class CliError(click.ClickException):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]error:[/] {self.message}", highlight=False)
        if self.hint:
            err.print(f"[dim]hint:[/] {self.hint}", highlight=False)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn taskq's validation and connection errors into one line plus a hint."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Imported when a command runs, not when the CLI starts: `taskq --help` stays fast.
        import kombu.exceptions
        import pydantic
        import redis
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        ctx = click.get_current_context(silent=True)
        where = ctx.command_path if ctx else "taskq"
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always", UnmatchedName)
                try:
                    return fn(*args, **kwargs)
                finally:
                    for w in said:
                        if issubclass(w.category, UnmatchedName):
                            err.print(f"[bold yellow]warning:[/] {w.message}",
                                      highlight=False)
                        else:
                            warnings.showwarning(w.message, w.category, w.filename,
                                                 w.lineno)
        except CliError:
            raise
        except UserError as exc:
            raise CliError(str(exc), exc.hint) from None
        except (ValidationError, NotFound) as exc:
            raise CliError(str(exc), f"fix the named field; `{where} --help` lists the options"
                           ) from None
        except pydantic.ValidationError as exc:
            raise CliError(f"configuration: {first_error(exc)}",
                           "check the TASKQ_* environment variables and TASKQ_CONFIG") from None
        except redis.RedisError as exc:
            hint = "check TASKQ_REDIS_URL, or unset it to use the embedded server"
            raise CliError(f"Redis: {exc}", hint) from None
        except EmbeddedRedisError as exc:
            raise CliError(str(exc), "set TASKQ_REDIS_URL to use a Redis server") from None
        except kombu.exceptions.OperationalError as exc:
            raise CliError(f"broker: {exc}", "check TASKQ_REDIS_URL and that Redis is up"
                           ) from None
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else None
            msg = (str(orig) if orig else str(exc)).strip().splitlines()[0]
            raise CliError(f"database: {msg}",
                           "run `taskq db upgrade` and check TASKQ_DATABASE_URL "
                           "(postgresql://user:pass@host/db or sqlite:///path)") from None
        except RecursionError:  # a file or value nested past what the parsers can walk
            raise CliError("input: nested too deeply to read",
                           "flatten the file or value you passed") from None
        except OverflowError as exc:
            raise CliError(f"input: a number is too large ({exc})",
                           f"`{where} --help` lists the options") from None
        except ValueError as exc:  # settings and other bad values
            raise CliError(str(exc).splitlines()[0],
                           f"check TASKQ_* settings; `{where} --help` lists the options"
                           ) from None

    return wrapper


def _import_jobs() -> None:
    for mod in get_settings().imports:
        try:
            importlib.import_module(mod)
        except Exception as exc:  # a user module: ImportError, SyntaxError, JobError, ...
            raise CliError(f"cannot import {mod!r} from TASKQ_IMPORTS: "
                           f"{type(exc).__name__}: {exc}",
                           "fix the module or TASKQ_IMPORTS") from None


def _client() -> Client:
    """The client every command uses: bound to TASKQ_NAMESPACE, or admin with the global
    ``--admin`` flag (or TASKQ_ADMIN=1)."""
    from taskq.api.client import Client

    ctx = click.get_current_context(silent=True)
    flagged = bool(ctx and ctx.find_root().params.get("admin"))
    return Client(admin=True if flagged else None)


def _kv(pairs: tuple[str, ...], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{what}: {pair!r} is not KEY=VALUE", f"e.g. --{what} epochs=10")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
        except RecursionError:
            raise CliError(f"{what}: {key}: the JSON value is nested too deeply",
                           "pass a flatter value, or a plain string") from None
    return out


