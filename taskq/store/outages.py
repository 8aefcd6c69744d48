"""Which database errors mean "the database is away", not "this write is wrong".

The evaluator retries the first kind for as long as it takes and never counts them against
an event (a database that is down is no reason to dead-letter good events); anything else
is the event's or the trigger's problem. A wrong guess either way is bounded: a transient
error taken for a bad one costs one delivery of the budget; a permanent one taken for an
outage keeps the evaluator degraded, visibly (``taskq status``), until someone fixes it.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

#: SQLSTATE classes: connection (08), resources such as disk or connections (53),
#: operator intervention such as a shutdown or a statement timeout (57), system/I-O (58),
#: serialization failures and deadlocks (40), authorization (28), internal (XX).
_CLASSES = ("08", "28", "40", "53", "57", "58", "XX")
#: And single states: privileges revoked (42501), a read-only transaction on a replica
#: after failover (25006), a lock not available (55P03), a schema not migrated or migrated
#: away (42P01 table, 42703 column, 3D000 database, 3F000 schema).
_STATES = frozenset({"42501", "25006", "55P03", "42P01", "42703", "3D000", "3F000"})


def _sqlstate(orig: BaseException | None) -> str | None:
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def is_outage(exc: BaseException) -> bool:
    """True for errors of the database's connection, availability or permissions."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError
                  | sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True  # SQLite: locked, read-only, disk I/O, no such table; pool exhausted
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        code = _sqlstate(exc.orig)
        return code is not None and (code[:2] in _CLASSES or code in _STATES)
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError):
        return True
    code = _sqlstate(exc) if type(exc).__module__.startswith("psycopg") else None
    return code is not None and (code[:2] in _CLASSES or code in _STATES)
